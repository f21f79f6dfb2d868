"""Initial orbit determination (IOD): Gauss's method on observation triplets, best of several.

Conventions
-----------
* Frames: heliocentric ICRF (equatorial J2000 axes). Positions in au, velocities in au/day.
  Inputs are the *topocentric astrometric* RA/Dec (degrees) of the observations and the observer
  positions; :func:`initial_orbit` takes barycentric observer and Sun positions (what
  :func:`neodefense.observatories.positions.batch_observer_states` and
  :func:`neodefense.dynamics.ephemeris.body_barycentric_state` return) and subtracts the Sun.
* Times are TDB Julian dates: a float array, or a two-part ``(jd1, jd2)`` tuple as
  :func:`neodefense.timescales.utc_mjd_to_tdb_jd` returns. Internally days from a reference.
* Dynamics: heliocentric two-body motion (Sun only), the standard approximation for IOD; planetary
  (and, for close approaches, geocentric) perturbations are left to the differential correction.
  Light time is included (the object is seen where it was at t - rho/c); stellar aberration is
  not, since astrometric positions (MPC/ADES) are referred to the catalogue frame without it.
* Residuals: arcsec, (RA·cos Dec, Dec), observed minus computed
  (:func:`neodefense.orbits.observation_model.residuals_arcsec`).

Two-body machinery (also used by :mod:`neodefense.orbits.ranging`): :func:`kepler_propagate`
(universal variables, Laguerre-Conway iteration, vectorised over any number of states and times)
and :func:`two_body_astrometry` (topocentric RA/Dec of two-body states through the project's
light-time routine, :mod:`neodefense.orbits.observation_model`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from neodefense.constants import ARCSEC_PER_RAD, C_AU_PER_DAY, GM_SUN_AU3_PER_DAY2
from neodefense.dynamics import ephemeris
from neodefense.orbits import observation_model
from neodefense.orbits.elements import kepler_propagate

__all__ = [
    "IODCandidate",
    "IODResult",
    "as_days",
    "unit_vectors",
    "kepler_propagate",
    "two_body_astrometry",
    "gauss",
    "select_triplets",
    "initial_orbit",
    "BatchArrays",
    "batch_arrays",
    "initial_orbit_from_batch",
]

TimesLike = np.ndarray | Sequence[float] | tuple[np.ndarray, np.ndarray]


# ==============================================================================================
# small helpers
# ==============================================================================================
def as_days(times_tdb_jd: TimesLike, ref_tdb_jd: float | None = None
            ) -> tuple[float, np.ndarray]:
    """``(ref_tdb_jd, days)``: times as days since a reference TDB JD, without precision loss.

    ``times_tdb_jd`` is a float array of TDB Julian dates or a two-part ``(jd1, jd2)`` tuple.
    The reference defaults to the whole-day floor of the first time (a half-integer JD).
    """
    if isinstance(times_tdb_jd, tuple) and len(times_tdb_jd) == 2:
        jd1 = np.atleast_1d(np.asarray(times_tdb_jd[0], dtype=float))
        jd2 = np.broadcast_to(np.asarray(times_tdb_jd[1], dtype=float), jd1.shape)
    else:
        jd1 = np.atleast_1d(np.asarray(times_tdb_jd, dtype=float))
        jd2 = np.zeros_like(jd1)
    if ref_tdb_jd is None:
        ref_tdb_jd = float(np.floor(jd1[0] + jd2[0] - 0.5) + 0.5) if jd1.size else 0.0
    return float(ref_tdb_jd), (jd1 - ref_tdb_jd) + jd2


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """ICRF unit vectors (..., 3) of the directions (RA, Dec) in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


