"""Differential correction: weighted least-squares orbit fit with outlier rejection.

What :func:`fit_orbit` does
---------------------------
1. **Observations**: optical rows of the batch that are not deprecated (obs80 "X") and have a
   finite RA/Dec, and (``radar=True``, the default) radar delays and Dopplers referred to the
   centre of mass (``com`` = "1"; peak-power records are skipped and said so). TDB times
   (:func:`neodefense.timescales.utc_mjd_to_tdb_jd`), observer positions
   (:func:`neodefense.observatories.positions.batch_observer_states`) and the Sun, Earth and Moon
   (DE440) are computed once. Rows whose ``line`` is in ``exclude`` are kept out of the fit
   (their residuals are still reported).
2. **Weights**: :func:`neodefense.orbits.weights.optical_sigmas_arcsec` — ADES rms when reported,
   else Vereš et al. (2017) with the same-night de-weighting — with the RA/Dec correlation. Each
   observation's residual is whitened by the inverse Cholesky factor of its 2×2 covariance.
3. **Initial orbit**: ``initial`` if given; else Gauss (:mod:`neodefense.orbits.iod`, several
   triplets, best first) on the whole arc when it is at most ``IOD_WINDOW_DAYS`` long, else on
   the ``IOD_WINDOW_DAYS`` window with the most observing nights. The two-body Gauss orbit is
   only a starting point: near-Earth objects (2008 TC3, 2024 BX1) fit it with tens of arcsec
   and the full-force-model correction takes it from there. When Gauss finds nothing on a short
   arc (one night of a distant object: no detectable curvature), systematic ranging
   (:mod:`neodefense.orbits.ranging`) describes the admissible orbits and the status is
   ``arc_too_short`` with the ranging summary.
4. **Arc extension**: a long arc is fitted first on the Gauss window, then on windows around it
   widened ``ARC_EXTENSION_FACTOR``× per stage (each stage starts from the previous solution)
   until every observation is in; the last stage fits all of them at the solution epoch with the
   requested non-gravitational parameters.
5. **Least squares**: Levenberg–Marquardt (Gauss–Newton with adaptive damping; λ = 0 when steps
   succeed) on the 6 barycentric ICRF state components at the epoch (+ A2, A1/A2 or A1/A2/A3).
   Design matrix = ∂(α cos δ, δ)/∂r at emission (light time included,
   :func:`neodefense.orbits.observation_model.astrometric_radec`) × the position rows of the
   state-transition matrix (and the non-grav partials) from the propagator's variational
   equations. One propagation with the STM per iteration at the observation times; the states at
   emission times t − τ come from a second-order Taylor step using the Sun, Earth and Moon
   point-mass accelerations (error ≈ jerk·τ³/6 < 1 m for τ < 0.02 day), STM rows likewise to
   first order. Columns are scaled to unit norm; solved by SVD least squares.
   Converged when the correction's Mahalanobis norm sqrt(Δxᵀ N Δx / p) < ``CONVERGENCE_TOL``.
6. **Outlier rejection** (Carpino, Milani & Chesley 2003, Icarus 166, 248): after each converged
   solution every observation gets χ²ᵢ = rᵢᵀ Γᵢ⁻¹ rᵢ with Γᵢ = Γ_obs ∓ Aᵢ C Aᵢᵀ (minus for
   observations in the fit, plus for those out of it). In the fit with χ²ᵢ >
   max(``CHI2_REJECT`` = 10, ``REJECT_RELATIVE`` × the largest χ²) → rejected; rejected with
   χ²ᵢ < ``CHI2_RECOVER`` = 9.21 (the 99 % point of χ² with 2 dof) → recovered; at most
   ``MAX_REJECT_FRACTION`` of the observations rejected (the worst ones). Repeated until the set
   is stable. No rejection for fewer than ``MIN_OBS_FOR_REJECTION`` observations or fewer than
   ``MIN_TRACKLETS_FOR_REJECTION`` station-nights (short-arc allowance).
7. **Radar** (final stage only: the optical arc must give an orbit first): round-trip delay
   (µs) and Doppler (Hz) at the receive time, weighted by the reported rmsDelay / rmsDoppler,
   never rejected automatically (see :func:`_radar_model` for the model: down leg through the
   project's light-time routine, up leg from the transmitter's position at the transmit time,
   the Sun's Shapiro delay on both, the special-relativistic frequency ratio for Doppler).
8. **Results**: covariance = inverse normal matrix (a-priori weights, not rescaled by the fit's
   χ²); heliocentric ecliptic J2000 elements and 1σ through
   :func:`neodefense.orbits.elements.barycentric_icrf_to_elements`; non-grav values and 1σ;
   ``rms_arcsec`` (plain RMS of the used residuals, both coordinates, arcsec) and
   ``rms_normalized`` (JPL's figure: sqrt(χ² / n) over the n used residuals, radar included);
   χ²; counts (radar delays and Dopplers count as observations, as in JPL's n_obs_used);
   per-observation :class:`~neodefense.orbits.solution.Residuals`; H
   (:mod:`neodefense.orbits.photometry`); Earth MOID (:func:`neodefense.orbits.ranging.moid_au`,
   the geocentre's osculating ellipse from DE440 at the epoch, as JPL's SBDB).

A fit never raises on bad data: too few observations, one night of a distant object, all
observations at one time, a station without coordinates, a propagation outside DE440,
divergence or the time limit all give a status (``failed``, ``diverged``, ``arc_too_short``)
and a message.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from neodefense.constants import ARCSEC_PER_RAD, C_AU_PER_DAY, GM_SUN_AU3_PER_DAY2
from neodefense.dynamics import ephemeris
from neodefense.dynamics.nongrav import NONGRAV_NAMES, NonGrav
from neodefense.dynamics.propagator import propagate
from neodefense.observations.batch import ObservationBatch
from neodefense.orbits import elements as elements_mod
from neodefense.orbits import iod, ranging
from neodefense.orbits.observation_model import (
    astrometric_radec,
    light_time_positions,
    residuals_arcsec,
    shapiro_delay_days,
)
from neodefense.orbits.photometry import absolute_magnitude
from neodefense.orbits.solution import (
    ARC_TOO_SHORT,
    CONVERGED,
    DIVERGED,
    ELEMENT_KEYS,
    FAILED,
    OrbitSolution,
    Residuals,
    observation_set_hash,
)
from neodefense.orbits.weights import optical_sigmas_arcsec

__all__ = [
    "ARC_EXTENSION_FACTOR",
    "CHI2_RECOVER",
    "CHI2_REJECT",
    "CONVERGENCE_TOL",
    "IOD_WINDOW_DAYS",
    "MAX_REJECT_FRACTION",
    "MIN_OBS_FOR_REJECTION",
    "MIN_TRACKLETS_FOR_REJECTION",
    "NONGRAV_MODELS",
    "REJECT_RELATIVE",
    "default_epoch_tdb_jd",
    "fit_orbit",
    "solution_at_epoch",
]

#: ``nongrav`` option → fitted Marsden parameters (asteroid g(r) = (1 au / r)²)
NONGRAV_MODELS: dict[str, tuple[str, ...]] = {
    "none": (), "a2": ("A2",), "a1a2": ("A1", "A2"), "a1a2a3": ("A1", "A2", "A3"),
}

#: Carpino et al. (2003) thresholds for 2 degrees of freedom
CHI2_REJECT = 10.0
CHI2_RECOVER = 9.21
#: per rejection pass, reject only χ² above this fraction of the largest (gross outliers first)
REJECT_RELATIVE = 0.25
#: at most this fraction of the observations rejected
MAX_REJECT_FRACTION = 0.10
#: short-arc allowance: no rejection below these counts
MIN_OBS_FOR_REJECTION = 10
MIN_TRACKLETS_FOR_REJECTION = 3
MAX_REJECTION_PASSES = 25
#: convergence: sqrt(Δxᵀ N Δx / p) below this (the correction is 1 % of its 1σ)
CONVERGENCE_TOL = 1e-2
MAX_LM_ITERATIONS = 40
#: Gauss on the whole arc up to this length, else on the window of this length with most nights
IOD_WINDOW_DAYS = 30.0
#: IOD failure on arcs up to this long falls back to ranging (status arc_too_short)
RANGING_MAX_ARC_DAYS = 30.0
#: ranging whose best sample fits worse than this (χ² per residual) means no orbit fits
RANGING_MAX_REDUCED_CHI2 = 25.0
#: window growth per arc-extension stage
ARC_EXTENSION_FACTOR = 3.0
#: smallest half-width of the first extension window (days)
_MIN_HALF_WINDOW_DAYS = 10.0
#: Gauss candidates tried as starting points
_MAX_START_CANDIDATES = 3
#: observations scored per Gauss candidate and triplets tried (speed)
_IOD_MAX_SCORED = 150
_IOD_MAX_TRIPLETS = 8
#: at most this many observations go into ranging (evenly spaced)
_RANGING_MAX_OBS = 200

#: recompute a radar transmitter's state when its predicted transmit time moves by more (s)
_TX_REFRESH_S = 5.0
#: µs per day
_US_PER_DAY = 86400.0e6

#: DE440 GM of the Earth and the Moon (km³/s²) → au³/day²
_GM_EARTH_AU3_PER_DAY2 = 398600.435507 * 86400.0**2 / ephemeris.AU_KM**3
_GM_MOON_AU3_PER_DAY2 = 4902.800118 * 86400.0**2 / ephemeris.AU_KM**3


_log = logging.getLogger(__name__)


class _Timeout(Exception):
    pass


class _FitError(Exception):
    """A fit that cannot go on: status and message for the solution."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ==============================================================================================
