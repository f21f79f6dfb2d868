"""Follow-up planning: which risk-list objects a station can observe tonight, and which first.

What ``GET /v1/followup?stn=XXX`` answers (:func:`followup_plan`)
------------------------------------------------------------------
1. **The night** (:func:`night_window`). The station's site comes from its MPC parallax constants
   (:func:`neodefense.observatories.positions.station_itrs_km`; a code without them — satellite
   or roving — has no fixed site and no night: :class:`NoFixedSite`). The night of a local date
   is searched between local mean noon of that date and local mean noon of the next (noon =
   12 h − east longitude / 15°, UTC): the Sun's altitude is evaluated on a 5-minute grid, the
   crossings of ``sun_altitude_deg`` are refined by Brent's method (to < 0.1 s), and the night is
   the longest interval with the Sun below the threshold (polar day: no night; polar night: the
   whole window). It is sampled every ``step_minutes`` from its start, its end included.
   Without a date, the night is the one in progress or the next to begin
   (:func:`default_night_date`); a night in progress is sampled from now on.
2. **Altitudes** (:func:`local_frame`). Topocentric directions are ICRF vectors from the
   observer (barycentric, :func:`~neodefense.observatories.positions.observer_states`, the one
   observer-position code) to the target. The local vertical is the geodetic normal of the
   site (WGS84), and local north, both rotated ITRS → GCRS by that same code: a direction is
   rotated as the difference of two Earth-fixed points (the station and a point one Earth
   radius away along it; the rotation is linear). Altitude = asin(ρ̂·ẑ), azimuth from north
   through east. No refraction and no aberration (the Sun's apparent place differs by ≤ 20.5");
   both are far below what a 20° altitude cut or a −12° twilight means. The Sun is DE440
   (:mod:`neodefense.dynamics.ephemeris`); checked against astropy's ``AltAz`` in the tests.
3. **Predicted positions** (:func:`predict`). The object's current orbit solution (barycentric
   state and covariance at its epoch, non-grav parameters in the order of its ``nongrav`` keys,
   as the impact monitor reads it) is propagated by the one propagator
   (:func:`neodefense.dynamics.propagator.propagate`) with the state-transition matrix to the
   night's samples. Topocentric astrometric RA/Dec and their partials ∂(α cos δ, δ)/∂r come from
   the one light-time routine (:func:`neodefense.orbits.observation_model.astrometric_radec`).
   Its ``state_at`` is a second-order Taylor step from the nearest propagated sample with the
   Sun's point-mass acceleration (light times are seconds to minutes: the neglected planetary
   terms move the object by < GM⊕/(2c²) ≈ 2 mm, whatever its distance), and the STM at the
   emission time is Φ(t − τ) ≈ Φ(t) − τ Φ̇(t). The design row of a new observation at time t is
   H = ∂(α cos δ, δ)/∂r · Φ_r(t − τ) (position rows of the STM with the non-grav partials), and
   the predicted plane-of-sky covariance H P Hᵀ gives the **3σ ellipse** (semi-axes in arcsec,
   position angle of the major axis east of north; :func:`error_ellipse`). Motion rate from the
   topocentric velocity; **V** from H and the geometry with the H-G phase function
   (:mod:`neodefense.orbits.photometry`, G = 0.15).
4. **Observable**: a sample counts when the object is above ``min_altitude_deg`` while the Sun is
   below ``sun_altitude_deg``. The **best time** is the observable sample where the object stands
   highest (least airmass); everything reported for the object is at that time.

The ranking: how much one observation shrinks the uncertainty of the virtual impactors
-----------------------------------------------------------------------------------------
Virtual impactors (VIs) are points of the line of variations (LOV), ``x(σ) = x₀ + σ d``
(:mod:`neodefense.impacts.sampling`, :mod:`neodefense.impacts.search`): the uncertainty that
decides whether a VI is ruled out or confirmed is the uncertainty *along the LOV*, the orbit's
weak direction. As in the monitor, the LOV is the weak direction *as the dynamics stretch it*:
with Φ_r the position rows of the state-transition matrix (non-grav partials included) from the
epoch to a time T, ``u`` is the principal eigenvector of the position covariance Φ_r P Φ_rᵀ at T
(its long axis: the principal eigenvector of the epoch covariance carried to T, in position units
so that velocities and non-grav parameters do not weigh by their units), and the LOV coordinate
of an orbit x is ``s(x) = gᵀ(x − x₀)/√(gᵀPg)`` with ``g = Φ_rᵀ u`` — exactly the σ of
:func:`neodefense.impacts.sampling.lov_direction` (``d = Pg/√(gᵀPg)``: a step σ d moves s by σ).
T is ``LOV_LEAD_DAYS`` before the encounter of the object's most probable VI (from its current
assessment): the along-track spread there is what decides whether that VI hits. Without a VI
time, T is the solution epoch (Φ_r = [I 0]: the principal axis of the epoch position
covariance). The choice matters: for Apophis fitted on 9 days of December 2004, the epoch axis
(mostly the line of sight) maps to 0.55" on the sky two weeks later, while the axis carried to
2006 or beyond maps to 4" — the long axis of the predicted sky ellipse, the direction the
observation can actually measure. The STM to T is one propagation per solution (cached).

One new observation at the best time with 1σ = ``assumed_sigma_arcsec`` in both coordinates
(W = R⁻¹, R = σ² I) updates the information to P'⁻¹ = P⁻¹ + Hᵀ W H. Evaluated without inverting P
(the Kalman form P' = P − P Hᵀ S⁻¹ H P, S = R + H P Hᵀ):

    gᵀP'g / gᵀPg = 1 − hᵀ S⁻¹ h,   h = H d = H P g / √(gᵀPg),

``h`` being the displacement on the sky of a 1σ step along the LOV (how far apart the VIs at
different σ appear tonight; reported as ``lov_1sigma_arcsec``). **sigma_lov_shrink** =
√(gᵀP'g / gᵀPg) is the new 1σ extent along the LOV in units of the old one, and

    **score = 1 − sigma_lov_shrink**   (0: the observation teaches nothing about the LOV;
                                          → 1: it pins the object's place on the LOV).

Why this measures the VI uncertainty: every VI sits at some σᵢ on the LOV; after the observation
the LOV coordinate has 1σ = sigma_lov_shrink (old units), so each VI becomes σᵢ / sigma_lov_shrink
standard deviations from the nominal — the factor by which the observation can rule VIs out (or,
if the object is on its way to one, concentrate the probability on it). An observation is useful
exactly when the VIs spread on the sky (|h|) more than the observation's noise and the other
directions' spread (S). Objects are ranked by score, highest first; ties by cumulative IP
(highest first). An object with a covariance that cannot be used is listed without ellipse and
score, after the scored ones.

Short arcs: an object whose only solutions are ranging ones (status ``arc_too_short``: a cloud of
admissible orbits, no nominal state and covariance) is **skipped with a reason** (``skipped``),
as are objects without a converged solution or whose propagation fails; objects observable at
no sample are listed under ``not_observable`` with their highest altitude in the night.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import math
import threading
import warnings
from collections.abc import Mapping
from typing import Any

import erfa
import numpy as np
from numpy.typing import ArrayLike

from neodefense import timescales
from neodefense.constants import ARCSEC_PER_RAD, GM_SUN_AU3_PER_DAY2
from neodefense.dynamics import ephemeris
from neodefense.dynamics.propagator import propagate
from neodefense.observatories.codes import observatories
from neodefense.observatories.positions import EARTH_EQUATORIAL_RADIUS_KM, observer_states
from neodefense.orbits.observation_model import StateFunction, astrometric_radec, radec_partials
from neodefense.orbits.photometry import hg_phase_function, phase_geometry
from neodefense.orbits.solution import OrbitSolution

__all__ = [
    "FollowupSettings",
    "Night",
    "NoFixedSite",
    "Prediction",
    "Site",
    "UnknownStation",
    "dec_dms",
    "default_night_date",
    "error_ellipse",
    "followup_plan",
    "local_frame",
    "lov_functional",
    "lov_functional_at",
    "lov_shrink",
    "lov_time_tdb_jd",
    "night_window",
    "predict",
    "ra_hms",
    "station_site",
    "sun_altitude_deg",
]

#: grid (minutes) on which the Sun's altitude is scanned for the twilight crossings
SUN_SCAN_MINUTES = 5.0
#: tolerance (days) of the refined crossing times: 0.09 s
CROSSING_TOL_DAYS = 1e-6
#: the LOV is defined this many days before the most probable virtual impactor's encounter
LOV_LEAD_DAYS = 10.0
#: how many predictions (per solution, station and sample times) the process keeps
_CACHE_SIZE = 256
_MINUTES_PER_DAY = 1440.0


class UnknownStation(LookupError):
    """The station code is not in the MPC observatory-code table."""


class NoFixedSite(ValueError):
    """The station has no parallax constants (satellite, roving): it has no night or horizon."""


@dataclasses.dataclass(frozen=True)
class FollowupSettings:
    """The ``[followup]`` settings (config/neodefense.toml)."""

    sun_altitude_deg: float = -12.0
    min_altitude_deg: float = 20.0
    step_minutes: float = 20.0
    assumed_sigma_arcsec: float = 0.5

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> FollowupSettings:
        raw = raw or {}
        out = cls(**{f.name: float(raw[f.name]) for f in dataclasses.fields(cls) if f.name in raw})
        if not (out.step_minutes > 0 and out.assumed_sigma_arcsec > 0):
            raise ValueError("followup.step_minutes and assumed_sigma_arcsec must be positive")
        return out


# -- the site ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Site:
    """A fixed station: MPC code and name, Earth-fixed position, WGS84 geodetic coordinates."""

    code: str
    name: str
    itrs_km: tuple[float, float, float]
    longitude_deg: float  # east
    latitude_deg: float  # geodetic
    height_m: float


def station_site(code: str) -> Site:
    """The site of MPC station ``code``. Raises :class:`UnknownStation` for a code not in the
    table and :class:`NoFixedSite` for one without parallax constants."""
    obs = observatories().get(code)
    if obs is None:
        raise UnknownStation(f"unknown station code {code!r} (not in the MPC observatory-code table)")
    if not obs.is_fixed:
        raise NoFixedSite(f"station {code!r} ({obs.name}) has no fixed site (no parallax "
                          f"constants: {obs.observations_type or 'not a ground station'}); "
                          "it has no night to plan")
    lon = math.radians(obs.longitude_deg)
    xyz_km = EARTH_EQUATORIAL_RADIUS_KM * np.array(
        [obs.rho_cos_phi * math.cos(lon), obs.rho_cos_phi * math.sin(lon), obs.rho_sin_phi])
    if np.linalg.norm(xyz_km) < 0.5 * EARTH_EQUATORIAL_RADIUS_KM:  # 500 = the geocentre
        raise NoFixedSite(f"station {code!r} ({obs.name}) is not on the Earth's surface: it has "
                          "no horizon and no night to plan")
    _, phi, height = erfa.gc2gd(1, xyz_km * 1000.0)  # 1 = WGS84
    return Site(code=code, name=obs.name, itrs_km=tuple(float(v) for v in xyz_km),
                longitude_deg=float(obs.longitude_deg), latitude_deg=math.degrees(float(phi)),
                height_m=float(height))


@dataclasses.dataclass(frozen=True)
class LocalFrame:
    """Observer state and local axes at N times, all barycentric ICRF (au, au/day, unit vectors)."""

    observer_au: np.ndarray  # (N, 3)
    observer_vel_au_per_day: np.ndarray  # (N, 3)
    zenith: np.ndarray  # (N, 3) geodetic vertical
    north: np.ndarray  # (N, 3)
    east: np.ndarray  # (N, 3)


def _local_axes_itrs(site: Site) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = math.radians(site.longitude_deg), math.radians(site.latitude_deg)
    up = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
    north = np.array([-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon),
                      math.cos(lat)])
    return up, north


def local_frame(site: Site, mjd_utc: ArrayLike) -> LocalFrame:
    """The observer's barycentric state and its local vertical, north and east at UTC MJDs.

    Directions are rotated by the one observer-position code: an Earth-fixed direction n is the
    difference of the points station + R·n and station (R one Earth radius), both given to
    :func:`observer_states` as ``sys="ITRF"`` positions; the ITRS → GCRS rotation is linear.
    """
    mjd = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    pos, vel = observer_states(site.code, mjd)
    base = np.asarray(site.itrs_km)
    axes = []
    for axis in _local_axes_itrs(site):
        p = base + EARTH_EQUATORIAL_RADIUS_KM * axis
        moved, _ = observer_states(site.code, mjd, sys="ITRF", pos1=p[0], pos2=p[1], pos3=p[2])
        d = moved - pos
        axes.append(d / np.linalg.norm(d, axis=1)[:, None])
    zenith, north = axes
    return LocalFrame(pos, vel, zenith, north, np.cross(north, zenith))


def altaz_deg(frame: LocalFrame, target_au: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(altitude, azimuth east of north) in degrees of barycentric ``target_au`` (N, 3)."""
    rho = np.atleast_2d(np.asarray(target_au, dtype=float)) - frame.observer_au
    u = rho / np.linalg.norm(rho, axis=1)[:, None]
    alt = np.degrees(np.arcsin(np.clip(np.sum(u * frame.zenith, axis=1), -1.0, 1.0)))
    az = np.degrees(np.arctan2(np.sum(u * frame.east, axis=1),
                               np.sum(u * frame.north, axis=1))) % 360.0
    return alt, az