# ==============================================================================================
# two-body propagation: universal variables, vectorised
# ==============================================================================================
def two_body_astrometry(states_helio_au: np.ndarray, epoch_tdb_jd: float | np.ndarray,
                        obs_times_tdb_jd: np.ndarray, observer_bary_au: np.ndarray,
                        sun_bary_au: np.ndarray, sun_bary_vel_au_per_day: np.ndarray,
                        mu: float = GM_SUN_AU3_PER_DAY2
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Topocentric astrometric RA/Dec of heliocentric two-body states, light time included.

    ``states_helio_au`` (K, 6) or (6,) heliocentric ICRF at ``epoch_tdb_jd`` (scalar or (K,));
    M observations at ``obs_times_tdb_jd`` (M,) (float TDB JD) seen from ``observer_bary_au``
    (M, 3), with the Sun's barycentric position and velocity (M, 3) at those times. The light
    time is :func:`neodefense.orbits.observation_model.light_time_positions` (the project's one
    light-time routine) with a two-body ``state_at``: the heliocentric Kepler state plus the
    Sun's barycentric position, carried back linearly from the observation time (its
    acceleration over a light time moves it < 1 mm). Returns ``(ra_deg, dec_deg,
    light_time_days)``, each (K, M) (or (M,) for a single state).
    """
    st = np.asarray(states_helio_au, dtype=float)
    single = st.ndim == 1
    st = np.atleast_2d(st)
    n_st = st.shape[0]
    t_obs = np.atleast_1d(np.asarray(obs_times_tdb_jd, dtype=float))
    m = t_obs.size
    ep = np.broadcast_to(np.asarray(epoch_tdb_jd, dtype=float), (n_st,))
    k_idx = np.repeat(np.arange(n_st), m)
    m_idx = np.tile(np.arange(m), n_st)
    t_rows = t_obs[m_idx]
    sun_p = np.asarray(sun_bary_au, dtype=float)[m_idx]
    sun_v = np.asarray(sun_bary_vel_au_per_day, dtype=float)[m_idx]
    obs = np.asarray(observer_bary_au, dtype=float)[m_idx]
    r0 = st[k_idx, :3]
    v0 = st[k_idx, 3:]
    ep_rows = ep[k_idx]

    def state_at(times: np.ndarray) -> np.ndarray:
        r, v = kepler_propagate(r0, v0, times - ep_rows, mu)
        back = (times - t_rows)[:, None]
        return np.concatenate([r + sun_p + sun_v * back, v + sun_v], axis=-1)

    lt = observation_model.light_time_positions(t_rows, obs, state_at)
    ra, dec = observation_model.radec_from_vectors(lt.object_bary_at_emit - obs)
    tau = lt.light_time_days
    if single:
        return ra, dec, tau
    return ra.reshape(n_st, m), dec.reshape(n_st, m), tau.reshape(n_st, m)


# ==============================================================================================
# Gauss's method
# ==============================================================================================
def _fg_exact(r2: np.ndarray, v2: np.ndarray, tau: np.ndarray, mu: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact Lagrange f, g for propagating (r2, v2) by each τ (days)."""
    r, _ = kepler_propagate(r2[None, :], v2[None, :], tau, mu)
    # r = f r2 + g v2: solve the 2-unknown least squares per τ (exact up to round-off)
    basis = np.stack([r2, v2], axis=1)  # (3, 2)
    coef, *_ = np.linalg.lstsq(basis, r.T, rcond=None)
    return coef[0], coef[1]


