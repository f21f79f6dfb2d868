"""Atmospheric entry point and impact corridor of an imminent impactor.

Method
------
1. **Coarse grid.** The trajectory is propagated with :func:`neodefense.dynamics.propagator.propagate`
   (one call per state, many output times) to a grid every :data:`COARSE_STEP_S` seconds from
   :data:`WINDOW_BEFORE_S` before ``t_ca`` (the time of the closest approach to the Earth's centre,
   inside the Earth for an impactor) to ``t_ca`` (plus a margin, see below). Geocentric = object −
   Earth (DE440, :func:`neodefense.dynamics.ephemeris.earth_barycentric_state`), ICRF axes (GCRS to
   ~1e-8 relative, i.e. < 0.1 m at the Earth's surface).
2. **Earth-fixed coordinates.** The geocentric ICRF vectors are rotated to the ITRS with astropy's
   public frame transform ``GCRS → ITRS`` (IAU 2006/2000A CIO-based precession-nutation, Earth
   rotation angle from UT1, polar motion; bundled IERS tables only, via
   :func:`neodefense.timescales.configure_astropy_offline`). The rotation is computed once per
   output time by transforming the three unit vectors, then applied to every sample (vectorized).
   :mod:`neodefense.observatories.positions` has the inverse rotation (ITRS → GCRS) in a private
   function; the public astropy transform is used here instead (they agree to millimetres, see
   ``tests/test_entry.py``). Geodetic latitude, east longitude and height above the WGS84
   ellipsoid come from ``EarthLocation.to_geodetic("WGS84")``. Obstimes are built only through
   :mod:`neodefense.timescales` (TDB → UTC MJD → ``Time`` with UT1−UTC and TDB−TT set).
3. **Bracket.** The first grid time at which the height is at or below ``altitude_km`` brackets the
   crossing with the grid time before it. A trajectory whose lowest grid height lies within
   :data:`GRAZE_MARGIN_KM` above the altitude (a grazer whose dip could fall between grid points) is
   also examined on the fine grid around its lowest point.
4. **Refinement.** Inside the bracket the trajectory is re-propagated from the bracketing grid state
   (a short propagation) to a fine grid every :data:`FINE_STEP_S` second, heights are computed as
   above (all samples in one astropy call), and the crossing time is the root of a cubic spline
   through those exact heights (:func:`scipy.optimize.brentq`, to 1e-4 s). The spline's error is far
   below that (height is smooth on 1-s nodes: curvature ~0.02 km/s², so even linear interpolation is
   good to < 1 m). The state at the root is then propagated exactly and converted once more: the
   reported position is at ``altitude_km`` to < 1 m (checked: :data:`HEIGHT_CHECK_KM`).

Model: **ballistic** — no atmosphere (drag, ablation, fragmentation ignored). Above ~40 km a
metre-sized body decelerates by < 1 %, so times and places at higher altitudes are what the
gravitational model (DE440 n-body, the Earth's J2–J4, relativity; ASSIST) gives; below, the real
body lags and falls steeper than the ballistic path.

Output speed: **ITRS-relative** (relative to the rotating Earth, hence to the atmosphere at rest),
``v_ITRS = R v_GCRS − ω × r_ITRS`` with ω the Earth's rotation rate about the ITRS z axis (polar
motion and precession-nutation rates neglected, < 1e-6 relative). The geocentric inertial (GCRS)
speed is returned as well. ``azimuth_deg`` / ``elevation_deg``: direction *from which* the body comes
(the local apparent radiant of the ITRS-relative velocity) at the entry point: azimuth from geodetic
north through east, elevation above the local (ellipsoid-normal) horizon = entry angle.
"""

from __future__ import annotations

import math
import warnings

import erfa
import numpy as np
from astropy import units as u
from astropy.coordinates import GCRS, ITRS, CartesianRepresentation, EarthLocation
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq

from neodefense import timescales
from neodefense.dynamics.ephemeris import AU_KM, earth_barycentric_state
from neodefense.dynamics.nongrav import NonGrav
from neodefense.dynamics.propagator import propagate