def _tdb_jd(mjd_utc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():  # nights past the IERS predictions: UT1 held (ms-level)
        warnings.simplefilter("ignore")
        return timescales.utc_mjd_to_tdb_jd(mjd_utc)


def sun_altitude_deg(site: Site, mjd_utc: ArrayLike) -> np.ndarray:
    """Geometric altitude of the Sun's centre (DE440, no refraction) at the site, degrees."""
    mjd = np.atleast_1d(np.asarray(mjd_utc, dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = local_frame(site, mjd)
    jd1, jd2 = _tdb_jd(mjd)
    sun, _ = ephemeris.body_barycentric_state("sun", jd1, jd2)
    return altaz_deg(frame, sun)[0]


# -- the night -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Night:
    """A station's night: the longest interval of the local noon-to-noon window with the Sun below
    the threshold, and its sample times (UTC MJD). ``start``/``end`` None: no night (polar day)."""

    date: dt.date
    window_mjd_utc: tuple[float, float]
    start_mjd_utc: float | None
    end_mjd_utc: float | None
    times_mjd_utc: np.ndarray
    sun_altitude_deg: float
    note: str = ""
    #: the Sun's altitude at the samples (degrees)
    sun_alt_deg: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))


def _date_mjd(date: dt.date) -> float:
    return float(date.toordinal() - dt.date(1858, 11, 17).toordinal())


def _local_noon_mjd_utc(site: Site, date: dt.date) -> float:
    """UTC MJD of local mean noon of ``date`` at the site (12 h − east longitude / 15°)."""
    lon = (site.longitude_deg + 180.0) % 360.0 - 180.0
    return _date_mjd(date) + 0.5 - lon / 360.0


def _refine_crossing(site: Site, threshold_deg: float, a_mjd: float, b_mjd: float) -> float:
    from scipy.optimize import brentq

    def f(t: float) -> float:
        return float(sun_altitude_deg(site, [t])[0]) - threshold_deg

    return float(brentq(f, a_mjd, b_mjd, xtol=CROSSING_TOL_DAYS))


def night_window(site: Site, date: dt.date, sun_threshold_deg: float, step_minutes: float,
                 not_before_mjd_utc: float | None = None) -> Night:
    """The night beginning on the evening of local ``date`` at the site (module docstring).

    ``not_before_mjd_utc``: drop the samples before this time (a night in progress), starting
    the samples there instead.
    """
    lo = _local_noon_mjd_utc(site, date)
    n = int(round(_MINUTES_PER_DAY / SUN_SCAN_MINUTES))
    grid = lo + np.arange(n + 1) * (SUN_SCAN_MINUTES / _MINUTES_PER_DAY)
    dark = sun_altitude_deg(site, grid) < sun_threshold_deg
    window = (float(grid[0]), float(grid[-1]))
    if not dark.any():
        return Night(date, window, None, None, np.zeros(0), sun_threshold_deg,
                     f"no night: the Sun stays above {sun_threshold_deg:g}° at this station")
    # longest run of dark grid points
    edges = np.diff(np.concatenate([[0], dark.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    k = int(np.argmax(ends - starts))
    i0, i1 = int(starts[k]), int(ends[k])
    start = float(grid[0]) if i0 == 0 else _refine_crossing(site, sun_threshold_deg,
                                                            grid[i0 - 1], grid[i0])
    end = float(grid[-1]) if i1 == n else _refine_crossing(site, sun_threshold_deg,
                                                          grid[i1], grid[i1 + 1])
    step = step_minutes / _MINUTES_PER_DAY
    first = start
    note = ""
    if not_before_mjd_utc is not None and not_before_mjd_utc > start:
        first = min(float(not_before_mjd_utc), end)
        note = "night in progress: sampled from now on"
    times = first + np.arange(int(np.floor((end - first) / step)) + 1) * step
    if end - times[-1] > 1e-9:
        times = np.append(times, end)
    return Night(date, window, start, end, times, sun_threshold_deg, note,
                 sun_altitude_deg(site, times))


def _local_date(site: Site, mjd_utc: float) -> dt.date:
    """Local mean solar date at the site of a UTC MJD (the date whose local noon precedes it)."""
    lon = (site.longitude_deg + 180.0) % 360.0 - 180.0
    local = mjd_utc + lon / 360.0 - 0.5  # days since local noon of MJD 0's date
    return dt.date(1858, 11, 17) + dt.timedelta(days=int(math.floor(local)))


def default_night_date(site: Site, now_utc: dt.datetime, sun_threshold_deg: float) -> dt.date:
    """The local date of the night in progress at ``now_utc``, or of the next one to begin."""
    now = _mjd_of(now_utc)
    date = _local_date(site, now)
    night = night_window(site, date, sun_threshold_deg, 60.0)
    if night.end_mjd_utc is not None and night.end_mjd_utc < now:
        return date + dt.timedelta(days=1)
    return date


def _mjd_of(when: dt.datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    when = when.astimezone(dt.UTC)
    midnight = dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    return _date_mjd(when.date()) + (when - midnight).total_seconds() / 86400.0


# -- prediction ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Prediction:
    """An object's predicted astrometry from a site at T sample times.

    ``design`` (T, 2, p): ∂(α cos δ, δ)/∂(epoch parameters) in rad per parameter unit (p = 6 + the
    fitted non-grav parameters); ``cov_radec_rad2`` (T, 2, 2) = H P Hᵀ, or None without a
    covariance. Rates in arcsec/min (α cos δ, δ). ``v_mag`` NaN without H.
    """

    times_mjd_utc: np.ndarray
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    altitude_deg: np.ndarray
    azimuth_deg: np.ndarray
    design: np.ndarray
    cov_radec_rad2: np.ndarray | None
    rate_ra_arcsec_per_min: np.ndarray
    rate_dec_arcsec_per_min: np.ndarray
    delta_au: np.ndarray
    r_au: np.ndarray
    phase_deg: np.ndarray
    v_mag: np.ndarray


def solution_parameters(solution: OrbitSolution) -> tuple[np.ndarray, tuple[str, ...],
                                                          np.ndarray | None]:
    """(x₀ = state + non-grav values, names of the non-grav parameters with covariance rows,
    covariance or None) in the order the impact monitor uses (the ``nongrav`` keys)."""
    names = tuple(solution.nongrav)
    x0 = np.concatenate([np.asarray(solution.state_icrf_au, dtype=float),
                         [float(solution.nongrav[k]) for k in names]])
    cov = None if solution.covariance is None else np.asarray(solution.covariance, dtype=float)
    fitted = names
    if cov is not None and cov.shape != (x0.size, x0.size):
        fitted = ()
        cov = cov[:6, :6] if cov.shape[0] >= 6 else None
    return x0, fitted, cov


def _nongrav(solution: OrbitSolution, x0: np.ndarray, fitted: tuple[str, ...]) -> Any:
    """The solution's :class:`~neodefense.dynamics.nongrav.NonGrav` (None without), with
    partials for the ``fitted`` parameters (those the covariance has rows for)."""
    from neodefense.impacts.encounters import nongrav_from_params

    ng = nongrav_from_params(x0[6:], tuple(solution.nongrav), fitted=False)
    if ng is not None and fitted:
        ng = dataclasses.replace(ng, fitted=fitted)
    return ng


def _taylor_state_function(times_tdb_jd: np.ndarray, states_au: np.ndarray,
                           sun_au: np.ndarray) -> StateFunction:
    """``state_at`` for the light-time routine: a second-order step from the nearest sample with
    the Sun's point-mass acceleration (module docstring for the error bound)."""
    rel = states_au[:, :3] - sun_au
    acc = -GM_SUN_AU3_PER_DAY2 * rel / np.linalg.norm(rel, axis=1)[:, None] ** 3
    order = np.argsort(times_tdb_jd)
    sorted_t = times_tdb_jd[order]

    def state_at(t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=float))
        j = np.clip(np.searchsorted(sorted_t, t), 1, max(sorted_t.size - 1, 1))
        left = np.clip(j - 1, 0, sorted_t.size - 1)
        right = np.clip(j, 0, sorted_t.size - 1)
        pick = np.where(np.abs(t - sorted_t[left]) <= np.abs(t - sorted_t[right]), left, right)
        i = order[pick]
        dt_day = (t - times_tdb_jd[i])[:, None]
        pos = states_au[i, :3] + states_au[i, 3:] * dt_day + 0.5 * acc[i] * dt_day**2
        vel = states_au[i, 3:] + acc[i] * dt_day
        return np.concatenate([pos, vel], axis=1)

    return state_at


def predict(solution: OrbitSolution, site: Site, times_mjd_utc: ArrayLike,
            H: float | None = None) -> Prediction:
    """Predicted topocentric astrometry of ``solution`` from ``site`` (module docstring, step 3).

    Raises ``ValueError`` for a solution without a finite state or a time outside DE440.
    """
    mjd = np.atleast_1d(np.asarray(times_mjd_utc, dtype=float))
    x0, names, cov = solution_parameters(solution)
    if not (np.all(np.isfinite(x0)) and np.isfinite(solution.epoch_tdb_jd)):
        raise ValueError("the solution has no finite state at its epoch")
    ng = _nongrav(solution, x0, names)
    jd1, jd2 = _tdb_jd(mjd)
    prop = propagate(float(solution.epoch_tdb_jd), x0[:6], jd1, nongrav=ng, stm=True,
                     times_tdb_jd2=jd2)
    t_tdb = jd1 + jd2
    sun, _ = ephemeris.body_barycentric_state("sun", jd1, jd2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = local_frame(site, mjd)
    ast = astrometric_radec(t_tdb, frame.observer_au,
                            _taylor_state_function(t_tdb, prop.states_au, sun))
    tau = ast.light_time_days[:, None, None]
    phi = prop.stm
    if names:
        phi = np.concatenate([phi, prop.nongrav_partials], axis=2)
    phi_r_emit = phi[:, :3, :] - tau * phi[:, 3:, :]  # Φ(t − τ) ≈ Φ(t) − τ Φ̇(t)
    design = np.einsum("nij,njk->nik", ast.partials, phi_r_emit)
    cov_radec = None
    if cov is not None and cov.shape[0] == design.shape[2]:
        cov_radec = np.einsum("nij,jk,nlk->nil", design, cov, design)
    obj = ast.object_state_at_emit
    rho = obj[:, :3] - frame.observer_au
    rate = np.einsum("nij,nj->ni", radec_partials(rho), obj[:, 3:] - frame.observer_vel_au_per_day)
    rate *= ARCSEC_PER_RAD / _MINUTES_PER_DAY
    alt, az = altaz_deg(frame, obj[:, :3])
    r, delta, alpha = phase_geometry(obj[:, :3], frame.observer_au, sun)
    h_mag = H if H is not None else solution.H
    if h_mag is not None and np.isfinite(h_mag):
        v_mag = float(h_mag) + 5.0 * np.log10(r * delta) - 2.5 * np.log10(hg_phase_function(alpha))
    else:
        v_mag = np.full(mjd.size, np.nan)
    return Prediction(mjd, ast.ra_deg, ast.dec_deg, alt, az, design, cov_radec, rate[:, 0],
                      rate[:, 1], delta, r, np.degrees(alpha), v_mag)


# -- uncertainty ---------------------------------------------------------------------------------

def error_ellipse(cov_rad2: ArrayLike, n_sigma: float = 3.0) -> tuple[float, float, float]:
    """(semi-major, semi-minor in arcsec, position angle of the major axis in degrees east of
    north, in [0, 180)) of the n_sigma ellipse of a (α cos δ, δ) covariance in rad²."""
    c = np.asarray(cov_rad2, dtype=float)
    eig, vec = np.linalg.eigh(0.5 * (c + c.T))
    eig = np.clip(eig, 0.0, None)
    east, north = vec[0, 1], vec[1, 1]
    pa = math.degrees(math.atan2(east, north)) % 180.0
    scale = n_sigma * ARCSEC_PER_RAD
    return scale * math.sqrt(eig[1]), scale * math.sqrt(eig[0]), pa


def lov_functional(covariance: ArrayLike, stm_position: ArrayLike | None = None) -> np.ndarray:
    """g (p,) with s(x) = gᵀ(x − x₀)/√(gᵀPg) the LOV coordinate (module docstring): g = Φ_rᵀ u,
    u the principal eigenvector of the position covariance Φ_r P Φ_rᵀ at the time the LOV is
    defined (``stm_position`` (3, p) to that time; None: the epoch, Φ_r = [I 0])."""
    c = np.asarray(covariance, dtype=float)
    phi = np.eye(3, c.shape[0]) if stm_position is None else np.asarray(stm_position, dtype=float)
    p_r = phi @ c @ phi.T
    _, vec = np.linalg.eigh(0.5 * (p_r + p_r.T))
    u = vec[:, -1]
    if u[np.argmax(np.abs(u))] < 0:  # the same orientation as sampling.lov_direction
        u = -u
    return phi.T @ u


def lov_functional_at(solution: OrbitSolution, lov_tdb_jd: float | None) -> np.ndarray:
    """:func:`lov_functional` of the solution's covariance with the LOV defined at TDB JD
    ``lov_tdb_jd`` (one propagation with the STM; None or the epoch: at the epoch)."""
    x0, names, cov = solution_parameters(solution)
    if cov is None:
        raise ValueError("the solution has no covariance")
    if lov_tdb_jd is None or lov_tdb_jd == solution.epoch_tdb_jd:
        return lov_functional(cov)
    ng = _nongrav(solution, x0, names)
    prop = propagate(float(solution.epoch_tdb_jd), x0[:6], [float(lov_tdb_jd)], nongrav=ng,
                     stm=True)
    phi = prop.stm[0]
    if names:
        phi = np.concatenate([phi, prop.nongrav_partials[0]], axis=1)
    return lov_functional(cov, phi[:3, :cov.shape[0]])


def lov_time_tdb_jd(virtual_impactors: list[Mapping[str, Any]]) -> float | None:
    """``LOV_LEAD_DAYS`` before the most probable virtual impactor with a time; None if none."""
    timed = [vi for vi in virtual_impactors if vi.get("time_tdb_jd") is not None
             and math.isfinite(float(vi["time_tdb_jd"]))]
    if not timed:
        return None
    best = max(timed, key=lambda vi: float(vi.get("ip") or 0.0))
    return float(best["time_tdb_jd"]) - LOV_LEAD_DAYS


def lov_shrink(covariance: ArrayLike, design: ArrayLike, sigma_arcsec: float,
               functional: ArrayLike) -> tuple[float, float]:
    """(sigma_lov_shrink, |h| in arcsec) of one new observation with design rows ``design``
    (2, p; rad per parameter unit) and 1σ ``sigma_arcsec`` in both coordinates.

    sigma_lov_shrink = √(gᵀP'g / gᵀPg) = √(1 − hᵀS⁻¹h), S = R + H P Hᵀ, h = H P g / √(gᵀPg)
    (module docstring); |h| is the sky displacement of a 1σ step along the LOV.
    """
    p = np.asarray(covariance, dtype=float)
    h_mat = np.asarray(design, dtype=float)
    g = np.asarray(functional, dtype=float)
    pg = p @ g
    var = float(g @ pg)
    if not var > 0.0:
        raise ValueError("the covariance has no extent along the LOV")
    h = h_mat @ pg / math.sqrt(var)
    sigma_rad = sigma_arcsec / ARCSEC_PER_RAD
    s = sigma_rad**2 * np.eye(2) + h_mat @ p @ h_mat.T
    ratio = 1.0 - float(h @ np.linalg.solve(s, h))
    return math.sqrt(min(max(ratio, 0.0), 1.0)), float(np.linalg.norm(h)) * ARCSEC_PER_RAD


# -- formatting ----------------------------------------------------------------------------------

def ra_hms(ra_deg: float, decimals: int = 2) -> str:
    """RA as ``HH MM SS.ss`` (rounded, carries propagated, 24h wraps to 00)."""
    unit = 10**decimals
    total = int(round((ra_deg % 360.0) / 15.0 * 3600.0 * unit)) % (24 * 3600 * unit)
    hours, rest = divmod(total, 3600 * unit)
    minutes, sec = divmod(rest, 60 * unit)
    width = 3 + decimals if decimals else 2
    return f"{hours:02d} {minutes:02d} {sec / unit:0{width}.{decimals}f}"


def dec_dms(dec_deg: float, decimals: int = 1) -> str:
    """Dec as ``+DD MM SS.s`` (rounded, carries propagated)."""
    unit = 10**decimals
    total = int(round(abs(dec_deg) * 3600.0 * unit))
    degrees, rest = divmod(total, 3600 * unit)
    minutes, sec = divmod(rest, 60 * unit)
    width = 3 + decimals if decimals else 2
    sign = "-" if dec_deg < 0 and total else "+"
    return f"{sign}{degrees:02d} {minutes:02d} {sec / unit:0{width}.{decimals}f}"


def _iso(mjd_utc: float) -> str:
    return str(timescales.utc_mjd_to_iso(mjd_utc, 0)[0]) + "Z"


def _iso_tdb(tdb_jd: float) -> str:
    return str(timescales.tdb_jd_to_utc_iso(tdb_jd, precision=0)[0]) + "Z"


def _num(value: Any, digits: int | None = None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value


# -- the plan ------------------------------------------------------------------------------------

_cache: collections.OrderedDict[str, Any] = collections.OrderedDict()
_cache_lock = threading.Lock()


def _cache_key(solution: OrbitSolution, *extra: Any) -> str:
    digest = hashlib.sha256()
    x0, names, cov = solution_parameters(solution)
    for part in (np.array([solution.epoch_tdb_jd]), x0,
                 np.zeros(0) if cov is None else cov.ravel()):
        digest.update(np.ascontiguousarray(part, dtype=float).tobytes())
    digest.update(repr((names, solution.H, extra)).encode())
    return digest.hexdigest()


def _cached(key: str, compute: Any) -> Any:
    """``compute()``, remembered under ``key`` (the last ``_CACHE_SIZE`` results). Solutions are
    immutable catalog rows, keyed here by their content: the same request twice, or the same
    object for another station, does not propagate again."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    out = compute()
    with _cache_lock:
        _cache[key] = out
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return out


def cached_predict(solution: OrbitSolution, site: Site, times_mjd_utc: np.ndarray,
                   H: float | None = None) -> Prediction:
    """:func:`predict`, remembered (see :func:`_cached`)."""
    times = np.ascontiguousarray(times_mjd_utc, dtype=float)
    key = _cache_key(solution, "predict", site.code, site.itrs_km, H,
                     hashlib.sha256(times.tobytes()).hexdigest())
    return _cached(key, lambda: predict(solution, site, times, H))


def cached_lov_functional(solution: OrbitSolution, lov_tdb_jd: float | None) -> np.ndarray:
    """:func:`lov_functional_at`, remembered (see :func:`_cached`)."""
    key = _cache_key(solution, "lov", lov_tdb_jd)
    return _cached(key, lambda: lov_functional_at(solution, lov_tdb_jd))


def _risk_summary(entry: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("rank", "cumulative_ip", "palermo_cum", "palermo_max", "torino_max", "n_vi",
            "year_range", "assessment_id", "H", "diameter_m")
    return {k: entry.get(k) for k in keys}


def object_followup(solution: OrbitSolution, site: Site, night: Night,
                    settings: FollowupSettings, H: float | None = None,
                    lov_tdb_jd: float | None = None) -> dict[str, Any]:
    """One object's follow-up entry for a night: ``{"observable": bool, ...}`` with the best-time
    astrometry, ellipse and score when observable, ``max_altitude_deg`` when not. ``lov_tdb_jd``:
    when the LOV is defined (:func:`lov_time_tdb_jd`; None: the solution epoch)."""
    pred = cached_predict(solution, site, night.times_mjd_utc, H)
    # the crossings are refined to 0.1 s: allow the end samples a hair of numerical slack
    dark = night.sun_alt_deg < settings.sun_altitude_deg + 1e-6
    ok = (pred.altitude_deg >= settings.min_altitude_deg) & dark
    if not ok.any():
        i = int(np.argmax(pred.altitude_deg))
        return {"observable": False, "max_altitude_deg": _num(pred.altitude_deg[i], 2),
                "max_altitude_utc": _iso(pred.times_mjd_utc[i])}
    idx = np.flatnonzero(ok)
    i = int(idx[np.argmax(pred.altitude_deg[idx])])
    ra, dec = float(pred.ra_deg[i]), float(pred.dec_deg[i])
    rate_ra, rate_dec = float(pred.rate_ra_arcsec_per_min[i]), float(pred.rate_dec_arcsec_per_min[i])
    out: dict[str, Any] = {
        "observable": True,
        "best_time_utc": _iso(pred.times_mjd_utc[i]),
        "best_time_mjd_utc": float(pred.times_mjd_utc[i]),
        "observable_from_utc": _iso(pred.times_mjd_utc[idx[0]]),
        "observable_until_utc": _iso(pred.times_mjd_utc[idx[-1]]),
        "ra_deg": _num(ra, 6), "dec_deg": _num(dec, 6),
        "ra_hms": ra_hms(ra), "dec_dms": dec_dms(dec),
        "altitude_deg": _num(pred.altitude_deg[i], 2), "azimuth_deg": _num(pred.azimuth_deg[i], 2),
        "v_mag": _num(pred.v_mag[i], 2),
        "rate_arcsec_per_min": _num(math.hypot(rate_ra, rate_dec), 4),
        "rate_pa_deg": _num(math.degrees(math.atan2(rate_ra, rate_dec)) % 360.0, 2),
        "delta_au": _num(pred.delta_au[i], 6), "r_au": _num(pred.r_au[i], 6),
        "phase_deg": _num(pred.phase_deg[i], 2),
        "ellipse_3sigma": None, "score": None, "sigma_lov_shrink": None,
        "lov_1sigma_arcsec": None,
        "lov_time_utc": None if lov_tdb_jd is None else _iso_tdb(lov_tdb_jd),
        "note": "",
    }
    _, _, cov = solution_parameters(solution)
    from neodefense.impacts.sampling import check_covariance

    why = check_covariance(cov)
    if why or pred.cov_radec_rad2 is None:
        out["note"] = f"no usable covariance ({why or 'not the size of the parameters'}): " \
                      "no ellipse and no score"
        return out
    a, b, pa = error_ellipse(pred.cov_radec_rad2[i], 3.0)
    out["ellipse_3sigma"] = {"semi_major_arcsec": _num(a, 3), "semi_minor_arcsec": _num(b, 3),
                             "pa_deg": _num(pa, 2)}
    shrink, spread = lov_shrink(cov, pred.design[i], settings.assumed_sigma_arcsec,
                                cached_lov_functional(solution, lov_tdb_jd))
    out["sigma_lov_shrink"] = _num(shrink, 6)
    out["score"] = _num(1.0 - shrink, 6)
    out["lov_1sigma_arcsec"] = _num(spread, 3)
    return out


RANKING = ("score = 1 - sigma_lov_shrink: the fractional reduction of the 1-sigma extent along "
           "the line of variations (where the virtual impactors lie: the long axis of the "
           "position uncertainty at lov_time_utc, 10 days before the most probable virtual "
           "impactor, mapped back to the epoch; at the epoch when no impactor time is known) "
           "that one observation at the best time, with assumed_sigma_arcsec in RA*cos(Dec) "
           "and Dec, would give (new information P^-1 + H^T W H). Highest first; ties by "
           "cumulative impact probability.")


def followup_plan(bind: Any, stn: str, night_date: dt.date | None = None,
                  settings: FollowupSettings | None = None, now_utc: dt.datetime | None = None,
                  limit: int | None = None) -> dict[str, Any]:
    """The follow-up list of station ``stn`` for the night of ``night_date`` (default: the night in
    progress or the next) over the catalog ``bind`` (module docstring). Raises
    :class:`UnknownStation` or :class:`NoFixedSite`."""
    settings = settings or FollowupSettings()
    site = station_site(stn)
    with _compute_lock:
        return _plan(bind, site, night_date, settings, now_utc, limit)


#: one plan computed at a time per process: the route runs in a thread pool, and the DE440 reader
#: (jplephem loads segment data lazily, not thread-safe on first use) and ASSIST are shared
_compute_lock = threading.Lock()


def _plan(bind: Any, site: Site, night_date: dt.date | None, settings: FollowupSettings,
          now_utc: dt.datetime | None, limit: int | None) -> dict[str, Any]:
    from neodefense.catalog import alerts as catalog_alerts
    from neodefense.catalog import assessments as catalog_assessments
    from neodefense.catalog import solutions as catalog_solutions
    from neodefense.catalog.queries import UnknownDesignation

    now = now_utc or dt.datetime.now(dt.UTC)
    not_before = None
    if night_date is None:
        night_date = default_night_date(site, now, settings.sun_altitude_deg)
        not_before = _mjd_of(now)
    night = night_window(site, night_date, settings.sun_altitude_deg, settings.step_minutes,
                         not_before)
    objects: list[dict[str, Any]] = []
    not_observable: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    risk = catalog_alerts.risk_list(bind) if night.times_mjd_utc.size else []
    for entry in risk:
        designation = entry["designation"]
        summary = _risk_summary(entry)
        try:
            data = catalog_solutions.latest_solution(bind, designation)
        except UnknownDesignation:
            data = None
        if data is None:
            any_sol = catalog_solutions.latest_solution(bind, designation, ok_only=False)
            reason = "no converged orbit solution"
            if any_sol is not None and any_sol.get("status") == "arc_too_short":
                reason = ("ranging-only solution (short arc): no nominal orbit and covariance "
                          "to predict a position and an ellipse from")
            skipped.append({"designation": designation, "reason": reason, "risk": summary})
            continue
        solution = catalog_solutions.solution_from_dict(data)
        lov_tdb_jd = None
        if entry.get("assessment_id") is not None:
            lov_tdb_jd = lov_time_tdb_jd(
                catalog_assessments.virtual_impactors_of(bind, entry["assessment_id"]))
        try:
            h_mag = solution.H if solution.H is not None and math.isfinite(solution.H) \
                else entry.get("H")  # the current fit's H, else the assessment's
            item = object_followup(solution, site, night, settings, H=h_mag,
                                   lov_tdb_jd=lov_tdb_jd)
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
            skipped.append({"designation": designation, "reason": f"prediction failed: {exc}",
                            "risk": summary})
            continue
        sol_ref = {"id": data["id"], "version": data["version"],
                   "epoch_tdb_jd": data["epoch_tdb_jd"]}
        if not item.pop("observable"):
            not_observable.append({"designation": designation, **item,
                                   "reason": f"below {settings.min_altitude_deg:g}° altitude "
                                             "during the whole night", "risk": summary})
            continue
        objects.append({"rank": None, "designation": designation, **item,
                        "solution": sol_ref, "risk": summary})
    objects.sort(key=lambda o: (o["score"] is None, -(o["score"] or 0.0),
                                -(o["risk"]["cumulative_ip"] or 0.0), o["designation"]))
    for rank, obj in enumerate(objects, start=1):
        obj["rank"] = rank
    if limit is not None:
        objects = objects[:limit]
    return {
        "station": {"code": site.code, "name": site.name, "longitude_deg": site.longitude_deg,
                    "latitude_deg": round(site.latitude_deg, 6), "height_m": round(site.height_m, 1)},
        "night": {
            "date": night.date.isoformat(),
            "start_utc": None if night.start_mjd_utc is None else _iso(night.start_mjd_utc),
            "end_utc": None if night.end_mjd_utc is None else _iso(night.end_mjd_utc),
            "start_mjd_utc": night.start_mjd_utc, "end_mjd_utc": night.end_mjd_utc,
            "n_samples": int(night.times_mjd_utc.size), "note": night.note,
        },
        "settings": dataclasses.asdict(settings),
        "ranking": RANKING,
        "generated_utc": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "count": len(objects),
        "objects": objects,
        "not_observable": not_observable,
        "skipped": skipped,
    }