def gauss(obs_times_tdb_jd: TimesLike, ra_deg: Sequence[float] | np.ndarray,
          dec_deg: Sequence[float] | np.ndarray, observer_helio_au: np.ndarray, *,
          light_time: bool = True, mu: float = GM_SUN_AU3_PER_DAY2, max_iter: int = 100,
          tol: float = 1e-12) -> list[np.ndarray]:
    """Gauss's method on three observations: candidate heliocentric states at the middle time.

    ``obs_times_tdb_jd`` (3,) TDB JD (float or two-part), ``ra_deg``/``dec_deg`` (3,) topocentric
    astrometric, ``observer_helio_au`` (3, 3) heliocentric ICRF observer positions. Every real
    positive root of Lagrange's 8th-degree equation in r2 is refined: the f, g series start is
    replaced by exact two-body f, g (universal variables) and the times by light-time-corrected
    emission times, until the three ranges change by < ``tol`` (relative); the best iterate is
    then polished by Newton's method so that the state reproduces the three observations to
    < 1e-7 arcsec (the substitution alone can run away from a true root). Roots that give a
    non-positive range (the "observer" root rho2 ≈ 0 included) or do not fit the three
    observations to 1 mas are dropped; duplicates are merged.

    Returns a list of (6,) states (x, y, z au, vx, vy, vz au/day) at the *observation* time of the
    middle observation (the emission-time state propagated by rho2/c), possibly empty.
    """
    _, t = as_days(obs_times_tdb_jd)
    if t.shape != (3,):
        raise ValueError(f"gauss needs exactly 3 times, got {t.shape}")
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    L = unit_vectors(ra, dec)
    R = np.asarray(observer_helio_au, dtype=float)
    if L.shape != (3, 3) or R.shape != (3, 3):
        raise ValueError("gauss needs 3 directions and 3 observer positions (3, 3)")
    tau1, tau3 = t[0] - t[1], t[2] - t[1]
    tau = tau3 - tau1
    if not (tau1 < 0 < tau3):
        raise ValueError("gauss needs three strictly increasing times")
    p1, p2, p3 = np.cross(L[1], L[2]), np.cross(L[0], L[2]), np.cross(L[0], L[1])
    d0 = float(L[0] @ p1)
    if abs(d0) < 1e-15:
        return []
    D = R @ np.stack([p1, p2, p3], axis=1)  # D[m, n] = R_m · p_n
    A = (-D[0, 1] * tau3 / tau + D[1, 1] + D[2, 1] * tau1 / tau) / d0
    B = (D[0, 1] * (tau3**2 - tau**2) * tau3 / tau
         + D[2, 1] * (tau**2 - tau1**2) * tau1 / tau) / (6.0 * d0)
    E = float(R[1] @ L[1])
    R2sq = float(R[1] @ R[1])
    a = -(A * A + 2.0 * A * E + R2sq)
    b = -2.0 * mu * B * (A + E)
    c = -(mu * B) ** 2
    roots = np.roots([1.0, 0.0, a, 0.0, 0.0, b, 0.0, 0.0, c])
    real = roots[(np.abs(roots.imag) <= 1e-9 * np.abs(roots)) & (roots.real > 0)].real

    out: list[np.ndarray] = []
    for r2n in np.unique(real):
        sol = _gauss_refine(float(r2n), t, ra, dec, L, R, mu, light_time, max_iter, tol)
        if sol is None:
            continue
        if all(np.linalg.norm(sol - s) > 1e-8 * np.linalg.norm(s) for s in out):
            out.append(sol)
    return out


def _solve_ranges(c1: float, c3: float, L: np.ndarray, R: np.ndarray) -> np.ndarray | None:
    """Ranges from coplanarity r2 = c1 r1 + c3 r3 with r_i = R_i + rho_i L_i."""
    M = np.column_stack([c1 * L[0], -L[1], c3 * L[2]])
    rhs = -c1 * R[0] + R[1] - c3 * R[2]
    try:
        return np.linalg.solve(M, rhs)
    except np.linalg.LinAlgError:
        return None


