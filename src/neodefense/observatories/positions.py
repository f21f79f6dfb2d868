"""Observer positions and velocities at observation times, in the ICRF.

Frames and units
----------------
* Output axes: ICRF (equatorial J2000). ``origin="geocentric"`` gives GCRS vectors (position of the
  observer relative to the geocentre, ICRF-aligned axes); ``origin="barycentric"`` adds the Earth's
  DE440 barycentric state at the TDB time of each observation.
* Positions in au, velocities in au/day (1 au = 149 597 870.7 km).

Observers
---------
* **Fixed ground stations** (``sys`` empty): MPC parallax constants from the observatory-code
  table: ITRS x = R·ρcosφ′·cos λ, y = R·ρcosφ′·sin λ, z = R·ρsinφ′ with
  R = :data:`EARTH_EQUATORIAL_RADIUS_KM` = 6378.137 km (GRS80/WGS84; the ITRF positions of
  DSS-14 and Green Bank reproduce their MPC constants with 6378.12-6378.14 km). JPL Horizons
  uses 6378.1 km: its stations sit 37 m × ρ lower, below the rounding of many stations'
  constants (5 decimals = 64 m). Rotated to GCRS with the IAU 2006/2000A CIO-based Earth
  orientation (precession-nutation, Earth rotation angle from UT1, polar motion) and the bundled
  IERS tables, identical to astropy's ``EarthLocation.get_gcrs_posvel`` to < 2 mm, but for
  batches dense in time the nutation series is evaluated on a 3-hour grid and interpolated;
  velocity = Earth rotation ω × r (precession-nutation and polar-motion rates neglected: < 1e-7
  relative).
* **Roving observers** (``sys="WGS84"``): pos1 = east longitude (deg), pos2 = geodetic latitude
  (deg), pos3 = height above the WGS84 ellipsoid (m); then as a ground station.
* **Earth-fixed Cartesian** (``sys="ITRF"``): pos1..pos3 = ITRF x, y, z in km; then as above.
* **Space-based observers** (``sys="ICRF_KM"`` or ``"ICRF_AU"``): pos1..pos3 = ICRF position
  relative to the body ``ctr`` (NAIF id; empty means "399", the geocentre, as obs80 satellite
  records are). Their velocity is not reported in obs80/ADES, so the returned velocity is **NaN**
  by default (``space_velocity="nan"``); ``space_velocity="center"`` returns the centre body's
  velocity instead (zero geocentric velocity for ``ctr`` 399), i.e. it ignores the spacecraft's own
  orbital motion (~7.5 km/s in low Earth orbit).

Errors: an unknown station code, a station without parallax constants (space-based or roving
codes such as C51, 247) given without ``sys``/pos, an unknown ``sys`` or an incomplete position
raise ``ValueError`` naming the station (and the row).

Accuracy: against JPL Horizons observer positions at the observation times of 1,558 real
observations from 96 stations (tests/test_observer_positions.py): max 37.6 m, all of it the
radius convention above; with Horizons' 6378.1 km the rest agrees to 0.78 m max, 0.17 m median.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import erfa
import numpy as np

from neodefense import timescales
from neodefense.dynamics import ephemeris
from neodefense.observatories.codes import observatories

__all__ = [
    "EARTH_EQUATORIAL_RADIUS_KM",
    "station_itrs_km",
    "observer_states",
    "batch_observer_states",
]

#: Earth equatorial radius the MPC parallax constants are expressed in (km; GRS80/WGS84/IERS).
EARTH_EQUATORIAL_RADIUS_KM = 6378.137

_SECONDS_PER_DAY = 86400.0
_SPACE_SYS = {"ICRF_KM": 1.0 / ephemeris.AU_KM, "ICRF_AU": 1.0}
_GROUND_SYS = ("", "WGS84", "ITRF")

ArrayLike = np.ndarray | Sequence | None


def _column(values: ArrayLike, n: int, dtype: type, fill: object) -> np.ndarray:
    if values is None:
        return np.full(n, fill, dtype=dtype)
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr.item(), dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"expected {n} values, got shape {arr.shape}")
    return arr


def _strings(values: ArrayLike, n: int) -> np.ndarray:
    arr = _column(values, n, object, "")
    return np.array(["" if v is None else str(v).strip() for v in arr], dtype=object) \
        if arr.dtype == object else arr.astype(str).astype(object)


def station_itrs_km(stn: Sequence[str] | np.ndarray) -> np.ndarray:
    """Earth-fixed (ITRS) x, y, z in km of fixed MPC stations from their parallax constants.

    Raises ``ValueError`` for an unknown code or a code without parallax constants.
    """
    codes = np.asarray(stn, dtype=object)
    table = observatories()
    uniq, inverse = np.unique(codes.astype(str), return_inverse=True)
    xyz = np.empty((len(uniq), 3))
    for k, code in enumerate(uniq.tolist()):
        obs = table.get(code)
        if obs is None:
            raise ValueError(f"unknown observatory code {code!r} (not in the MPC code table)")
        if not obs.is_fixed:
            raise ValueError(
                f"observatory {code!r} ({obs.name}, {obs.observations_type or 'no type'}) has no "
                "parallax constants: its observations must carry the observer position "
                "(sys, pos1..pos3: obs80 second line or ADES)"
            )
        lon = np.radians(obs.longitude_deg)
        xyz[k] = EARTH_EQUATORIAL_RADIUS_KM * np.array(
            [obs.rho_cos_phi * np.cos(lon), obs.rho_cos_phi * np.sin(lon), obs.rho_sin_phi]
        )
    return xyz[inverse.reshape(-1)]


def _wgs84_itrs_km(lon_deg: np.ndarray, lat_deg: np.ndarray, height_m: np.ndarray) -> np.ndarray:
    xyz_m = erfa.gd2gc(1, np.radians(lon_deg), np.radians(lat_deg), height_m)  # 1 = WGS84
    return np.asarray(xyz_m) / 1000.0


#: Earth rotation rate (rad/s) on the Earth rotation angle (IERS 2010), as astropy uses
_OMEGA_EARTH_RAD_PER_S = 2.0 * np.pi * 1.00273781191135448 / _SECONDS_PER_DAY
#: grid step (days, TT) on which the CIP coordinates X, Y, s (IAU 2006/2000A) are evaluated and
#: then interpolated linearly: the fastest nutation term with notable amplitude (13.66 d,
#: 0.09") leaves < 2e-10 rad, i.e. < 2 mm on the station position
_CIP_STEP_DAYS = 0.125


def _cip_xys(tt_jd1: np.ndarray, tt_jd2: np.ndarray) -> tuple[np.ndarray, ...]:
    """CIP X, Y and CIO locator s (rad) at TT (``erfa.xys06a``), grid-interpolated when dense."""
    if tt_jd1.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    ref = np.floor(tt_jd1.min())
    x = ((tt_jd1 - ref) + tt_jd2) / _CIP_STEP_DAYS
    cell = np.floor(x)
    nodes = np.unique(np.concatenate([cell, cell + 1.0]))
    if len(nodes) >= 0.8 * tt_jd1.size:  # sparse in time: direct evaluation is as cheap
        return erfa.xys06a(tt_jd1, tt_jd2)
    gx, gy, gs = erfa.xys06a(ref, nodes * _CIP_STEP_DAYS)
    i = np.searchsorted(nodes, cell)
    w = x - cell
    return tuple(g[i] + (g[i + 1] - g[i]) * w for g in (gx, gy, gs))


def _earth_fixed_gcrs(itrs_km: np.ndarray, mjd_utc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCRS position (au) and velocity (au/day) of Earth-fixed points at UTC MJD times.

    IERS 2010 CIO-based transformation, as astropy's ``EarthLocation.get_gcrs_posvel``:
    r_GCRS = Q(X, Y, s)ᵀ · R3(-ERA) · W(xp, yp, s')ᵀ · r_ITRS with UT1 and polar motion from the
    bundled IERS tables; v_GCRS = ω k_CIP × r_GCRS. Only the precession-nutation series (the
    costly part, ~30 µs per time) is evaluated on a 3-hour grid and interpolated.
    """
    t = timescales.utc_mjd_to_time(mjd_utc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year" before 1960
        tt, ut1 = t.tt, t.ut1
    xp, yp = timescales.polar_motion_rad(mjd_utc)
    rpom = erfa.pom00(xp, yp, erfa.sp00(tt.jd1, tt.jd2))
    x, y, s = _cip_xys(tt.jd1, tt.jd2)
    rc2i = erfa.c2ixys(x, y, s)  # GCRS -> CIRS
    c2t = erfa.c2tcio(rc2i, erfa.era00(ut1.jd1, ut1.jd2), rpom)  # GCRS -> ITRS
    pos_km = np.einsum("nji,nj->ni", c2t, itrs_km)  # transpose: ITRS -> GCRS
    spin_axis = rc2i[:, 2, :]  # CIP (CIRS z axis) in GCRS
    vel_km_per_s = _OMEGA_EARTH_RAD_PER_S * np.cross(spin_axis, pos_km)
    return pos_km / ephemeris.AU_KM, vel_km_per_s * (_SECONDS_PER_DAY / ephemeris.AU_KM)


def observer_states(
    stn: Sequence[str] | np.ndarray | str,
    obs_time_mjd_utc: Sequence[float] | np.ndarray | float,
    sys: ArrayLike | str = None,
    pos1: ArrayLike | float = None,
    pos2: ArrayLike | float = None,
    pos3: ArrayLike | float = None,
    origin: Literal["barycentric", "geocentric"] = "barycentric",
    ctr: ArrayLike | str = None,
    space_velocity: Literal["nan", "center"] = "nan",
) -> tuple[np.ndarray, np.ndarray]:
    """ICRF position (au) and velocity (au/day) of the observer of each observation.

    Vectorized over N observations with mixed stations and observer kinds (see module docstring):
    ``stn`` station codes, ``obs_time_mjd_utc`` UTC MJDs (UT1 before 1962, see
    :mod:`neodefense.timescales`), ``sys``/``pos1..pos3``/``ctr`` the ADES observer-position
    columns (empty ``sys`` = fixed station from the MPC table). Scalars broadcast.

    ``origin="barycentric"`` (default): relative to the solar-system barycentre (DE440 Earth at the
    TDB of the observation added); ``"geocentric"``: relative to the geocentre.

    Returns ``(pos_au (N, 3), vel_au_per_day (N, 3))``. Space-based rows have NaN velocity unless
    ``space_velocity="center"``.
    """
    if origin not in ("barycentric", "geocentric"):
        raise ValueError(f"origin must be 'barycentric' or 'geocentric', not {origin!r}")
    if space_velocity not in ("nan", "center"):
        raise ValueError(f"space_velocity must be 'nan' or 'center', not {space_velocity!r}")
    mjd = np.atleast_1d(np.asarray(obs_time_mjd_utc, dtype=np.float64))
    if mjd.ndim != 1:
        raise ValueError(f"obs_time_mjd_utc must be 1-d, got shape {mjd.shape}")
    n = len(mjd)
    stn_arr = _strings(stn, n)
    sys_arr = np.char.upper(_strings(sys, n).astype(str)).astype(object)
    ctr_arr = _strings(ctr, n)
    p1 = _column(pos1, n, np.float64, np.nan)
    p2 = _column(pos2, n, np.float64, np.nan)
    p3 = _column(pos3, n, np.float64, np.nan)

    pos_au = np.full((n, 3), np.nan)
    vel_au_per_day = np.full((n, 3), np.nan)
    if n == 0:
        return pos_au, vel_au_per_day

    known = np.isin(sys_arr, list(_GROUND_SYS) + list(_SPACE_SYS))
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        raise ValueError(f"row {i} (station {stn_arr[i]!r}): unknown observer position system "
                         f"{sys_arr[i]!r}; expected one of ICRF_KM, ICRF_AU, WGS84, ITRF")
    needs_pos = sys_arr != ""
    incomplete = needs_pos & ~(np.isfinite(p1) & np.isfinite(p2) & np.isfinite(p3))
    if incomplete.any():
        i = int(np.flatnonzero(incomplete)[0])
        raise ValueError(f"row {i} (station {stn_arr[i]!r}, sys {sys_arr[i]}): observer position "
                         "pos1..pos3 incomplete")

    # Earth-fixed observers: one vectorized Earth-orientation call for all of them
    fixed = sys_arr == ""
    wgs = sys_arr == "WGS84"
    itrf = sys_arr == "ITRF"
    ground = fixed | wgs | itrf
    if ground.any():
        itrs_km = np.empty((n, 3))
        if fixed.any():
            itrs_km[fixed] = station_itrs_km(stn_arr[fixed])
        if wgs.any():
            itrs_km[wgs] = _wgs84_itrs_km(p1[wgs], p2[wgs], p3[wgs])
        if itrf.any():
            itrs_km[itrf] = np.column_stack([p1[itrf], p2[itrf], p3[itrf]])
        pos_au[ground], vel_au_per_day[ground] = _earth_fixed_gcrs(itrs_km[ground], mjd[ground])

    space = ~ground
    tdb = None
    if space.any() or origin == "barycentric":
        tdb = timescales.utc_mjd_to_tdb_jd(mjd)
    if space.any():
        scale = np.array([_SPACE_SYS[s] for s in sys_arr[space]])
        rel_au = np.column_stack([p1[space], p2[space], p3[space]]) * scale[:, None]
        centers = np.where(ctr_arr[space] == "", "399", ctr_arr[space])
        geo_pos = np.empty_like(rel_au)
        geo_vel = np.zeros_like(rel_au)
        idx_space = np.flatnonzero(space)
        for center in np.unique(centers):
            sel = centers == center
            if center == "399":
                geo_pos[sel] = rel_au[sel]
                continue
            try:
                naif = int(center)
            except ValueError:
                raise ValueError(f"station {stn_arr[idx_space[sel][0]]!r}: observer centre "
                                 f"{center!r} is not a NAIF id") from None
            rows = idx_space[sel]
            c_pos, c_vel = ephemeris.body_barycentric_state(naif, tdb[0][rows], tdb[1][rows])
            e_pos, e_vel = ephemeris.earth_barycentric_state(tdb[0][rows], tdb[1][rows])
            geo_pos[sel] = rel_au[sel] + c_pos - e_pos
            geo_vel[sel] = c_vel - e_vel
        pos_au[space] = geo_pos
        vel_au_per_day[space] = geo_vel if space_velocity == "center" else np.nan

    if origin == "barycentric":
        assert tdb is not None
        e_pos, e_vel = ephemeris.earth_barycentric_state(tdb[0], tdb[1])
        pos_au += e_pos
        vel_au_per_day += e_vel
    return pos_au, vel_au_per_day


def batch_observer_states(batch, origin: Literal["barycentric", "geocentric"] = "barycentric",
                          space_velocity: Literal["nan", "center"] = "nan"
                          ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`observer_states` for an :class:`~neodefense.observations.batch.ObservationBatch`.

    Every row uses its ``stn`` column; for radar, where transmitter (``trx``) and receiver
    (``rcv``) differ, call :func:`observer_states` with the station you need.
    """
    c = batch.columns
    return observer_states(c["stn"], c["obsTime_mjd"], sys=c["sys"], pos1=c["pos1"],
                           pos2=c["pos2"], pos3=c["pos3"], ctr=c["ctr"], origin=origin,
                           space_velocity=space_velocity)