__all__ = [
    "COARSE_STEP_S",
    "FINE_STEP_S",
    "WINDOW_BEFORE_S",
    "GRAZE_MARGIN_KM",
    "HEIGHT_CHECK_KM",
    "gcrs_to_itrs_matrices",
    "geodetic_wgs84",
    "entry_point",
    "corridor_points",
]

_SECONDS_PER_DAY = 86_400.0
#: coarse grid step (s): 20 s at 11-72 km/s is 0.2-1.4 thousand km of track
COARSE_STEP_S = 20.0
#: fine grid step (s) inside the bracketing coarse step
FINE_STEP_S = 1.0
#: the coarse grid starts this long before t_ca (extended up to MAX_WINDOW_BEFORE_S if needed)
WINDOW_BEFORE_S = 3600.0
MAX_WINDOW_BEFORE_S = 2.0 * _SECONDS_PER_DAY
#: grid margin after t_ca: entry_point (t_ca given approximately) and corridor_points (one t_ca
#: for samples whose own closest approach differs from it)
ENTRY_AFTER_S = 120.0
CORRIDOR_AFTER_S = 900.0
#: trajectories whose lowest coarse-grid height is within this of the altitude are examined on the
#: fine grid too (between grid points a grazer dips at most ~v²Δt²/(8r) ≈ 1.4 km lower at 12 km/s)
GRAZE_MARGIN_KM = 10.0
#: the final exact height must match the altitude to this (else RuntimeError: a bug, not data)
HEIGHT_CHECK_KM = 1e-3
#: Earth rotation rate (rad/s) on the Earth rotation angle (IERS 2010)
_OMEGA_EARTH_RAD_PER_S = 2.0 * math.pi * 1.00273781191135448 / _SECONDS_PER_DAY


# ---------------------------------------------------------------------------------------------
# frames


def _obstime(tdb_jd: np.ndarray):
    """astropy ``Time`` of TDB JDs through :mod:`neodefense.timescales` (UT1−UTC, TDB−TT set)."""
    return timescales.utc_mjd_to_time(timescales.tdb_jd_to_utc_mjd(np.asarray(tdb_jd, dtype=float)))


def gcrs_to_itrs_matrices(tdb_jd: np.ndarray) -> np.ndarray:
    """(m, 3, 3) rotation matrices ``r_ITRS = M @ r_GCRS`` at TDB JDs, from astropy's transform.

    The three GCRS unit vectors are transformed with ``GCRS(...).transform_to(ITRS(...))``
    (geocentric, no velocities: a pure rotation), giving the matrix columns; the Earth
    orientation (precession-nutation, UT1, polar motion) is evaluated once per time.
    """
    timescales.configure_astropy_offline()
    t_jd = np.atleast_1d(np.asarray(tdb_jd, dtype=float))
    m = t_jd.size
    if m == 0:
        return np.zeros((0, 3, 3))
    t = _obstime(t_jd)
    basis = np.broadcast_to(np.eye(3)[:, None, :], (3, m, 3))  # [basis j, time, xyz]
    rep = CartesianRepresentation(basis[..., 0], basis[..., 1], basis[..., 2], unit=u.km)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year" far from the present
        itrs = GCRS(rep, obstime=t).transform_to(ITRS(obstime=t))
    cols = itrs.cartesian.xyz.to_value(u.km)  # [xyz i, basis j, time]
    return np.ascontiguousarray(np.transpose(cols, (2, 0, 1)))