def _three_obs_residuals(state: np.ndarray, t: np.ndarray, ra: np.ndarray, dec: np.ndarray,
                         R: np.ndarray, mu: float, light_time: bool) -> np.ndarray:
    """O-C (6,) in radians of a heliocentric state at t[1] against the three observations.

    Heliocentric geometry with the Sun at rest (as Gauss's method itself); light time through
    :func:`neodefense.orbits.observation_model.light_time_positions`. Inf when unusable.
    """
    def state_at(times: np.ndarray) -> np.ndarray:
        r, v = kepler_propagate(state[:3], state[3:], np.asarray(times) - t[1], mu)
        return np.concatenate([r, v], axis=-1)

    try:
        with np.errstate(all="ignore"):
            if light_time:
                pos = observation_model.light_time_positions(t, R, state_at).object_bary_at_emit
            else:
                pos = state_at(t)[:, :3]
            ra_c, dec_c = observation_model.radec_from_vectors(pos - R)
    except (RuntimeError, FloatingPointError, ValueError):
        return np.full(6, np.inf)
    res = observation_model.residuals_arcsec(ra, dec, ra_c, dec_c).ravel() / ARCSEC_PER_RAD
    return np.where(np.isfinite(res), res, np.inf)


def _newton_polish(state: np.ndarray, t: np.ndarray, ra: np.ndarray, dec: np.ndarray,
                   R: np.ndarray, mu: float, light_time: bool, max_iter: int = 30
                   ) -> tuple[np.ndarray, float]:
    """Six equations, six unknowns: damped Newton (Levenberg-Marquardt) on the state so that it
    reproduces the three observations exactly. Returns (state, max |O-C| in arcsec)."""
    steps = np.array([1e-8, 1e-8, 1e-8, 1e-10, 1e-10, 1e-10])
    x = np.array(state, dtype=float)
    r = _three_obs_residuals(x, t, ra, dec, R, mu, light_time)
    cost = float(r @ r)
    lam = 1e-6
    for _ in range(max_iter):
        if not np.isfinite(cost) or np.max(np.abs(r)) * ARCSEC_PER_RAD < 1e-7:
            break
        jac = np.empty((6, 6))
        for j in range(6):
            dx = x.copy()
            dx[j] += steps[j]
            jac[:, j] = (_three_obs_residuals(dx, t, ra, dec, R, mu, light_time) - r) / steps[j]
        if not np.all(np.isfinite(jac)):
            break
        normal = jac.T @ jac
        grad = jac.T @ r
        for _ in range(12):
            try:
                step = -np.linalg.solve(normal + lam * np.diag(np.diag(normal)), grad)
            except np.linalg.LinAlgError:
                step = -np.linalg.lstsq(normal + lam * np.eye(6), grad, rcond=None)[0]
            trial = x + step
            r_new = _three_obs_residuals(trial, t, ra, dec, R, mu, light_time)
            cost_new = float(r_new @ r_new)
            if np.isfinite(cost_new) and cost_new < cost:
                x, r, cost = trial, r_new, cost_new
                lam = max(lam * 0.1, 1e-12)
                break
            lam *= 10.0
        else:
            break
    return x, float(np.max(np.abs(r)) * ARCSEC_PER_RAD)