# prepared observations
# ==============================================================================================
@dataclasses.dataclass
class _Obs:
    """The usable optical observations of a batch with everything a fit needs (batch order)."""

    rows: np.ndarray  # indices into the batch
    jd1: np.ndarray  # two-part TDB JD
    jd2: np.ndarray
    t: np.ndarray  # jd1 + jd2 (float TDB JD)
    ra: np.ndarray  # deg
    dec: np.ndarray
    observer: np.ndarray  # (N, 3) barycentric ICRF au
    sun: np.ndarray  # (N, 3) barycentric au at t
    sun_vel: np.ndarray  # (N, 3) au/day
    earth: np.ndarray  # (N, 3)
    moon: np.ndarray  # (N, 3)
    sigma: np.ndarray  # (N, 2) arcsec: RA·cosδ, Dec
    corr: np.ndarray  # (N,)
    whiten: np.ndarray  # (N, 2, 2) inverse Cholesky factor of the 2×2 covariance
    active: np.ndarray  # (N,) not excluded by the user
    tracklet: np.ndarray  # (N,) station-night label
    radar: _Radar | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx: np.ndarray) -> _Obs:
        """The optical observations ``idx`` (radar measurements are left out)."""
        return _Obs(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)
                       if f.name != "radar"})


@dataclasses.dataclass
class _Radar:
    """Radar measurements: one per delay or Doppler value (a record with both gives two).

    Times are the receive times (UTC in the record); ``value``/``sigma`` in µs (delay) or Hz
    (Doppler). Transmitter states are cached at the last predicted transmit time ``tx_t`` and
    recomputed when a new prediction moves by more than ``_TX_REFRESH_S``.
    """

    rows: np.ndarray
    is_doppler: np.ndarray
    value: np.ndarray
    sigma: np.ndarray
    frq_hz: np.ndarray
    trx: np.ndarray
    mjd_utc: np.ndarray
    t: np.ndarray  # receive time, float TDB JD
    rx_pos: np.ndarray
    rx_vel: np.ndarray
    sun: np.ndarray
    sun_vel: np.ndarray
    earth: np.ndarray
    moon: np.ndarray
    jd1: np.ndarray
    jd2: np.ndarray
    tx_t: np.ndarray
    tx_pos: np.ndarray
    tx_vel: np.ndarray
    active: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def refresh_transmitters(self, t_tx: np.ndarray) -> None:
        from neodefense.observatories.positions import observer_states

        stale = ~(np.abs(t_tx - self.tx_t) <= _TX_REFRESH_S / 86400.0)
        if not stale.any():
            return
        mjd = self.mjd_utc[stale] - (self.t[stale] - t_tx[stale])
        pos, vel = observer_states(self.trx[stale], mjd)
        self.tx_pos[stale], self.tx_vel[stale], self.tx_t[stale] = pos, vel, t_tx[stale]