def geodetic_wgs84(itrs_km: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geodetic latitude (deg), east longitude in (−180, 180] (deg) and WGS84 height (km) of ITRS
    positions (..., 3) in km (astropy ``EarthLocation.to_geodetic("WGS84")``)."""
    xyz = np.asarray(itrs_km, dtype=float)
    loc = EarthLocation.from_geocentric(xyz[..., 0], xyz[..., 1], xyz[..., 2], unit=u.km)
    geo = loc.to_geodetic("WGS84")
    lon = np.asarray(geo.lon.to_value(u.deg), dtype=float)
    lon = np.where(lon > 180.0, lon - 360.0, lon)
    lon = np.where(lon <= -180.0, lon + 360.0, lon)
    return (np.asarray(geo.lat.to_value(u.deg), dtype=float), lon,
            np.asarray(geo.height.to_value(u.km), dtype=float))


def _geocentric_km(times_tdb_jd: np.ndarray, states_au: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geocentric ICRF position (km) and velocity (km/s) of barycentric states (..., 6) at times
    (broadcast over leading axes; the last time axis matches ``states_au.shape[-2]``)."""
    t = np.asarray(times_tdb_jd, dtype=float)
    e_pos, e_vel = earth_barycentric_state(t.reshape(-1))
    e_pos = e_pos.reshape(*t.shape, 3)
    e_vel = e_vel.reshape(*t.shape, 3)
    pos_km = (states_au[..., :3] - e_pos) * AU_KM
    vel_km_s = (states_au[..., 3:] - e_vel) * (AU_KM / _SECONDS_PER_DAY)
    return pos_km, vel_km_s


def _itrs_heights(times_tdb_jd: np.ndarray, states_au: np.ndarray) -> np.ndarray:
    """WGS84 heights (km) of barycentric states (n, m, 6) at times (n, m) (or (m,) shared)."""
    t = np.broadcast_to(np.asarray(times_tdb_jd, dtype=float), states_au.shape[:-1])
    pos_km, _ = _geocentric_km(t, states_au)
    uniq, inverse = np.unique(t.reshape(-1), return_inverse=True)
    mats = gcrs_to_itrs_matrices(uniq)[inverse.reshape(t.shape)]
    itrs = np.einsum("...ij,...j->...i", mats, pos_km)
    return geodetic_wgs84(itrs)[2]


# ---------------------------------------------------------------------------------------------
# crossing search


def _coarse(epoch_tdb_jd: float, states_au: np.ndarray, t_ca_tdb_jd: float, after_s: float,
            altitude_km: float, nongrav: NonGrav | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coarse grid times (m,), states (n, m, 6) and heights (n, m), the window extended backwards
    until every trajectory starts above the altitude (or MAX_WINDOW_BEFORE_S is reached)."""
    before_s = WINDOW_BEFORE_S
    while True:
        n_steps = int(math.ceil((before_s + after_s) / COARSE_STEP_S))
        offsets_s = -before_s + COARSE_STEP_S * np.arange(n_steps + 1)
        offsets_s = np.union1d(offsets_s[offsets_s < after_s], [0.0, after_s])
        times = t_ca_tdb_jd + offsets_s / _SECONDS_PER_DAY
        states = np.stack([propagate(epoch_tdb_jd, s, times, nongrav=nongrav).states_au
                           for s in states_au])
        heights = _itrs_heights(times, states)
        if np.all(heights[:, 0] > altitude_km) or before_s >= MAX_WINDOW_BEFORE_S:
            return times, states, heights
        before_s = min(4.0 * before_s, MAX_WINDOW_BEFORE_S)


def _entries(epoch_tdb_jd: float, states_au: np.ndarray, t_ca_tdb_jd: float, after_s: float,
             altitude_km: float, nongrav: NonGrav | None) -> list[dict | None]:
    """Entry dicts (or None) for barycentric states (n, 6) at ``epoch_tdb_jd``."""
    states_au = np.atleast_2d(np.asarray(states_au, dtype=float))
    if states_au.ndim != 2 or states_au.shape[1] != 6:
        raise ValueError(f"states must have shape (n, 6), got {states_au.shape}")
    if not (np.isfinite(epoch_tdb_jd) and np.isfinite(t_ca_tdb_jd) and np.isfinite(altitude_km)):
        raise ValueError("epoch_tdb_jd, t_ca_tdb_jd and altitude_km must be finite")
    n = len(states_au)
    times, states, heights = _coarse(epoch_tdb_jd, states_au, float(t_ca_tdb_jd), after_s,
                                     float(altitude_km), nongrav)
    m = len(times)
    below = heights <= altitude_km
    # the first grid point must lie above the altitude ("falls to it on the way in")
    valid = heights[:, 0] > altitude_km
    start = np.full(n, -1)
    for i in range(n):
        if not valid[i]:
            continue
        if below[i].any():
            start[i] = int(np.argmax(below[i])) - 1  # bracket [k-1, k]
        elif heights[i].min() < altitude_km + GRAZE_MARGIN_KM:  # a grazer: look between points
            k = int(np.argmin(heights[i]))
            start[i] = max(k - 1, 0)

    # fine grids inside the (one or two) coarse steps after each start
    todo = np.flatnonzero(start >= 0)
    out: list[dict | None] = [None] * n
    if todo.size == 0:
        return out
    fine_t, fine_states, t0 = [], [], []
    for i in todo:
        k0 = int(start[i])
        k1 = min(k0 + 2, m - 1) if not below[i].any() else k0 + 1
        span_s = (times[k1] - times[k0]) * _SECONDS_PER_DAY
        n_fine = max(int(math.ceil(span_s / FINE_STEP_S - 1e-9)), 2)
        offs = np.linspace(0.0, span_s, n_fine + 1)
        t_f = times[k0] + offs / _SECONDS_PER_DAY
        fine_states.append(propagate(times[k0], states[i, k0], t_f, nongrav=nongrav).states_au)
        fine_t.append(offs)
        t0.append(times[k0])
    lengths = [len(f) for f in fine_t]
    width = max(lengths)
    pad_t = np.array([np.pad(t0_ + f / _SECONDS_PER_DAY, (0, width - len(f)), mode="edge")
                      for t0_, f in zip(t0, fine_t, strict=True)])
    pad_s = np.array([np.pad(s, ((0, width - len(s)), (0, 0)), mode="edge") for s in fine_states])
    fine_h = _itrs_heights(pad_t, pad_s)

    roots: dict[int, float] = {}
    for j, i in enumerate(todo):
        offs, h = fine_t[j], fine_h[j, :lengths[j]] - altitude_km
        hit = np.flatnonzero(h <= 0.0)
        if hit.size == 0 or hit[0] == 0:
            continue  # a grazer that stays above (or a bracket without a sign change)
        k = int(hit[0])
        if h[k] == 0.0:
            roots[int(i)] = float(offs[k])
            continue
        spline = CubicSpline(offs, h)
        roots[int(i)] = float(brentq(spline, offs[k - 1], offs[k], xtol=1e-4,
                                     rtol=4 * np.finfo(float).eps))
    if not roots:
        return out

    # exact state at each root (short propagation from the bracketing grid state)
    idx = np.array(sorted(roots))
    j_of = {int(i): j for j, i in enumerate(todo)}
    t_root = np.array([t0[j_of[i]] + roots[i] / _SECONDS_PER_DAY for i in idx])
    x_root = np.stack([
        propagate(t0[j_of[i]], states[i, int(start[i])], [t_r], nongrav=nongrav).states_au[0]
        for i, t_r in zip(idx, t_root, strict=True)
    ])
    pos_km, vel_km_s = _geocentric_km(t_root, x_root)
    mats = gcrs_to_itrs_matrices(t_root)
    r_itrs = np.einsum("nij,nj->ni", mats, pos_km)
    v_itrs = np.einsum("nij,nj->ni", mats, vel_km_s) - np.cross(
        [0.0, 0.0, _OMEGA_EARTH_RAD_PER_S], r_itrs)
    lat, lon, h = geodetic_wgs84(r_itrs)
    if np.any(np.abs(h - altitude_km) > HEIGHT_CHECK_KM):
        raise RuntimeError(f"entry refinement missed the altitude: heights {h} km, "
                           f"wanted {altitude_km} km")
    utc_iso = timescales.tdb_jd_to_utc_iso(t_root, precision=1)
    for row, i in enumerate(idx):
        az, el = _radiant_az_el(lat[row], lon[row], v_itrs[row])
        out[int(i)] = {
            "time_utc": str(utc_iso[row]),
            "time_tdb_jd": float(t_root[row]),
            "lat_deg": float(lat[row]),
            "lon_deg": float(lon[row]),
            "alt_km": float(altitude_km),
            "speed_km_s": float(np.linalg.norm(v_itrs[row])),
            "speed_frame": "ITRS",
            "speed_gcrs_km_s": float(np.linalg.norm(vel_km_s[row])),
            "azimuth_deg": az,
            "elevation_deg": el,
        }
    return out


def _radiant_az_el(lat_deg: float, lon_deg: float, v_itrs: np.ndarray) -> tuple[float, float]:
    """Azimuth (from north through east) and elevation (deg) of the direction −v at a point."""
    phi, lam = math.radians(lat_deg), math.radians(lon_deg)
    east = np.array([-math.sin(lam), math.cos(lam), 0.0])
    north = np.array([-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi)])
    up = np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])
    d = -np.asarray(v_itrs, dtype=float) / float(np.linalg.norm(v_itrs))
    az = math.degrees(math.atan2(float(d @ east), float(d @ north))) % 360.0
    el = math.degrees(math.asin(float(np.clip(d @ up, -1.0, 1.0))))
    return az, el


# ---------------------------------------------------------------------------------------------
# public API


def entry_point(epoch_tdb_jd: float, state_au: np.ndarray, t_ca_tdb_jd: float,
                altitude_km: float = 100.0, nongrav: NonGrav | None = None) -> dict | None:
    """Where and when an impacting trajectory first falls to ``altitude_km`` above the WGS84 ellipsoid.

    ``state_au``: barycentric ICRF [x, y, z, vx, vy, vz] (au, au/day) at ``epoch_tdb_jd`` (TDB
    JD); ``t_ca_tdb_jd``: time of its closest approach to the Earth's centre (e.g. from
    :func:`neodefense.dynamics.propagator.close_approaches`); the crossing is searched from
    :data:`WINDOW_BEFORE_S` before it to :data:`ENTRY_AFTER_S` after it. Ballistic (no atmosphere);
    method in the module docstring.

    Returns ``{"time_utc": ISO 8601 UTC to 0.1 s, "time_tdb_jd", "lat_deg" (geodetic), "lon_deg"
    (east, in (−180, 180]), "alt_km", "speed_km_s" (ITRS-relative), "speed_frame": "ITRS",
    "speed_gcrs_km_s" (geocentric inertial), "azimuth_deg", "elevation_deg" (of the apparent
    radiant)}``, or ``None`` when the trajectory never reaches that altitude (a miss or a grazer).
    """
    state = np.asarray(state_au, dtype=float)
    if state.shape != (6,):
        raise ValueError(f"state_au must have shape (6,), got {state.shape}")
    return _entries(float(epoch_tdb_jd), state[None, :], float(t_ca_tdb_jd), ENTRY_AFTER_S,
                    float(altitude_km), nongrav)[0]


def corridor_points(epoch_tdb_jd: float, states_au: np.ndarray, t_ca_tdb_jd: float,
                    altitude_km: float = 100.0, nongrav: NonGrav | None = None) -> np.ndarray:
    """(n, 2) [geodetic lat_deg, east lon_deg] of the entry points of n states at ``altitude_km``.

    ``states_au`` (n, 6): barycentric ICRF states at ``epoch_tdb_jd`` (e.g. samples along the line
    of variations); ``t_ca_tdb_jd``: the nominal closest approach to the Earth's centre (the grid
    runs to :data:`CORRIDOR_AFTER_S` after it, for samples arriving later). Rows of states that
    never reach the altitude are NaN. Same method as :func:`entry_point` (same numbers for the
    same state), the Earth-orientation transforms vectorized over all samples and times.
    """
    states = np.asarray(states_au, dtype=float)
    if states.ndim != 2 or states.shape[1] != 6:
        raise ValueError(f"states_au must have shape (n, 6), got {states.shape}")
    out = np.full((len(states), 2), np.nan)
    if len(states) == 0:
        return out
    for i, e in enumerate(_entries(float(epoch_tdb_jd), states, float(t_ca_tdb_jd),
                                   CORRIDOR_AFTER_S, float(altitude_km), nongrav)):
        if e is not None:
            out[i] = e["lat_deg"], e["lon_deg"]
    return out