def _gauss_refine(r2n: float, t: np.ndarray, ra: np.ndarray, dec: np.ndarray, L: np.ndarray,
                  R: np.ndarray, mu: float, light_time: bool, max_iter: int, tol: float
                  ) -> np.ndarray | None:
    """Classical refinement of one root, then a Newton polish of the best iterate.

    The f, g series start and the successive substitution with exact f, g and light-time
    emission times are Gauss's method; that fixed-point iteration is not always contractive
    (it can run away from the true root, e.g. for a distant object near conjunction), so every
    iterate is scored on the three observations and the best one is polished by Newton's method
    on the six equations. Returns the state at the middle observation time, or None.
    """
    tau1, tau3 = t[0] - t[1], t[2] - t[1]
    u = mu / r2n**3
    f1, g1 = 1.0 - 0.5 * u * tau1**2, tau1 - u * tau1**3 / 6.0
    f3, g3 = 1.0 - 0.5 * u * tau3**2, tau3 - u * tau3**3 / 6.0
    rho = None
    best: tuple[float, np.ndarray] | None = None
    for _ in range(max_iter + 1):
        den = f1 * g3 - f3 * g1
        if not np.isfinite(den) or den == 0.0:
            break
        new = _solve_ranges(g3 / den, -g1 / den, L, R)
        if new is None or not np.all(np.isfinite(new)) or np.any(new <= 0):
            break
        r = R + new[:, None] * L
        r2 = r[1]
        v2 = (-f3 * r[0] + f1 * r[2]) / den
        # emission-time state -> state at the middle observation time
        dt = new[1] / C_AU_PER_DAY if light_time else 0.0
        rr, vv = kepler_propagate(r2, v2, np.array(dt), mu)
        state = np.concatenate([rr, vv])
        res = _three_obs_residuals(state, t, ra, dec, R, mu, light_time)
        score = float(np.max(np.abs(res)))
        if np.isfinite(score) and (best is None or score < best[0]):
            best = (score, state)
        converged = rho is not None and np.all(np.abs(new - rho) <= tol * np.abs(new))
        rho = new
        if converged:
            break
        te = t - rho / C_AU_PER_DAY if light_time else t
        taus = np.array([te[0] - te[1], te[2] - te[1]])
        (f1, f3), (g1, g3) = _fg_exact(r2, v2, taus, mu)
    if best is None:
        return None
    state, worst_arcsec = _newton_polish(best[1], t, ra, dec, R, mu, light_time)
    if worst_arcsec > 1e-3 or not np.all(np.isfinite(state)):
        return None
    return state


# ==============================================================================================
# best orbit from several triplets
# ==============================================================================================
@dataclasses.dataclass(slots=True)
class IODCandidate:
    """One Gauss solution, scored against all (or a subset of) the observations."""

    epoch_tdb_jd: float  #: TDB JD of the state (the middle observation of its triplet)
    state_au: np.ndarray  #: (6,) heliocentric ICRF, au and au/day
    triplet: tuple[int, int, int]  #: indices (into the inputs) of the three observations used
    rms_arcsec: float  #: RMS over the scored observations of both coordinates (RA·cosδ, Dec)
    score_arcsec: float  #: trimmed RMS (best ``keep_fraction`` of observations) used to rank


@dataclasses.dataclass(slots=True)
class IODResult:
    """Outcome of :func:`initial_orbit`: the best candidate or a failure with its reason."""

    ok: bool
    message: str
    best: IODCandidate | None
    candidates: list[IODCandidate]
    triplets: list[tuple[int, int, int]]  #: triplets tried (indices into the inputs)
    residuals_arcsec: np.ndarray | None = None  #: (N, 2) O-C of the best over all observations

    @property
    def state_au(self) -> np.ndarray | None:
        return None if self.best is None else self.best.state_au

    @property
    def epoch_tdb_jd(self) -> float | None:
        return None if self.best is None else self.best.epoch_tdb_jd

    @property
    def rms_arcsec(self) -> float | None:
        return None if self.best is None else self.best.rms_arcsec


def _curvature_arcsec(L: np.ndarray) -> float:
    """Angle (arcsec) of the middle line of sight out of the plane of the outer two."""
    n = np.cross(L[0], L[2])
    nn = np.linalg.norm(n)
    if nn == 0.0:
        return 0.0
    return float(abs(np.arcsin(np.clip(L[1] @ n / nn, -1.0, 1.0))) * ARCSEC_PER_RAD)