def _whitening(sigma: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """L⁻¹ (N, 2, 2) with L Lᵀ = [[σa², ρσaσd], [ρσaσd, σd²]]: whitened r = L⁻¹ r."""
    sa, sd = sigma[:, 0], sigma[:, 1]
    rho = np.clip(corr, -0.999, 0.999)
    root = np.sqrt(1.0 - rho * rho)
    w = np.zeros((len(sa), 2, 2))
    w[:, 0, 0] = 1.0 / sa
    w[:, 1, 0] = -rho / (sa * root)
    w[:, 1, 1] = 1.0 / (sd * root)
    return w


def _prepare_radar(batch: ObservationBatch, excluded: set[int]) -> tuple[_Radar | None, str]:
    """Radar delay/Doppler measurements referred to the centre of mass, with their stations."""
    from neodefense import timescales
    from neodefense.observatories.positions import observer_states

    c = batch.columns
    radar = np.flatnonzero((c["kind"] == "radar") & ~c["deprecated"].astype(bool))
    if radar.size == 0:
        return None, ""
    rows, doppler, value, sigma = [], [], [], []
    n_peak = 0
    for i in radar:
        if str(c["com"][i]).strip() == "0":
            n_peak += 1  # peak-power point: needs a size/shape correction we do not model
            continue
        if np.isfinite(c["delay"][i]) and np.isfinite(c["rmsDelay"][i]) and c["rmsDelay"][i] > 0:
            rows.append(i)
            doppler.append(False)
            value.append(c["delay"][i] * 1e6)
            sigma.append(c["rmsDelay"][i])
        if (np.isfinite(c["doppler"][i]) and np.isfinite(c["rmsDoppler"][i])
                and c["rmsDoppler"][i] > 0 and np.isfinite(c["frq"][i])):
            rows.append(i)
            doppler.append(True)
            value.append(c["doppler"][i])
            sigma.append(c["rmsDoppler"][i])
    note = f"{n_peak} radar record(s) not referred to the centre of mass skipped" if n_peak else ""
    if not rows:
        return None, note
    rows_a = np.asarray(rows)
    mjd = c["obsTime_mjd"][rows_a].astype(float)
    rcv = np.asarray([str(c["rcv"][i] or c["stn"][i]) for i in rows_a], dtype=object)
    trx = np.asarray([str(c["trx"][i] or c["stn"][i]) for i in rows_a], dtype=object)
    jd1, jd2 = timescales.utc_mjd_to_tdb_jd(mjd)
    jd1, jd2 = np.atleast_1d(jd1).astype(float), np.atleast_1d(jd2).astype(float)
    try:
        ephemeris.check_de440_coverage(jd1, jd2, what="radar time")
        rx_pos, rx_vel = observer_states(rcv, mjd)
        observer_states(trx, mjd)  # fail early on a transmitter without coordinates
    except ValueError as exc:
        raise _FitError(FAILED, f"radar station positions: {exc}") from None
    sun, sun_vel = ephemeris.body_barycentric_state("sun", jd1, jd2)
    earth, _ = ephemeris.earth_barycentric_state(jd1, jd2)
    moon, _ = ephemeris.body_barycentric_state("moon", jd1, jd2)
    m = len(rows_a)
    active = ~np.isin(c["line"][rows_a], list(excluded)) if excluded else np.ones(m, bool)
    return _Radar(rows=rows_a, is_doppler=np.asarray(doppler), value=np.asarray(value, float),
                  sigma=np.asarray(sigma, float), frq_hz=c["frq"][rows_a].astype(float) * 1e6,
                  trx=trx, mjd_utc=mjd, t=jd1 + jd2, rx_pos=rx_pos, rx_vel=rx_vel, sun=sun,
                  sun_vel=sun_vel, earth=earth, moon=moon, jd1=jd1, jd2=jd2,
                  tx_t=np.full(m, np.nan), tx_pos=np.zeros((m, 3)), tx_vel=np.zeros((m, 3)),
                  active=active), note


def _prepare(batch: ObservationBatch, exclude: set[int] | None,
             radar: bool = False) -> tuple[_Obs, ObservationBatch, str]:
    """Usable observations, their times, observer/Sun/Earth/Moon positions and weights (and
    the radar measurements when ``radar``); the last item is a note on skipped radar."""
    from neodefense import timescales
    from neodefense.observatories import positions

    c = batch.columns
    usable = ((c["kind"] != "radar") & ~c["deprecated"].astype(bool)
              & np.isfinite(c["ra"]) & np.isfinite(c["dec"]) & np.isfinite(c["obsTime_mjd"]))
    rows = np.flatnonzero(usable)
    sub = batch.take(rows)
    jd1, jd2 = timescales.utc_mjd_to_tdb_jd(sub["obsTime_mjd"])
    jd1 = np.atleast_1d(np.asarray(jd1, dtype=float))
    jd2 = np.atleast_1d(np.asarray(jd2, dtype=float))
    try:
        ephemeris.check_de440_coverage(jd1, jd2, what="observation time")
    except ValueError as exc:
        raise _FitError(FAILED, str(exc)) from None
    try:
        observer, _ = positions.batch_observer_states(sub)
    except ValueError as exc:
        raise _FitError(FAILED, f"observer positions: {exc}") from None
    if not np.all(np.isfinite(observer)):
        bad = sorted(set(sub["stn"][~np.all(np.isfinite(observer), axis=1)].tolist()))
        raise _FitError(FAILED, f"observer positions: no finite position for station(s) {bad}")
    sun, sun_vel = ephemeris.body_barycentric_state("sun", jd1, jd2)
    earth, _ = ephemeris.earth_barycentric_state(jd1, jd2)
    moon, _ = ephemeris.body_barycentric_state("moon", jd1, jd2)
    sig_ra, sig_dec, corr = optical_sigmas_arcsec(sub)
    sigma = np.column_stack([sig_ra, sig_dec]).astype(float)
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        bad = ~np.all(np.isfinite(sigma) & (sigma > 0), axis=1)
        raise _FitError(FAILED, f"non-positive astrometric uncertainty on lines "
                                f"{sub['line'][bad][:10].tolist()}")
    corr = np.nan_to_num(np.asarray(corr, dtype=float))
    excluded = set() if exclude is None else {int(v) for v in exclude}
    active = ~np.isin(sub["line"], list(excluded)) if excluded else np.ones(len(rows), bool)
    night = np.floor(sub["obsTime_mjd"]).astype(np.int64)
    _, tracklet = np.unique(np.stack([np.unique(sub["stn"].astype(str), return_inverse=True)[1]
                                      .ravel(), night], axis=1), axis=0, return_inverse=True)
    radar_part, radar_note = _prepare_radar(batch, excluded) if radar else (None, "")
    obs = _Obs(rows=rows, jd1=jd1, jd2=jd2, t=jd1 + jd2, ra=sub["ra"].astype(float),
               dec=sub["dec"].astype(float), observer=observer, sun=sun, sun_vel=sun_vel,
               earth=earth, moon=moon, sigma=sigma, corr=corr, whiten=_whitening(sigma, corr),
               active=active, tracklet=tracklet.ravel(), radar=radar_part)
    return obs, sub, radar_note


# ==============================================================================================
# model evaluation
# ==============================================================================================
@dataclasses.dataclass
class _Eval:
    res: np.ndarray  # (N, 2) O − C arcsec
    design: np.ndarray  # (N, 2, p) ∂C/∂x, arcsec per unit parameter
    res_w: np.ndarray  # whitened
    design_w: np.ndarray
    object_at_emit: np.ndarray  # (N, 6)
    # radar (M measurements; empty without radar): O − C in µs / Hz, design per unit parameter
    radar_res: np.ndarray
    radar_res_w: np.ndarray
    radar_design_w: np.ndarray
    radar_active: np.ndarray


@dataclasses.dataclass
class _Model:
    """Which parameters are fitted: 6 state components + ``ng_names``; fixed non-grav values."""

    ng_names: tuple[str, ...]
    ng_fixed: dict[str, float]

    @property
    def n_params(self) -> int:
        return 6 + len(self.ng_names)

    def nongrav(self, x: np.ndarray) -> NonGrav | None:
        values = {name: float(self.ng_fixed.get(name, 0.0)) for name in NONGRAV_NAMES}
        for name, v in zip(self.ng_names, x[6:], strict=True):
            values[name] = float(v)
        if not self.ng_names and not any(values.values()):
            return None
        return NonGrav(**values, fitted=self.ng_names)


def _point_mass_acceleration(r: np.ndarray, obs: _Obs | _Radar) -> np.ndarray:
    """Sun + Earth + Moon acceleration (N, 3) au/day² at barycentric positions ``r``."""
    acc = np.zeros_like(r)
    for body, gm in ((obs.sun, GM_SUN_AU3_PER_DAY2), (obs.earth, _GM_EARTH_AU3_PER_DAY2),
                     (obs.moon, _GM_MOON_AU3_PER_DAY2)):
        d = r - body
        acc -= gm * d / np.linalg.norm(d, axis=1)[:, None] ** 3
    return acc


def _taylor_state_at(st: np.ndarray, acc: np.ndarray, t_ref: np.ndarray):
    """``state_at(times)`` for the light-time routine: second-order Taylor steps from the
    propagated states ``st`` at ``t_ref`` (row by row; the times are t_ref − τ)."""

    def state_at(times: np.ndarray) -> np.ndarray:
        dt = (np.asarray(times, dtype=float) - t_ref)[:, None]
        return np.concatenate([st[:, :3] + st[:, 3:] * dt + 0.5 * acc * dt * dt,
                               st[:, 3:] + acc * dt], axis=1)

    return state_at


def _evaluate(epoch: float, x: np.ndarray, obs: _Obs, model: _Model, deadline: float) -> _Eval:
    if time.perf_counter() > deadline:
        raise _Timeout
    if not np.all(np.isfinite(x)):
        raise ValueError("non-finite parameters")
    radar = obs.radar
    n = len(obs)
    jd1, jd2 = obs.jd1, obs.jd2
    if radar is not None:
        jd1, jd2 = np.concatenate([jd1, radar.jd1]), np.concatenate([jd2, radar.jd2])
    prop = propagate(epoch, x[:6], jd1, nongrav=model.nongrav(x), stm=True, times_tdb_jd2=jd2)
    st = prop.states_au[:n]
    acc = _point_mass_acceleration(st[:, :3], obs)
    ast = astrometric_radec(obs.t, obs.observer, _taylor_state_at(st, acc, obs.t))
    res = residuals_arcsec(obs.ra, obs.dec, ast.ra_deg, ast.dec_deg)
    tau = ast.light_time_days[:, None, None]
    dpos = prop.stm[:n, :3, :] - tau * prop.stm[:n, 3:, :]
    if model.ng_names:
        ngp = prop.nongrav_partials[:n]
        dpos = np.concatenate([dpos, ngp[:, :3, :] - tau * ngp[:, 3:, :]], axis=2)
    design = np.einsum("nij,njp->nip", ast.partials, dpos) * ARCSEC_PER_RAD
    res_w = np.einsum("nij,nj->ni", obs.whiten, res)
    design_w = np.einsum("nij,njp->nip", obs.whiten, design)
    if not (np.all(np.isfinite(res)) and np.all(np.isfinite(design))):
        raise ValueError("non-finite predicted positions")
    p = model.n_params
    if radar is None:
        r_res, r_design, r_active = np.zeros(0), np.zeros((0, p)), np.zeros(0, bool)
    else:
        stm = prop.stm[n:]
        ngp = prop.nongrav_partials[n:] if model.ng_names else np.zeros((len(radar), 6, 0))
        r_res, r_design = _radar_model(prop.states_au[n:], stm, ngp, radar)
        r_active = radar.active
        if not (np.all(np.isfinite(r_res)) and np.all(np.isfinite(r_design))):
            raise ValueError("non-finite predicted radar measurements")
    sig = radar.sigma if radar is not None else np.ones(0)
    return _Eval(res, design, res_w, design_w, ast.object_state_at_emit, r_res, r_res / sig,
                 r_design / sig[:, None], r_active)


def _radar_model(st: np.ndarray, stm: np.ndarray, ngp: np.ndarray, radar: _Radar
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Round-trip delay (µs) and Doppler (Hz) residuals and their partials (M, p).

    Down leg: the project's light-time routine from the receiver at the receive time (Sun's
    Shapiro delay included) gives the bounce time and the object's state there. Up leg: the
    transmitter's position at t_bounce − τ_up (iterated; station states from
    :func:`~neodefense.observatories.positions.observer_states`, moved linearly inside
    ``_TX_REFRESH_S``), again with the Shapiro delay. Delay = τ_up + τ_down (coordinate time;
    station clock rates differ from TDB by < 1e-8, < 2 ns here). Doppler = f·(ratio − 1) with
    ratio = (1 − u₁·v_b/c)(1 + u₂·V_r/c) / [(1 − u₁·V_t/c)(1 + u₂·v_b/c)] (u₁ transmitter →
    object, u₂ receiver → object; exact special-relativistic ratio of coordinate frequencies,
    the station-clock factors cancel for one station to < 0.01 Hz; positive when approaching).
    Partials to first order: ∂delay/∂r_b = (u₁ + u₂)/c; Doppler ≈ −f/c (ρ̇₁ + ρ̇₂).
    """
    acc = _point_mass_acceleration(st[:, :3], radar)
    lt = light_time_positions(radar.t, radar.rx_pos, _taylor_state_at(st, acc, radar.t),
                              shapiro=True)
    tau_d = lt.light_time_days
    r_b = lt.object_bary_at_emit
    v_b = st[:, 3:] - acc * tau_d[:, None]
    sun_b = radar.sun - radar.sun_vel * tau_d[:, None]
    t_b = radar.t - tau_d
    tau_u = tau_d.copy()
    for _ in range(6):
        t_tx = t_b - tau_u
        radar.refresh_transmitters(t_tx)
        r_t = radar.tx_pos + radar.tx_vel * (t_tx - radar.tx_t)[:, None]
        new = (np.linalg.norm(r_b - r_t, axis=1) / C_AU_PER_DAY
               + shapiro_delay_days(r_b, r_t, sun_b))
        done = np.all(np.abs(new - tau_u) < 1e-13)
        tau_u = new
        if done:
            break
    v_t = radar.tx_vel
    v_r = radar.rx_vel
    d1 = r_b - r_t
    d2 = r_b - radar.rx_pos
    rho1 = np.linalg.norm(d1, axis=1)
    rho2 = np.linalg.norm(d2, axis=1)
    u1 = d1 / rho1[:, None]
    u2 = d2 / rho2[:, None]
    c = C_AU_PER_DAY

    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sum(a * b, axis=1)

    log_ratio = (np.log1p(-dot(u1, v_b) / c) + np.log1p(dot(u2, v_r) / c)
                 - np.log1p(-dot(u1, v_t) / c) - np.log1p(dot(u2, v_b) / c))
    doppler = radar.frq_hz * np.expm1(log_ratio)
    delay_us = (tau_d + tau_u) * _US_PER_DAY
    model = np.where(radar.is_doppler, doppler, delay_us)
    res = radar.value - model

    # partials w.r.t. the object's state at the bounce (first order), chained with the STM
    dd_dr = (u1 + u2) / c * _US_PER_DAY  # µs per au
    w1, w2 = v_b - v_t, v_b - v_r
    proj1 = w1 - u1 * dot(u1, w1)[:, None]
    proj2 = w2 - u2 * dot(u2, w2)[:, None]
    f = radar.frq_hz[:, None]
    df_dr = -f / c * (proj1 / rho1[:, None] + proj2 / rho2[:, None])  # Hz per au
    df_dv = -f / c * (u1 + u2)  # Hz per au/day
    g_r = np.where(radar.is_doppler[:, None], df_dr, dd_dr)
    g_v = np.where(radar.is_doppler[:, None], df_dv, 0.0)
    tau = tau_d[:, None, None]
    phi_r = stm[:, :3, :] - tau * stm[:, 3:, :]
    phi_v = stm[:, 3:, :]
    design = np.einsum("mi,mip->mp", g_r, phi_r) + np.einsum("mi,mip->mp", g_v, phi_v)
    if ngp.shape[2]:
        psi_r = ngp[:, :3, :] - tau * ngp[:, 3:, :]
        design = np.concatenate([design, np.einsum("mi,mik->mk", g_r, psi_r)
                                 + np.einsum("mi,mik->mk", g_v, ngp[:, 3:, :])], axis=1)
    return res, design


# ==============================================================================================
# linear algebra
# ==============================================================================================
def _stacked(ev: _Eval, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whitened design matrix and residual vector of the used optical rows and active radar."""
    p = ev.design_w.shape[-1]
    jac = np.vstack([ev.design_w[used].reshape(-1, p), ev.radar_design_w[ev.radar_active]])
    res = np.concatenate([ev.res_w[used].reshape(-1), ev.radar_res_w[ev.radar_active]])
    return jac, res


