"""Physical and reference-frame constants: the one place neodefense defines them.

Values are those of the JPL DE440 planetary ephemeris (Park et al. 2021, AJ 161, 105) and the IAU
conventions JPL uses, so that elements, light time and frames agree with JPL's SBDB and Horizons.

* ``GM_SUN_AU3_PER_DAY2``: the Sun's GM in au³/day², as in the DE440 header (GMS) and as ASSIST
  reports it (``assist.Ephem(...).get_particle("sun", 0).m``). It differs from the Gaussian
  constant squared (k² = 2.959122082855911e-4) in the 12th digit.
* ``C_AU_PER_DAY``: speed of light 299 792.458 km/s in au/day (au = 149 597 870.7 km, IAU 2012 B2).
* ``OBLIQUITY_J2000_ARCSEC``: obliquity of the ecliptic at J2000, 84381.448″ (IAU 1976), which JPL
  uses to define "ecliptic and mean equinox of J2000" from the ICRF axes (SBDB and Horizons
  elements). The frame bias between ICRF and the J2000 dynamical frame (~20 mas) is deliberately
  not applied, as at JPL.
* ``ICRF_TO_ECLIPTIC``: 3×3 rotation taking ICRF (equatorial) vectors to ecliptic J2000,
  ``v_ecl = ICRF_TO_ECLIPTIC @ v_icrf`` (a rotation by +ε about the x axis);
  ``ECLIPTIC_TO_ICRF`` is its transpose.
"""

from __future__ import annotations

import math

import numpy as np

from neodefense.dynamics.ephemeris import AU_KM

__all__ = [
    "ARCSEC_PER_RAD",
    "AU_KM",
    "C_AU_PER_DAY",
    "C_KM_PER_S",
    "ECLIPTIC_TO_ICRF",
    "GM_SUN_AU3_PER_DAY2",
    "ICRF_TO_ECLIPTIC",
    "MAS_PER_RAD",
    "OBLIQUITY_J2000_ARCSEC",
    "OBLIQUITY_J2000_RAD",
    "SECONDS_PER_DAY",
]

#: GM of the Sun in au³/day² (DE440 header value GMS; ASSIST's Sun mass in its au/day units)
GM_SUN_AU3_PER_DAY2: float = 2.9591220828411956e-04
#: speed of light, km/s (exact, SI)
C_KM_PER_S: float = 299_792.458
SECONDS_PER_DAY: float = 86_400.0
#: speed of light in au/day (173.144632674...)
C_AU_PER_DAY: float = C_KM_PER_S * SECONDS_PER_DAY / AU_KM
#: obliquity of the ecliptic at J2000 (IAU 1976), arcsec — JPL's ecliptic J2000 definition
OBLIQUITY_J2000_ARCSEC: float = 84_381.448
OBLIQUITY_J2000_RAD: float = math.radians(OBLIQUITY_J2000_ARCSEC / 3600.0)

_c, _s = math.cos(OBLIQUITY_J2000_RAD), math.sin(OBLIQUITY_J2000_RAD)
#: v_ecliptic = ICRF_TO_ECLIPTIC @ v_icrf
ICRF_TO_ECLIPTIC: np.ndarray = np.array([[1.0, 0.0, 0.0], [0.0, _c, _s], [0.0, -_s, _c]])
ICRF_TO_ECLIPTIC.setflags(write=False)
#: v_icrf = ECLIPTIC_TO_ICRF @ v_ecliptic
ECLIPTIC_TO_ICRF: np.ndarray = ICRF_TO_ECLIPTIC.T.copy()
ECLIPTIC_TO_ICRF.setflags(write=False)
del _c, _s

ARCSEC_PER_RAD: float = 180.0 * 3600.0 / math.pi
MAS_PER_RAD: float = ARCSEC_PER_RAD * 1000.0