def select_triplets(t_day: np.ndarray, max_triplets: int = 12, min_separation_day: float = 1e-3
                    ) -> list[tuple[int, int, int]]:
    """Well-spaced observation triplets spread over the arc (indices into ``t_day``).

    Targets fixed fractions of the arc — the whole arc, its halves, thirds and quarters, inner
    spans — alternately in *time* (the observation nearest each target time, so triplets fall on
    different nights when the arc has several) and in *rank* (order statistics, so a clump of
    observations is not skipped by a sparse early or late tail). Observations closer than
    ``min_separation_day`` are pushed apart. Deterministic; at most ``max_triplets``.
    """
    t = np.asarray(t_day, dtype=float)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    n = len(ts)
    span = ts[-1] - ts[0] if n else 0.0
    fractions = [(0.0, 0.5, 1.0), (0.1, 0.5, 0.9), (0.0, 0.25, 0.5), (0.5, 0.75, 1.0),
                 (0.25, 0.5, 0.75), (0.0, 1 / 3, 2 / 3), (1 / 3, 2 / 3, 1.0), (0.0, 0.1, 0.2),
                 (0.8, 0.9, 1.0), (0.2, 0.35, 0.5), (0.05, 0.3, 0.6), (0.4, 0.7, 0.95),
                 (0.0, 0.05, 0.1), (0.9, 0.95, 1.0), (0.0, 0.4, 0.8), (0.2, 0.6, 1.0)]
    out: list[tuple[int, int, int]] = []
    if n < 3:
        return out
    for fr in fractions:
        for by_rank in (False, True):
            if by_rank:
                i, j, k = (round(f * (n - 1)) for f in fr)
            else:
                i, j, k = (int(np.argmin(np.abs(ts - (ts[0] + f * span)))) for f in fr)
            while j < n - 1 and ts[j] - ts[i] < min_separation_day:
                j += 1
            k = max(k, j)
            while k < n - 1 and ts[k] - ts[j] < min_separation_day:
                k += 1
            if ts[j] - ts[i] < min_separation_day or ts[k] - ts[j] < min_separation_day:
                continue
            trip = (int(order[i]), int(order[j]), int(order[k]))
            if trip not in out:
                out.append(trip)
            if len(out) >= max_triplets:
                return out
    return out


