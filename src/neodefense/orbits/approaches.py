"""Nominal close approaches of a fitted orbit to the Earth and the Moon.

The nominal trajectory (no uncertainty: that is the impact-monitoring stage's work) is carried by
the project's propagator from the solution epoch to a horizon (default: 100 years after the later
of today and the last observation) and every minimum of the distance below the radius is listed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from neodefense import timescales
from neodefense.dynamics import ephemeris
from neodefense.dynamics.nongrav import NONGRAV_NAMES, NonGrav
from neodefense.dynamics.propagator import close_approaches
from neodefense.orbits.solution import OrbitSolution

#: default search radius per body (au): the JPL close-approach table's 0.05 au for the Earth
RADIUS_AU = {"earth": 0.05, "moon": 0.01}
DAYS_PER_YEAR = 365.25
_MJD_TO_JD = 2400000.5


def _now_tdb_jd() -> float:
    return time.time() / 86400.0 + 2440587.5 + 69.184 / 86400.0  # UTC → TT ≈ TDB (to ~2 ms)


def nominal_close_approaches(solution: OrbitSolution, years: float = 100.0,
                             last_obs_mjd_utc: float | None = None,
                             radius_au: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Close approaches of ``solution``'s nominal orbit from its epoch to the horizon.

    Each item: ``body``, ``date_utc`` (ISO), ``time_tdb_jd``, ``dist_km``, ``dist_au``,
    ``v_rel_km_s``. An approach closer than the body's radius is an impact of the nominal orbit
    (``impact`` True); the search stops at the first one.
    """
    if not np.all(np.isfinite(solution.state_icrf_au)):
        return []
    radius = dict(RADIUS_AU if radius_au is None else radius_au)
    start = float(solution.epoch_tdb_jd)
    last = (last_obs_mjd_utc + _MJD_TO_JD) if last_obs_mjd_utc is not None else start
    horizon = max(_now_tdb_jd(), last) + years * DAYS_PER_YEAR
    end_jd = ephemeris.de440_coverage_tdb_jd()[1] - 1.0
    horizon = min(horizon, end_jd)
    names = tuple(k for k in NONGRAV_NAMES if k in solution.nongrav)
    values = {k: float(solution.nongrav.get(k, 0.0)) for k in NONGRAV_NAMES}
    nongrav = NonGrav(**values) if names else None
    body_radius_km = {"earth": 6378.137, "moon": 1737.4}
    found = close_approaches(start, solution.state_icrf_au, horizon, bodies=tuple(radius),
                             radius_au=radius, nongrav=nongrav,
                             stop_inside_km={b: body_radius_km[b] for b in radius
                                             if b in body_radius_km})
    out: list[dict[str, Any]] = []
    for ca in sorted(found, key=lambda c: c.time_tdb_jd):
        iso = timescales.tdb_jd_to_utc_iso(ca.time_tdb_jd, precision=0)[0]
        impact = ca.distance_km < body_radius_km.get(ca.body, 0.0)
        out.append({"body": ca.body, "date_utc": str(iso), "time_tdb_jd": ca.time_tdb_jd,
                    "dist_km": ca.distance_km, "dist_au": ca.distance_au,
                    "v_rel_km_s": ca.speed_km_s, "impact": bool(impact)})
        if impact:
            break
    return out