def _scaled(ev: _Eval, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    jac, _ = _stacked(ev, used)
    scale = np.linalg.norm(jac, axis=0)
    scale[~(scale > 0)] = 1.0
    return jac / scale, scale


def _covariance(ev: _Eval, used: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse normal matrix of the used observations and the condition number of J (scaled)."""
    js, scale = _scaled(ev, used)
    _, s, vt = np.linalg.svd(js, full_matrices=False)
    cond = float(s[0] / s[-1]) if s[-1] > 0 else float("inf")
    inv_s2 = np.where(s > s[0] * 1e-15, 1.0 / np.maximum(s, 1e-300) ** 2, 0.0)
    cov_s = (vt.T * inv_s2) @ vt
    return cov_s / np.outer(scale, scale), cond


def _step(ev: _Eval, used: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """LM correction Δx and its Mahalanobis norm sqrt(Δxᵀ N Δx / p)."""
    js, scale = _scaled(ev, used)
    r = _stacked(ev, used)[1]
    p = js.shape[1]
    if lam > 0:
        a = np.vstack([js, np.sqrt(lam) * np.eye(p)])
        b = np.concatenate([r, np.zeros(p)])
    else:
        a, b = js, r
    y, *_ = np.linalg.lstsq(a, b, rcond=1e-14)
    norm = float(np.linalg.norm(js @ y) / np.sqrt(p))
    return y / scale, norm


def _chi2(ev: _Eval, used: np.ndarray) -> float:
    return float(np.sum(ev.res_w[used] ** 2) + np.sum(ev.radar_res_w[ev.radar_active] ** 2))


def _obs_chi2(ev: _Eval, cov: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Carpino et al. (2003) χ² (N,) of every observation: Γ = I ∓ A C Aᵀ (whitened)."""
    m = np.einsum("nip,pq,njq->nij", ev.design_w, cov, ev.design_w)
    sign = np.where(used, -1.0, 1.0)[:, None, None]
    g = np.eye(2)[None] + sign * m
    det = g[:, 0, 0] * g[:, 1, 1] - g[:, 0, 1] * g[:, 1, 0]
    r = ev.res_w
    quad = (g[:, 1, 1] * r[:, 0] ** 2 - (g[:, 0, 1] + g[:, 1, 0]) * r[:, 0] * r[:, 1]
            + g[:, 0, 0] * r[:, 1] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(det > 1e-9, quad / det, 0.0)
    return np.maximum(chi2, 0.0)


# ==============================================================================================
# least squares with rejection
# ==============================================================================================
@dataclasses.dataclass
class _Fit:
    x: np.ndarray
    ev: _Eval
    used: np.ndarray
    rejected: np.ndarray
    cov: np.ndarray
    cond: float
    obs_chi2: np.ndarray
    iterations: int
    note: str = ""


def _least_squares(epoch: float, x: np.ndarray, obs: _Obs, used: np.ndarray, model: _Model,
                   deadline: float, ev: _Eval | None = None) -> tuple[np.ndarray, _Eval, int]:
    """Levenberg–Marquardt to convergence on the ``used`` observations. Raises _FitError."""
    if ev is None:
        try:
            ev = _evaluate(epoch, x, obs, model, deadline)
        except (ValueError, RuntimeError) as exc:
            raise _FitError(FAILED, f"cannot evaluate the starting orbit: {exc}") from None
    chi2 = _chi2(ev, used)
    lam = 0.0
    evaluations = 0
    for _ in range(MAX_LM_ITERATIONS):
        dx, norm = _step(ev, used, lam)
        x_new = x + dx
        try:
            ev_new = _evaluate(epoch, x_new, obs, model, deadline)
            chi2_new = _chi2(ev_new, used)
        except (ValueError, RuntimeError):
            ev_new, chi2_new = None, np.inf
        evaluations += 1
        small = norm < CONVERGENCE_TOL and lam < 1e-2  # not merely shortened by damping
        if ev_new is not None and (chi2_new <= chi2 * (1.0 + 1e-12) or small):
            x, ev, chi2 = x_new, ev_new, chi2_new
            lam = 0.0 if lam <= 1e-4 else lam * 0.1
            if small:
                return x, ev, evaluations
        else:
            lam = max(1e-3, lam * 10.0)
            if lam > 1e8:
                raise _FitError(DIVERGED, f"least squares stalled: no step lowers χ² "
                                          f"({chi2:.6g}) after {evaluations} evaluations")
    raise _FitError(DIVERGED, f"no convergence in {MAX_LM_ITERATIONS} iterations "
                              f"(last correction {norm:.3g} σ, χ² {chi2:.6g})")


def _rejection_allowed(obs: _Obs) -> bool:
    act = obs.active
    return (int(act.sum()) >= MIN_OBS_FOR_REJECTION
            and len(np.unique(obs.tracklet[act])) >= MIN_TRACKLETS_FOR_REJECTION)


def _update_rejections(chi2: np.ndarray, used: np.ndarray, rejected: np.ndarray,
                       active: np.ndarray) -> np.ndarray:
    cap = int(np.floor(MAX_REJECT_FRACTION * active.sum()))
    threshold = max(CHI2_REJECT, REJECT_RELATIVE * float(chi2[used].max(initial=0.0)))
    add = used & (chi2 > threshold)
    recover = rejected & (chi2 < CHI2_RECOVER)
    new = (rejected & ~recover) | add
    if new.sum() > cap:
        keep = np.flatnonzero(new)
        keep = keep[np.argsort(-chi2[keep], kind="stable")[:cap]]
        new = np.zeros_like(new)
        new[keep] = True
    return new


def _fit_with_rejection(epoch: float, x: np.ndarray, obs: _Obs, rejected: np.ndarray,
                        model: _Model, deadline: float) -> _Fit:
    """LM + Carpino et al. rejection passes until the rejected set is stable."""
    rejected = rejected & obs.active
    allow = _rejection_allowed(obs)
    if not allow:
        rejected = np.zeros(len(obs), bool)
    ev = None
    total = 0
    note = ""
    for _ in range(MAX_REJECTION_PASSES):
        used = obs.active & ~rejected
        n_radar = int(obs.radar.active.sum()) if obs.radar is not None else 0
        if used.sum() * 2 + n_radar < model.n_params:
            raise _FitError(FAILED, f"{int(used.sum())} observations cannot determine "
                                    f"{model.n_params} parameters")
        x, ev, its = _least_squares(epoch, x, obs, used, model, deadline, ev)
        total += its
        cov, cond = _covariance(ev, used)
        chi2 = _obs_chi2(ev, cov, used)
        if not allow:
            break
        new = _update_rejections(chi2, used, rejected, obs.active)
        if np.array_equal(new, rejected):
            break
        rejected = new
    else:
        note = f"rejection set still changing after {MAX_REJECTION_PASSES} passes"
        rejected = obs.active & ~used  # the set of the last solution
    _log.debug("fit: %d obs (%d used, %d rejected), epoch %.6f, %d evaluations, chi2 %.6g, "
               "arc %.4g d", len(obs), used.sum(), rejected.sum(), epoch, total,
               _chi2(ev, used), float(np.ptp(obs.t)))
    return _Fit(x, ev, used, rejected, cov, cond, chi2, total, note)


# ==============================================================================================
# epochs, windows, initial orbits
# ==============================================================================================
def default_epoch_tdb_jd(first_tdb_jd: float, last_tdb_jd: float) -> float:
    """A round TDB date near the middle of an arc: 0h TDB (JD .5) nearest the middle if inside
    the arc, else the nearest 0.1, 0.01 or 0.001 day inside it, else the middle itself."""
    mid = 0.5 * (first_tdb_jd + last_tdb_jd)
    for step in (1.0, 0.1, 0.01, 0.001):
        cand = float(np.round((mid - 0.5) / step) * step + 0.5)
        if first_tdb_jd <= cand <= last_tdb_jd:
            return cand
    return float(mid)


def _best_window(t: np.ndarray, nights: np.ndarray, width_days: float) -> np.ndarray:
    """Indices of the observations in the ``width_days`` window with the most distinct nights
    (ties: most observations)."""
    order = np.argsort(t, kind="stable")
    ts = t[order]
    ns = nights[order]
    # nights are non-decreasing in time: distinct nights in [i, j) = new-night marks in (i, j) + 1
    marks = np.concatenate([[0], np.cumsum(ns[1:] != ns[:-1])])
    end = np.searchsorted(ts, ts + width_days, side="right")
    n_nights = marks[end - 1] - marks + 1
    key = n_nights.astype(np.int64) * (len(ts) + 1) + (end - np.arange(len(ts)))
    i = int(np.argmax(key))
    return np.sort(order[i:end[i]])


def _iod_starts(obs: _Obs, idx: np.ndarray) -> tuple[list[tuple[float, np.ndarray]], str]:
    """Barycentric (epoch, state) starting orbits from Gauss on the observations ``idx``."""
    res = iod.initial_orbit((obs.jd1[idx], obs.jd2[idx]), obs.ra[idx], obs.dec[idx],
                            obs.observer[idx], obs.sun[idx],
                            sun_bary_vel_au_per_day=obs.sun_vel[idx],
                            max_triplets=_IOD_MAX_TRIPLETS, max_scored=_IOD_MAX_SCORED,
                            max_rms_arcsec=np.inf)
    starts = []
    for cand in res.candidates[:_MAX_START_CANDIDATES]:
        sun, sun_vel = ephemeris.body_barycentric_state("sun", cand.epoch_tdb_jd)
        starts.append((float(cand.epoch_tdb_jd),
                       cand.state_au + np.concatenate([sun[0], sun_vel[0]])))
    return starts, res.message


def _ranging(obs: _Obs, iod_message: str) -> _FitError | dict[str, Any]:
    """Systematic ranging summary for a short arc (or a _FitError when even that fails)."""
    idx = np.flatnonzero(obs.active)
    if len(idx) > _RANGING_MAX_OBS:
        idx = idx[np.unique(np.linspace(0, len(idx) - 1, _RANGING_MAX_OBS).round().astype(int))]
    try:
        rr = ranging.systematic_ranging((obs.jd1[idx], obs.jd2[idx]), obs.ra[idx], obs.dec[idx],
                                        obs.observer[idx], obs.sun[idx],
                                        sun_bary_vel_au_per_day=obs.sun_vel[idx],
                                        sigma_arcsec=obs.sigma[idx])
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
        return _FitError(FAILED, f"Gauss: {iod_message}; ranging: {exc}")
    if not rr.ok:
        return _FitError(FAILED, f"Gauss: {iod_message}; ranging: {rr.message}")
    reduced = float(rr.chi2.min()) / (2 * len(idx))
    if reduced > RANGING_MAX_REDUCED_CHI2:
        return _FitError(FAILED, f"no orbit fits the observations: Gauss: {iod_message}; the "
                                 f"best of {len(rr)} ranging orbits leaves χ²/2N = {reduced:.3g} "
                                 f"(RMS {np.sqrt(reduced):.3g} σ) — observations of different "
                                 f"objects or bad astrometry?")
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in rr.summary().items()}


def _propagate_state(epoch: float, state: np.ndarray, target: float, model: _Model,
                     x: np.ndarray, deadline: float) -> np.ndarray:
    if target == epoch:
        return np.array(state, dtype=float)
    if time.perf_counter() > deadline:
        raise _Timeout
    try:
        return propagate(epoch, state, [target], nongrav=model.nongrav(x)).states_au[0]
    except (ValueError, RuntimeError) as exc:
        raise _FitError(FAILED, f"cannot propagate to epoch {target}: {exc}") from None


# ==============================================================================================
# public API
# ==============================================================================================
def _nongrav_model(nongrav: str, initial_ng: dict[str, float]) -> _Model:
    key = str(nongrav).strip().lower()
    if key not in NONGRAV_MODELS:
        raise ValueError(f"nongrav must be one of {sorted(NONGRAV_MODELS)}, got {nongrav!r}")
    names = NONGRAV_MODELS[key]
    fixed = {k: float(v) for k, v in initial_ng.items() if k not in names}
    return _Model(names, fixed)


def _parse_initial(initial: Any) -> tuple[float, np.ndarray, dict[str, float]] | None:
    if initial is None:
        return None
    if isinstance(initial, OrbitSolution):
        return float(initial.epoch_tdb_jd), np.asarray(initial.state_icrf_au, float), \
            dict(initial.nongrav)
    items = tuple(initial)
    if len(items) not in (2, 3):
        raise ValueError("initial must be (epoch_tdb_jd, state) or (epoch_tdb_jd, state, "
                         "{'A2': value, ...}) or an OrbitSolution")
    state = np.asarray(items[1], dtype=float)
    if state.shape != (6,) or not np.all(np.isfinite(state)):
        raise ValueError(f"initial state must be 6 finite numbers, got {state!r}")
    ng = dict(items[2]) if len(items) == 3 else {}
    return float(items[0]), state, {str(k): float(v) for k, v in ng.items()}


def fit_orbit(batch: ObservationBatch, designation: str = "", nongrav: str = "none",
              epoch_tdb_jd: float | None = None,
              initial: tuple[float, Sequence[float]] | tuple[float, Sequence[float], dict]
              | OrbitSolution | None = None,
              time_limit_s: float = 120.0, exclude: set[int] | None = None,
              radar: bool = True, close_approach_years: float | None = 100.0) -> OrbitSolution:
    """Fit an orbit to the optical observations of ``batch`` (module docstring for the method).

    ``nongrav``: "none", "a2" (transverse Yarkovsky), "a1a2" or "a1a2a3" — Marsden parameters
    with the asteroid g(r) = (1 au / r)². ``epoch_tdb_jd``: epoch of the solution (default: a
    round TDB date near the middle of the arc, :func:`default_epoch_tdb_jd`). ``initial``:
    starting orbit ``(epoch_tdb_jd, barycentric ICRF state)``, optionally with a dict of
    starting non-grav values, or a previous :class:`OrbitSolution` — skips Gauss and the arc
    extension. ``exclude``: values of the batch's ``line`` column to keep out of the fit.
    ``time_limit_s``: wall-clock limit (status ``failed`` when exceeded). ``radar``: also fit
    the radar delays and Dopplers referred to the centre of mass (final stage only; the
    optical arc must determine an orbit on its own). ``close_approach_years``: search the
    converged nominal orbit for Earth/Moon approaches (0.05/0.01 au) up to that many years after
    today (:mod:`neodefense.orbits.approaches`); ``None`` or 0 skips it.

    Never raises for bad data: the returned solution's ``status`` and ``message`` say what
    happened (``ValueError`` only for a malformed ``nongrav`` or ``initial`` argument).
    """
    t_start = time.perf_counter()
    deadline = t_start + float(time_limit_s)
    init = _parse_initial(initial)
    model = _nongrav_model(nongrav, init[2] if init is not None else {})
    name = designation or _batch_designation(batch)
    sol = OrbitSolution(designation=name, status=FAILED)
    try:
        sol.observation_set_hash = observation_set_hash(batch)
        # a diverging trial step may overflow: results are checked for finiteness instead
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            _fit(batch, sol, model, epoch_tdb_jd, init, exclude, deadline, radar)
    except _FitError as exc:
        sol.status, sol.message = exc.status, exc.message
    except _Timeout:
        sol.status = FAILED
        sol.message = (f"time limit of {time_limit_s:g} s exceeded"
                       + (f" ({sol.message})" if sol.message else ""))
    except Exception as exc:  # noqa: BLE001 - a fit reports, it never raises on data
        sol.status = FAILED
        sol.message = f"internal error: {type(exc).__name__}: {exc}"
    if sol.status != CONVERGED and sol.status != ARC_TOO_SHORT:
        sol.covariance = None
    if sol.status == CONVERGED and close_approach_years:
        from neodefense.orbits.approaches import nominal_close_approaches

        try:
            times = batch["obsTime_mjd"][np.isfinite(batch["obsTime_mjd"])]
            sol.close_approaches = nominal_close_approaches(
                sol, years=close_approach_years,
                last_obs_mjd_utc=float(times.max()) if len(times) else None)
        except ValueError as exc:  # e.g. the horizon beyond DE440 for a strange orbit
            sol.message += f"; close approaches not searched: {exc}"
    sol.runtime_s = time.perf_counter() - t_start
    return sol


def _batch_designation(batch: ObservationBatch) -> str:
    names = [d for d in batch.designation.tolist() if d]
    if not names:
        return ""
    values, counts = np.unique(np.asarray(names, dtype=str), return_counts=True)
    return str(values[np.argmax(counts)])


def _fit(batch: ObservationBatch, sol: OrbitSolution, model: _Model, epoch_req: float | None,
         init: tuple[float, np.ndarray, dict[str, float]] | None, exclude: set[int] | None,
         deadline: float, use_radar: bool) -> None:
    c = batch.columns
    n_radar = int(np.sum(c["kind"] == "radar"))
    n_depr = int(np.sum(c["deprecated"].astype(bool)))
    obs, sub, radar_note = _prepare(batch, exclude, radar=use_radar and n_radar > 0)
    skipped = []
    if n_radar and not use_radar:
        skipped.append(f"{n_radar} radar (not fitted)")
    elif radar_note:
        skipped.append(radar_note)
    if n_depr:
        skipped.append(f"{n_depr} deprecated")
    skipped_note = f"; skipped {', '.join(skipped)}" if skipped else ""
    n = len(obs)
    sol.n_obs = n + (len(obs.radar) if obs.radar is not None else 0)
    if n == 0:
        radar_only = (f" ({n_radar} radar record(s): radar alone cannot start an orbit)"
                      if n_radar else "")
        raise _FitError(FAILED, f"no usable optical observation in {len(batch)} rows"
                                f"{radar_only}{skipped_note}")
    act = np.flatnonzero(obs.active)
    n_times = len(np.unique(np.round(obs.t[act] / 1e-7)))
    if n_times < 2:
        raise _FitError(FAILED, f"too few observations: {len(act)} usable observation(s) at "
                                f"{n_times} distinct time(s); an orbit needs observations at "
                                f"3 or more times{skipped_note}")
    t_act = obs.t[act]
    first, last = float(t_act.min()), float(t_act.max())
    epoch = float(epoch_req) if epoch_req is not None else default_epoch_tdb_jd(first, last)
    sol.epoch_tdb_jd = epoch

    fit: _Fit | None = None
    iterations = 0
    if init is not None:
        x0 = np.concatenate([init[1], [init[2].get(k, 0.0) for k in model.ng_names]])
        state = _propagate_state(init[0], init[1], epoch, model, x0, deadline)
        x0[:6] = state
        fit = _fit_with_rejection(epoch, x0, obs, np.zeros(n, bool), model, deadline)
        iterations += fit.iterations
    else:
        fit, iterations = _staged_fit(obs, epoch, model, deadline, sol)
    if fit is None:
        return  # arc_too_short (ranging summary in sol)

    _fill_solution(sol, fit, obs, sub, batch, epoch, model, skipped_note)
    sol.iterations = iterations


def _staged_fit(obs: _Obs, epoch: float, model: _Model, deadline: float,
                sol: OrbitSolution) -> tuple[_Fit | None, int]:
    """Gauss on a window, then arc extension to all observations (module docstring)."""
    act = np.flatnonzero(obs.active)
    t = obs.t
    arc = float(np.ptp(t[act]))
    night = np.floor(t - 0.5).astype(np.int64)
    window = act if arc <= IOD_WINDOW_DAYS else act[_best_window(t[act], night[act],
                                                                 IOD_WINDOW_DAYS)]
    starts, iod_msg = _iod_starts(obs, window)
    if not starts:
        if arc <= RANGING_MAX_ARC_DAYS:
            out = _ranging(obs.take(act), iod_msg)
            if isinstance(out, _FitError):
                raise out
            sol.status = ARC_TOO_SHORT
            sol.ranging = out
            sol.message = (f"arc too short for an orbit ({arc:.4g} d, {len(act)} obs): "
                           f"{iod_msg}; systematic ranging: {out.get('message', '')}")
            return None, 0
        raise _FitError(FAILED, f"no initial orbit: Gauss on {len(window)} observations: "
                                f"{iod_msg}")

    gravity = _Model((), model.ng_fixed)
    everything = len(window) == len(act)
    # stage 0: the Gauss window (6 parameters), at a round epoch in the window
    iterations = 0
    win_t = t[window]
    w_epoch = epoch if everything else default_epoch_tdb_jd(float(win_t.min()),
                                                             float(win_t.max()))
    stage_model = model if everything else gravity
    errors = []
    fit = None
    for s_epoch, s_state in starts:
        x0 = np.concatenate([s_state, [model.ng_fixed.get(k, 0.0) for k in stage_model.ng_names]])
        try:
            x0[:6] = _propagate_state(s_epoch, s_state, w_epoch, gravity, x0[:6], deadline)
            sub = obs.take(window) if not everything else obs
            fit = _fit_with_rejection(w_epoch, x0, sub, np.zeros(len(sub), bool), stage_model,
                                      deadline)
            iterations += fit.iterations
            break
        except _FitError as exc:
            errors.append(exc.message)
    if fit is None:
        raise _FitError(DIVERGED, f"no Gauss starting orbit converged ({len(starts)} tried; "
                                  f"{errors[0]})")
    if everything:
        return fit, iterations

    # arc extension
    cur_idx = window
    cur_epoch = w_epoch
    x = fit.x
    rejected_full = np.zeros(len(obs), bool)
    rejected_full[cur_idx] = fit.rejected
    center = 0.5 * (float(win_t.min()) + float(win_t.max()))
    half = max(0.5 * float(np.ptp(win_t)), _MIN_HALF_WINDOW_DAYS)
    stage = 0
    while True:
        half *= ARC_EXTENSION_FACTOR
        new_idx = act[np.abs(t[act] - center) <= half]
        if len(new_idx) == len(act):
            break
        if len(new_idx) == len(cur_idx):
            continue
        stage += 1
        sub = obs.take(new_idx)
        try:
            fit = _fit_with_rejection(cur_epoch, x, sub, rejected_full[new_idx], gravity,
                                      deadline)
        except _FitError as exc:
            span = f"{float(np.ptp(t[new_idx])):.0f}-day arc"
            raise _FitError(exc.status, f"arc extension stage {stage} ({span}, "
                                        f"{len(new_idx)} obs): {exc.message}") from None
        iterations += fit.iterations
        x = fit.x
        rejected_full[:] = False
        rejected_full[new_idx] = fit.rejected
        cur_idx = new_idx

    # final: all observations, the solution epoch, the requested non-grav parameters
    state = _propagate_state(cur_epoch, x[:6], epoch, gravity, x[:6], deadline)
    x_final = np.concatenate([state, [model.ng_fixed.get(k, 0.0) for k in model.ng_names]])
    try:
        fit = _fit_with_rejection(epoch, x_final, obs, rejected_full, model, deadline)
    except _FitError as exc:
        raise _FitError(exc.status, f"full arc: {exc.message}") from None
    return fit, iterations + fit.iterations


def _fill_solution(sol: OrbitSolution, fit: _Fit, obs: _Obs, sub: ObservationBatch,
                   batch: ObservationBatch, epoch: float, model: _Model,
                   skipped_note: str) -> None:
    ev, used = fit.ev, fit.used
    n_used = int(used.sum())
    n_radar_used = int(ev.radar_active.sum())
    p = model.n_params
    sol.status = CONVERGED
    sol.state_icrf_au = fit.x[:6].copy()
    sol.covariance = fit.cov
    sol.nongrav = {k: float(v) for k, v in model.ng_fixed.items() if v != 0.0}
    sol.nongrav.update({k: float(v) for k, v in zip(model.ng_names, fit.x[6:], strict=True)})
    sol.nongrav_sigmas = {k: float(np.sqrt(fit.cov[6 + i, 6 + i]))
                          for i, k in enumerate(model.ng_names)}
    el, el_cov = elements_mod.barycentric_icrf_to_elements(epoch, fit.x[:6], fit.cov[:6, :6])
    sig = elements_mod.element_sigmas(el_cov)[0]
    sol.elements = {k: float(v) for k, v in zip(ELEMENT_KEYS, el[0], strict=True)}
    sol.sigmas = {k: float(v) for k, v in zip(ELEMENT_KEYS, sig, strict=True)}
    chi2 = _chi2(ev, used)
    sol.chi2 = chi2
    sol.rms_arcsec = float(np.sqrt(np.mean(ev.res[used] ** 2))) if n_used else float("nan")
    n_resid = 2 * n_used + n_radar_used
    sol.rms_normalized = float(np.sqrt(chi2 / n_resid)) if n_resid else float("nan")
    sol.n_used = n_used + n_radar_used
    sol.n_rejected = int(fit.rejected.sum())

    # residuals for every batch row (NaN where not modelled: radar, deprecated, no RA/Dec)
    nb = len(batch)
    c = batch.columns

    def full(values: np.ndarray, fill: Any, dtype: Any) -> np.ndarray:
        out = np.full(nb, fill, dtype=dtype)
        out[obs.rows] = values
        return out

    sol.residuals = Residuals(
        line=c["line"].copy(), obs_time_mjd_utc=c["obsTime_mjd"].astype(float).copy(),
        stn=c["stn"].copy(),
        ra_arcsec=full(ev.res[:, 0], np.nan, float), dec_arcsec=full(ev.res[:, 1], np.nan, float),
        sigma_ra_arcsec=full(obs.sigma[:, 0], np.nan, float),
        sigma_dec_arcsec=full(obs.sigma[:, 1], np.nan, float),
        chi2=full(fit.obs_chi2, np.nan, float), rejected=full(fit.rejected, False, bool),
        used=full(used, False, bool))
    radar = obs.radar
    if radar is not None:
        res = sol.residuals
        res.delay_us, res.doppler_hz = np.full(nb, np.nan), np.full(nb, np.nan)
        res.sigma_delay_us, res.sigma_doppler_hz = np.full(nb, np.nan), np.full(nb, np.nan)
        res.chi2[radar.rows] = 0.0
        for j, row in enumerate(radar.rows):
            if radar.is_doppler[j]:
                res.doppler_hz[row], res.sigma_doppler_hz[row] = ev.radar_res[j], radar.sigma[j]
            else:
                res.delay_us[row], res.sigma_delay_us[row] = ev.radar_res[j], radar.sigma[j]
            res.chi2[row] += ev.radar_res_w[j] ** 2
            res.used[row] = bool(radar.active[j]) or bool(res.used[row])

    # photometry: H from the fitted geometry
    try:
        h = absolute_magnitude(sub["mag"], sub["band"], ev.object_at_emit[:, :3], obs.observer,
                               obs.sun, mask=obs.active & ~fit.rejected)
        sol.H = None if not np.isfinite(h.H) else round(float(h.H), 3)
    except (ValueError, FloatingPointError):
        sol.H = None
    # Earth MOID from the osculating orbit at the epoch
    try:
        sun, sun_vel = ephemeris.body_barycentric_state("sun", epoch)
        helio = fit.x[:6] - np.concatenate([sun[0], sun_vel[0]])
        moid = float(ranging.moid_au(helio[None, :], epoch)[0])
        sol.moid_au = moid if np.isfinite(moid) else None
    except (ValueError, RuntimeError):
        sol.moid_au = None

    arc = float(np.ptp(obs.t[used])) if n_used else 0.0
    n_opt = len(obs)
    notes = [f"{n_used} of {n_opt} optical observations used, {sol.n_rejected} rejected as "
             f"outliers"]
    if radar is not None:
        n_del = int((radar.active & ~radar.is_doppler).sum())
        n_dop = int((radar.active & radar.is_doppler).sum())
        r_w = ev.radar_res_w[radar.active]
        notes.append(f"{n_del} radar delays and {n_dop} Dopplers used "
                     f"(normalized RMS {np.sqrt(np.mean(r_w**2)) if len(r_w) else 0.0:.3g})")
    n_excl = int((~obs.active).sum())
    if n_excl:
        notes.append(f"{n_excl} excluded on request")
    notes.append(f"arc {arc:.4g} d")
    notes.append(f"RMS {sol.rms_arcsec:.3g}\" (normalized {sol.rms_normalized:.3g})")
    if p and fit.cond > 1e12:
        notes.append(f"poorly constrained (condition number {fit.cond:.2g})")
    if fit.note:
        notes.append(fit.note)
    sol.message = "; ".join(notes) + skipped_note


def solution_at_epoch(solution: OrbitSolution, epoch_tdb_jd: float) -> OrbitSolution:
    """The same orbit at another epoch: state propagated with the force model and its
    non-grav parameters, covariance mapped by the state-transition matrix
    C' = Φ C Φᵀ with Φ = [[∂x(t)/∂x(t0), ∂x(t)/∂A], [0, I]]; elements, 1σ and MOID recomputed.
    Residuals, χ², H and counts are unchanged. A solution without a state is returned as is.
    Raises ``ValueError`` for an epoch outside DE440 (from the propagator)."""
    if not np.all(np.isfinite(solution.state_icrf_au)) or not np.isfinite(solution.epoch_tdb_jd):
        return dataclasses.replace(solution)
    names = tuple(k for k in NONGRAV_NAMES if k in solution.nongrav_sigmas)
    values = {k: float(solution.nongrav.get(k, 0.0)) for k in NONGRAV_NAMES}
    ng = NonGrav(**values, fitted=names) if (names or any(values.values())) else None
    prop = propagate(solution.epoch_tdb_jd, solution.state_icrf_au, [epoch_tdb_jd], nongrav=ng,
                     stm=True)
    state = prop.states_au[0]
    cov = None
    elements_cov = None
    if solution.covariance is not None:
        k = len(names)
        phi = np.eye(6 + k)
        phi[:6, :6] = prop.stm[0]
        if k:
            phi[:6, 6:] = prop.nongrav_partials[0]
        cov = phi @ np.asarray(solution.covariance, dtype=float) @ phi.T
        elements_cov = cov[:6, :6]
    el, el_cov = elements_mod.barycentric_icrf_to_elements(epoch_tdb_jd, state, elements_cov)
    out = dataclasses.replace(solution, epoch_tdb_jd=float(epoch_tdb_jd), state_icrf_au=state,
                              covariance=cov)
    out.elements = {k: float(v) for k, v in zip(ELEMENT_KEYS, el[0], strict=True)}
    if el_cov is not None:
        sig = elements_mod.element_sigmas(el_cov)[0]
        out.sigmas = {k: float(v) for k, v in zip(ELEMENT_KEYS, sig, strict=True)}
    try:
        sun, sun_vel = ephemeris.body_barycentric_state("sun", epoch_tdb_jd)
        helio = state - np.concatenate([sun[0], sun_vel[0]])
        moid = float(ranging.moid_au(helio[None, :], float(epoch_tdb_jd))[0])
        out.moid_au = moid if np.isfinite(moid) else None
    except (ValueError, RuntimeError):
        pass
    return out