def initial_orbit(times_tdb_jd: TimesLike, ra_deg: np.ndarray, dec_deg: np.ndarray,
                  observer_bary_au: np.ndarray, sun_bary_au: np.ndarray, *,
                  max_triplets: int = 16, max_scored: int = 400, keep_fraction: float = 0.9,
                  min_curvature_arcsec: float = 2.0, max_rms_arcsec: float = 30.0,
                  min_separation_day: float = 1e-3, light_time: bool = True,
                  sun_bary_vel_au_per_day: np.ndarray | None = None,
                  mu: float = GM_SUN_AU3_PER_DAY2) -> IODResult:
    """Best two-body orbit from Gauss's method on several well-spaced triplets.

    Inputs (N observations): TDB times (float JD or two-part), topocentric astrometric RA/Dec
    (deg), barycentric ICRF observer positions (N, 3) au and Sun positions (N, 3) au at the same
    times (the Sun's velocity, for the light-time step, is read from DE440 unless given).
    Triplets come from :func:`select_triplets`; a triplet whose middle line of sight lies
    within ``min_curvature_arcsec`` of the great circle through the outer two (no detectable
    curvature: coplanar lines of sight, e.g. one night of a distant object) is skipped. Every
    Gauss root is scored by two-body light-time RA/Dec residuals over all observations (an evenly
    spaced subset of ``max_scored`` when more): candidates are ranked by the RMS of the best
    ``keep_fraction`` of the observations (robust to a few bad observations); ``rms_arcsec`` is
    the plain RMS over all scored observations.

    ``light_time`` applies to Gauss's method itself; scoring always includes light time.

    Fails (``ok=False`` with a message) for fewer than 3 distinct times, no triplet with
    detectable curvature, no positive root, or a best RMS above ``max_rms_arcsec``.
    """
    ref, t = as_days(times_tdb_jd)
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    obs_bary = np.asarray(observer_bary_au, dtype=float)
    sun = np.asarray(sun_bary_au, dtype=float)
    obs = obs_bary - sun
    n = len(t)
    if not (ra.shape == dec.shape == (n,) and obs.shape == (n, 3)):
        raise ValueError("times, ra, dec (N,) and observer/sun positions (N, 3) must agree")
    t_abs = ref + t
    if sun_bary_vel_au_per_day is None:
        sun_vel = np.zeros((n, 3))
        finite = np.isfinite(t)
        if finite.any():
            sun_vel[finite] = ephemeris.body_barycentric_state("sun", t_abs[finite])[1]
    else:
        sun_vel = np.asarray(sun_bary_vel_au_per_day, dtype=float)

    good = np.isfinite(t) & np.isfinite(ra) & np.isfinite(dec) & np.all(np.isfinite(obs), axis=1)
    fail = IODResult(ok=False, message="", best=None, candidates=[], triplets=[])
    n_times = len(np.unique(np.round(t[good] / 1e-6)))
    if n_times < 3:
        fail.message = f"fewer than 3 distinct observation times ({n_times}): Gauss needs 3"
        return fail
    gidx = np.flatnonzero(good)
    arc = float(np.ptp(t[good]))
    trips = [(gidx[i], gidx[j], gidx[k])
             for i, j, k in select_triplets(t[gidx], max_triplets, min_separation_day)]
    fail.triplets = [tuple(int(x) for x in tr) for tr in trips]
    if not trips:
        fail.message = (f"no triplet with observations at least {min_separation_day} d apart "
                        f"(arc {arc:.4g} d)")
        return fail

    if len(gidx) > max_scored:
        scored = gidx[np.unique(np.linspace(0, len(gidx) - 1, max_scored).round().astype(int))]
    else:
        scored = gidx

    states: list[np.ndarray] = []
    origin: list[np.ndarray] = []
    best_curv = 0.0
    n_curved = 0
    for trip in trips:
        tr = np.array(trip)
        curv = _curvature_arcsec(unit_vectors(ra[tr], dec[tr]))
        best_curv = max(best_curv, curv)
        if curv < min_curvature_arcsec:
            continue
        n_curved += 1
        for state in gauss(t_abs[tr], ra[tr], dec[tr], obs[tr], light_time=light_time, mu=mu):
            states.append(state)
            origin.append(tr)
    if n_curved == 0:
        fail.message = (f"lines of sight coplanar: the largest out-of-plane angle of a middle "
                        f"observation is {best_curv:.3g} arcsec < {min_curvature_arcsec} arcsec "
                        f"over a {arc:.4g}-day arc; too short for Gauss (use ranging)")
        return fail
    if not states:
        fail.message = (f"no positive root of Lagrange's equation gave positive ranges in "
                        f"{n_curved} triplet(s)")
        return fail

    epochs = np.array([t_abs[tr[1]] for tr in origin])
    ra_c, dec_c, _ = two_body_astrometry(np.array(states), epochs, t_abs[scored],
                                         obs_bary[scored], sun[scored], sun_vel[scored], mu)
    res = observation_model.residuals_arcsec(ra[scored], dec[scored], ra_c, dec_c)
    sq = np.sum(res**2, axis=-1) / 2.0  # (K, M) mean square per coordinate
    keep = max(1, math.ceil(keep_fraction * sq.shape[1]))
    candidates: list[IODCandidate] = []
    for k, (state, tr) in enumerate(zip(states, origin, strict=True)):
        if not np.all(np.isfinite(sq[k])):
            continue
        candidates.append(IODCandidate(
            epoch_tdb_jd=float(epochs[k]), state_au=state,
            triplet=(int(tr[0]), int(tr[1]), int(tr[2])),
            rms_arcsec=float(np.sqrt(np.mean(sq[k]))),
            score_arcsec=float(np.sqrt(np.mean(np.sort(sq[k])[:keep])))))
    fail.candidates = candidates
    if not candidates:
        fail.message = "every Gauss candidate gave non-finite predictions"
        return fail
    candidates.sort(key=lambda c: c.score_arcsec)
    best = candidates[0]
    residuals = np.full((n, 2), np.nan)
    ra_b, dec_b, _ = two_body_astrometry(best.state_au, best.epoch_tdb_jd, t_abs[gidx],
                                         obs_bary[gidx], sun[gidx], sun_vel[gidx], mu)
    residuals[gidx] = observation_model.residuals_arcsec(ra[gidx], dec[gidx], ra_b, dec_b)
    if best.score_arcsec > max_rms_arcsec:
        fail.message = (f"best of {len(candidates)} Gauss candidates fits with a trimmed RMS of "
                        f"{best.score_arcsec:.3g} arcsec > {max_rms_arcsec} arcsec")
        fail.residuals_arcsec = residuals
        return fail
    return IODResult(ok=True, message=f"best of {len(candidates)} candidates from "
                     f"{n_curved} triplets: RMS {best.rms_arcsec:.3g} arcsec",
                     best=best, candidates=candidates, triplets=fail.triplets,
                     residuals_arcsec=residuals)


