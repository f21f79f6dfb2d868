"""Marsden-style non-gravitational accelerations (A1, A2, A3) as ASSIST implements them.

The acceleration added to an asteroid or comet (Marsden, Sekanina & Yeomans 1973) is

    a_ng = g(r) * (A1 * r_hat + A2 * t_hat + A3 * n_hat)

with ``r`` the heliocentric distance (au), ``r_hat`` the radial unit vector (away from the Sun),
``n_hat`` the unit vector along the orbital angular momentum ``r x v`` and ``t_hat = n_hat x r_hat``
(transverse, in the orbit plane, towards the motion). A1, A2, A3 are in au/day².

ASSIST (``forces.c``) evaluates

    g(r) = alpha * (r / r0)^(-m) * (1 + (r / r0)^n)^(-k)

from the ``Extras`` fields ``alpha``, ``r0``, ``nm``, ``nn``, ``nk`` (shared by every particle of
a simulation — one object per simulation in neodefense) and reads A1, A2, A3 per particle from
``Extras.particle_params``. The JPL SBDB names the same constants ALN (alpha), R0, NM, NN, NK.

* Asteroids (Yarkovsky, solar radiation pressure; JPL's default for A1/A2 fits):
  alpha = 1, r0 = 1 au, m = 2, k = 0, so g = (1 au / r)². This is the default of :class:`NonGrav`.
* Comets (water-ice sublimation, Marsden et al. 1973): alpha = 0.1112620426, r0 = 2.808 au,
  m = 2.15, n = 5.093, k = 4.6142 — :meth:`NonGrav.comet`.

Not supported by ASSIST and therefore not here: the comet time delay DT and asymmetric
(perihelion-offset) models. A solar-radiation-pressure area-to-mass ratio (JPL's AMRAT) maps onto
A1 with the asteroid g(r): see :func:`srp_a1_au_per_day2`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["NONGRAV_NAMES", "NonGrav", "srp_a1_au_per_day2"]

#: names of the three Marsden parameters, in ASSIST's ``particle_params`` order
NONGRAV_NAMES: tuple[str, str, str] = ("A1", "A2", "A3")

#: 1 au/day² in m/s²
_AU_PER_DAY2_M_PER_S2 = 149_597_870_700.0 / 86_400.0**2


@dataclass(frozen=True)
class NonGrav:
    """Non-gravitational parameters of one object (picklable: floats and a tuple).

    ``A1``, ``A2``, ``A3``: radial, transverse and normal coefficients in au/day² (the value of
    the acceleration where g(r) = 1, i.e. at 1 au for the asteroid model).
    ``alpha``, ``r0_au``, ``m``, ``n``, ``k``: the g(r) model (module docstring); the defaults give
    the asteroid model g = (1 au / r)².
    ``fitted``: which of "A1", "A2", "A3" get partial derivatives (∂state/∂A_i) when a
    propagation asks for the state-transition matrix; the order is kept in the output.
    """

    A1: float = 0.0
    A2: float = 0.0
    A3: float = 0.0
    alpha: float = 1.0
    r0_au: float = 1.0
    m: float = 2.0
    n: float = 0.0
    k: float = 0.0
    fitted: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        fitted = tuple(self.fitted)
        object.__setattr__(self, "fitted", fitted)
        unknown = [name for name in fitted if name not in NONGRAV_NAMES]
        if unknown:
            raise ValueError(f"NonGrav.fitted names {unknown}; allowed: {NONGRAV_NAMES}")
        if len(set(fitted)) != len(fitted):
            raise ValueError(f"NonGrav.fitted repeats a name: {fitted}")
        for name in ("A1", "A2", "A3", "alpha", "r0_au", "m", "n", "k"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"NonGrav.{name} must be a finite number, got {value!r}")
        if self.r0_au <= 0.0:
            raise ValueError(f"NonGrav.r0_au must be > 0, got {self.r0_au!r}")

    @classmethod
    def comet(cls, A1: float = 0.0, A2: float = 0.0, A3: float = 0.0,
              fitted: tuple[str, ...] = ()) -> NonGrav:
        """The Marsden et al. (1973) water-ice g(r) (JPL's comet default, no time delay)."""
        return cls(A1=A1, A2=A2, A3=A3, alpha=0.1112620426, r0_au=2.808, m=2.15, n=5.093,
                   k=4.6142, fitted=fitted)

    @property
    def values(self) -> tuple[float, float, float]:
        """(A1, A2, A3) in au/day²."""
        return (float(self.A1), float(self.A2), float(self.A3))

    def fitted_indices(self) -> tuple[int, ...]:
        """Indices (0, 1, 2 for A1, A2, A3) of the fitted parameters, in ``fitted`` order."""
        return tuple(NONGRAV_NAMES.index(name) for name in self.fitted)

    def g(self, r_au: float) -> float:
        """The radial law g(r) at heliocentric distance ``r_au`` (dimensionless)."""
        x = r_au / self.r0_au
        return self.alpha * x ** (-self.m) * (1.0 + x**self.n) ** (-self.k)


def srp_a1_au_per_day2(area_to_mass_m2_per_kg: float,
                       solar_flux_at_1au_w_per_m2: float = 1367.0) -> float:
    """Radial A1 (au/day², asteroid g(r)) equivalent to solar radiation pressure.

    Radiation pressure on an absorbing body at 1 au is flux / c; times the area-to-mass ratio it
    gives the acceleration. This is how JPL's AMRAT parameter (m²/kg) enters an A1 model (the
    reflectivity is absorbed into the fitted ratio). Example: Bennu JPL #118, AMRAT =
    2.636e-6 m²/kg → A1 ≈ 6.0e-13 au/day².
    """
    c_m_per_s = 299_792_458.0
    accel_m_per_s2 = area_to_mass_m2_per_kg * solar_flux_at_1au_w_per_m2 / c_m_per_s
    return accel_m_per_s2 / _AU_PER_DAY2_M_PER_S2