# ==============================================================================================
# from an observation batch
# ==============================================================================================
@dataclasses.dataclass(slots=True)
class BatchArrays:
    """Arrays an IOD needs, for the usable optical rows of a batch (``rows`` into the batch)."""

    rows: np.ndarray
    tdb_jd1: np.ndarray
    tdb_jd2: np.ndarray
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    observer_bary_au: np.ndarray
    observer_bary_vel_au_per_day: np.ndarray
    sun_bary_au: np.ndarray
    sun_bary_vel_au_per_day: np.ndarray

    @property
    def times_tdb_jd(self) -> tuple[np.ndarray, np.ndarray]:
        return self.tdb_jd1, self.tdb_jd2

    @property
    def observer_helio_au(self) -> np.ndarray:
        return self.observer_bary_au - self.sun_bary_au


def batch_arrays(batch, rows: np.ndarray | None = None) -> BatchArrays:
    """Times (TDB), RA/Dec, observer and Sun barycentric positions for a batch's usable rows.

    Usable: optical, not deprecated, finite RA/Dec (and within ``rows`` if given), sorted by
    time. Uses :func:`neodefense.timescales.utc_mjd_to_tdb_jd`,
    :func:`neodefense.observatories.positions.batch_observer_states` (space-based observers'
    velocity: their centre body's) and DE440 for the Sun.
    """
    from neodefense import timescales
    from neodefense.observatories import positions

    c = batch.columns
    use = (c["kind"] != "radar") & ~c["deprecated"] & np.isfinite(c["ra"]) & np.isfinite(c["dec"])
    if rows is not None:
        mask = np.zeros(len(batch), dtype=bool)
        mask[np.asarray(rows)] = True
        use &= mask
    idx = np.flatnonzero(use)
    idx = idx[np.argsort(c["obsTime_mjd"][idx], kind="stable")]
    sub = batch.take(idx)
    jd1, jd2 = timescales.utc_mjd_to_tdb_jd(sub["obsTime_mjd"])
    pos, vel = positions.batch_observer_states(sub, space_velocity="center")
    sun, sun_vel = ephemeris.body_barycentric_state("sun", jd1, jd2)
    return BatchArrays(rows=idx, tdb_jd1=np.asarray(jd1), tdb_jd2=np.asarray(jd2),
                       ra_deg=sub["ra"].astype(float), dec_deg=sub["dec"].astype(float),
                       observer_bary_au=pos, observer_bary_vel_au_per_day=vel, sun_bary_au=sun,
                       sun_bary_vel_au_per_day=sun_vel)


def initial_orbit_from_batch(batch, rows: np.ndarray | None = None, **kwargs) -> IODResult:
    """:func:`initial_orbit` on the usable optical rows of an observation batch (see
    :func:`batch_arrays`). Triplet and residual indices refer to the time-sorted usable rows;
    map them back with ``batch_arrays(batch, rows).rows``."""
    arr = batch_arrays(batch, rows)
    return initial_orbit(arr.times_tdb_jd, arr.ra_deg, arr.dec_deg, arr.observer_bary_au,
                         arr.sun_bary_au, sun_bary_vel_au_per_day=arr.sun_bary_vel_au_per_day,
                         **kwargs)
