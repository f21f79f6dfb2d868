"""Virtual-impactor search: along the line of variations (LOV) and by Monte Carlo.

LOV method (after Milani et al. 2005, Icarus 173, 362, "Nonlinear impact monitoring: line of
variation searches for impactors")
--------------------------------------------------------------------------------------------
1. **Scan.** Virtual asteroids at uniformly spaced σ along the LOV
   (:func:`neodefense.impacts.sampling.line_of_variations`) are propagated over the horizon and
   every approach inside the search radius is kept (:mod:`neodefense.impacts.encounters`).
2. **Returns.** Approaches of consecutive LOV points to the same body within
   ``RETURN_WINDOW_DAYS`` of each other are one "return" of that segment of the LOV. On each
   segment the b-plane vector ``B = ξ ξ̂ + ζ ζ̂`` (3-D, so the two points' slightly different frames
   do not matter) is interpolated linearly in σ and its smallest length found. Segments whose
   interpolated trace passes within ``3 b_imp + ¼ |ΔB|`` of the body's centre (``b_imp`` the
   focused impact radius; the ``|ΔB|`` term allows for a curved trace between widely separated
   points after a deep encounter) are candidates; runs of adjacent candidate segments at the
   same return are one candidate, refined from its closest segment.
3. **Refinement.** The σ of the closest approach of the trace to the centre is found by
   secant iterations on the 3-D b-plane vector (``B(σ)`` locally linear), each evaluation a
   propagation of the LOV point to just before its encounter (``EVAL_BODY_RADII`` radii out,
   where the b-plane of the osculating hyperbola is its asymptotic one to well below a km and the
   orbit has not yet entered the body).
4. **Virtual impactor and its probability.** Where the refined trace comes within ``b_imp``,
   the encounter is a virtual impactor. Its probability is computed on the target plane with
   the linear theory around the impacting LOV point ``x*``: with ``G = ∂(ξ, ζ)/∂x`` (the b-plane
   Jacobian times the state-transition matrix from the epoch, non-grav partials included), the
   b-plane position of the whole uncertainty region near the VI is Gaussian with mean
   ``b* + G (x₀ − x*)`` and covariance ``G C Gᵀ``; the IP is that Gaussian's mass inside the disc
   of radius ``b_imp`` (:func:`neodefense.impacts.bplane.impact_probability_disc`). The linear
   map is taken at the VI, not at the nominal orbit, so the strong nonlinearity between them
   (resonant returns after a deep encounter) does not enter; probabilities far below the
   sampling density (1e-7 and less) come out of the integral, not of counting.

Monte Carlo (:func:`monte_carlo_impacts`) counts impacting samples (an approach closer than the
body's radius) and groups them into virtual impactors by body and date; it is the independent
cross-check, and the method for short arcs sampled by ranging (weighted samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neodefense.dynamics import ephemeris
from neodefense.dynamics.propagator import close_approaches, propagate
from neodefense.impacts.bplane import (
    GM_KM3_S2,
    RADIUS_KM,
    bplane_from_states,
    bplane_jacobian,
    impact_probability_disc,
)
from neodefense.impacts.encounters import body_and_sun_states, nongrav_from_params
from neodefense.impacts.sampling import VirtualAsteroids

__all__ = ["ImpactEvent", "find_virtual_impactors", "importance_sampling_ip",
           "linear_impact_probability", "monte_carlo_impacts"]

AU_KM = ephemeris.AU_KM
DAY_S = 86_400.0
#: approaches of neighbouring LOV points closer in time than this belong to the same return
RETURN_WINDOW_DAYS = 45.0
#: the b-plane of a refined point is taken this many body radii before its closest approach
EVAL_BODY_RADII = 4.0
#: secant iterations of one refinement, and its σ tolerance
MAX_REFINE_ITER = 12
SIGMA_TOL = 1e-10
#: candidates refined per run at most (closest first)
MAX_CANDIDATES = 200
#: Monte Carlo impacts more than this far apart in time are different virtual impactors
MC_CLUSTER_DAYS = 30.0


@dataclass
class ImpactEvent:
    """A virtual impactor found by a search (before risk scaling)."""

    body: str
    time_tdb_jd: float
    ip: float
    ip_sigma: float
    v_inf_km_s: float
    b_km: float
    b_impact_km: float
    sigma_lov: float
    method: str
    params: np.ndarray  # representative orbit (6 + k) at the epoch
    n_impacting: int = 0  # Monte Carlo: samples that impact


# ---------------------------------------------------------------------------------------------
# geometry helpers


def _b_vectors(obj: np.ndarray, body_state: np.ndarray, sun_state: np.ndarray, body: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B (n, 3) km, b_imp (n,), v∞ (n,)) of barycentric states (n, 6) or (6,) near ``body``."""
    bp = bplane_from_states(np.atleast_2d(obj), np.atleast_2d(body_state),
                            np.atleast_2d(sun_state), body)
    b_vec = bp.xi_km[:, None] * bp.xi_hat + bp.zeta_km[:, None] * bp.zeta_hat
    return b_vec, np.asarray(bp.impact_radius_km), np.asarray(bp.v_inf_km_s)


def _rows_b_vectors(rows: np.ndarray, body: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_b_vectors` of approach rows (APPROACH_DTYPE) of one body."""
    return _b_vectors(rows["obj"], rows["body_state"], rows["sun_state"], body)


def lead_days(body: str, speed_km_s: float) -> float:
    """Time (days) to cover ``EVAL_BODY_RADII`` radii of ``body`` at ``speed_km_s``: where the
    b-plane of an encounter is evaluated, before its closest approach."""
    return EVAL_BODY_RADII * RADIUS_KM[body] / max(speed_km_s, 1e-6) / DAY_S


def _segment_min(b0: np.ndarray, b1: np.ndarray) -> tuple[float, float]:
    """(s, |B(s)|) at the point of the segment B(s) = b0 + s (b1 − b0), s in [0, 1], nearest 0."""
    d = b1 - b0
    dd = float(d @ d)
    s = 0.0 if dd == 0.0 else float(np.clip(-(b0 @ d) / dd, 0.0, 1.0))
    return s, float(np.linalg.norm(b0 + s * d))


class _LovPoint:
    """b-plane of the LOV point σ at its encounter with ``body`` near a guessed time."""

    def __init__(self, vas_epoch: float, nominal: np.ndarray, direction: np.ndarray,
                 names: Sequence[str], body: str) -> None:
        self.epoch, self.x0, self.d, self.names, self.body = vas_epoch, nominal, direction, names, body

    def params(self, sigma: float) -> np.ndarray:
        return self.x0 + sigma * self.d

    def evaluate(self, sigma: float, t_guess: float) -> tuple[np.ndarray, float, float, float, float]:
        """(B vector km, b_imp km, v∞ km/s, t_eval, predicted time of closest approach)."""
        p = self.params(sigma)
        ng = nongrav_from_params(p[6:], self.names)
        t, t_from, obj = t_guess, self.epoch, p[:6]
        for _ in range(4):  # move the evaluation time to EVAL_BODY_RADII radii before the minimum
            # the first hop integrates from the epoch, later ones only from the previous time
            obj = propagate(t_from, obj, [t], nongrav=ng).states_au[0]
            t_from = t
            body_state, sun_state = body_and_sun_states(self.body, t)
            rel = obj - body_state
            v2 = float(rel[3:] @ rel[3:])
            t_ca = t - float(rel[:3] @ rel[3:]) / v2  # straight-line time of the minimum
            lead = lead_days(self.body, np.sqrt(v2) * AU_KM / DAY_S)
            t_new = t_ca - lead
            if abs(t_new - t) < 0.25 * lead:
                break
            t = t_new
        b_vec, b_imp, v_inf = _b_vectors(obj, body_state, sun_state, self.body)
        return b_vec[0], float(b_imp[0]), float(v_inf[0]), t, t_ca


def _refine(point: _LovPoint, s0: float, s1: float, t0: float, t1: float
            ) -> tuple[float, np.ndarray, float, float, float, float]:
    """Secant search for the σ in/near [s0, s1] where |B(σ)| is smallest.

    Returns (σ*, B*, b_imp, v∞, t_eval, t_ca)."""
    pts = []
    for s, t in ((s0, t0), (s1, t1)):
        b, b_imp, v_inf, t_eval, t_ca = point.evaluate(s, t)
        pts.append((s, b, b_imp, v_inf, t_eval, t_ca))
    for _ in range(MAX_REFINE_ITER):
        pts.sort(key=lambda q: float(np.linalg.norm(q[1])))
        (sa, ba, *_ra), (sb, bb, *_rb) = pts[0], pts[1]
        d = (bb - ba) / (sb - sa) if sb != sa else np.zeros(3)
        dd = float(d @ d)
        if dd == 0.0:
            break
        s_new = sa - float(ba @ d) / dd
        s_new = float(np.clip(s_new, min(s0, s1), max(s0, s1)))
        if abs(s_new - sa) < SIGMA_TOL * max(1.0, abs(sa)):
            break
        # time guess for the new point: interpolate the two best points' minima
        ta, tb = pts[0][5], pts[1][5]
        t_guess = ta + (tb - ta) * (s_new - sa) / (sb - sa)
        b, b_imp, v_inf, t_eval, t_ca = point.evaluate(s_new, t_guess)
        pts.append((s_new, b, b_imp, v_inf, t_eval, t_ca))
        if float(np.linalg.norm(b)) < 1e-3 * b_imp:
            break
    best = min(pts, key=lambda q: float(np.linalg.norm(q[1])))
    return best[0], best[1], best[2], best[3], best[4], best[5]


def _bplane_linear(epoch_tdb_jd: float, x_star: np.ndarray, t_eval_tdb_jd: float, body: str,
                   names: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, float]:
    """(b-plane point (ξ, ζ) km, its Jacobian G (2, 6 + k) w.r.t. the epoch parameters, focused
    radius km) of the orbit ``x_star``, from its state at ``t_eval_tdb_jd`` (just before the
    encounter) and the state-transition matrix (non-grav partials included)."""
    ng = nongrav_from_params(x_star[6:], names, fitted=True)
    prop = propagate(epoch_tdb_jd, x_star[:6], [t_eval_tdb_jd], nongrav=ng, stm=True)
    obj = prop.states_au[0]
    jac_state = prop.stm[0]  # (6, 6)
    if names:
        jac_state = np.concatenate([jac_state, prop.nongrav_partials[0]], axis=1)
    body_state, sun_state = body_and_sun_states(body, t_eval_tdb_jd)
    to_km = np.array([AU_KM] * 3 + [AU_KM / DAY_S] * 3)
    rel_km = (obj - body_state) * to_km
    body_helio_km_s = (body_state - sun_state)[3:] * AU_KM / DAY_S
    jb = bplane_jacobian(rel_km, body_helio_km_s, GM_KM3_S2[body])  # (2, 6) per km, km/s
    g = jb @ (to_km[:, None] * jac_state)  # (2, 6 + k): km per parameter unit
    bp = bplane_from_states(obj[None], body_state[None], sun_state[None], body)
    b_star = np.array([bp.xi_km[0], bp.zeta_km[0]])
    return b_star, g, float(bp.impact_radius_km[0])


def linear_impact_probability(epoch_tdb_jd: float, nominal: np.ndarray, covariance: np.ndarray,
                              x_star: np.ndarray, t_eval_tdb_jd: float, body: str,
                              names: Sequence[str] = ()) -> tuple[float, np.ndarray, np.ndarray]:
    """IP of the virtual impactor through ``x_star`` by the linear theory on its b-plane.

    Returns (IP, b-plane mean (2,) km, b-plane covariance (2, 2) km²).
    """
    b_star, g, b_imp = _bplane_linear(epoch_tdb_jd, x_star, t_eval_tdb_jd, body, names)
    mean = b_star + g @ (np.asarray(nominal) - np.asarray(x_star))
    cov = g @ np.asarray(covariance) @ g.T
    return float(impact_probability_disc(mean, cov, b_imp)), mean, cov


# ---------------------------------------------------------------------------------------------
# LOV search


def _refine_candidate(point: _LovPoint, group: list[tuple], rows: np.ndarray, b_vec: np.ndarray,
                      b_imp: np.ndarray, sig: np.ndarray, covariance: np.ndarray
                      ) -> ImpactEvent | None:
    """Refine one candidate return; its virtual impactor with the linear IP, or None."""
    found = _representative(point, group, rows, b_vec, b_imp, sig)
    if found is None:
        return None
    s_star, x_star, t_ca, t_eval = found
    ip, _, _ = linear_impact_probability(point.epoch, point.x0, covariance, x_star, t_eval,
                                         point.body, point.names)
    b_star, r_imp, v_inf, _, _ = point.evaluate(s_star, t_eval)
    return ImpactEvent(body=point.body, time_tdb_jd=t_ca, ip=ip, ip_sigma=0.0, v_inf_km_s=v_inf,
                       b_km=float(np.linalg.norm(b_star)), b_impact_km=r_imp, sigma_lov=s_star,
                       method="lov", params=x_star)


def find_virtual_impactors(vas: VirtualAsteroids, approaches: np.ndarray, nominal: np.ndarray,
                           direction: np.ndarray, covariance: np.ndarray,
                           bodies: Sequence[str], client=None) -> list[ImpactEvent]:  # noqa: ANN001
    """Virtual impactors along the LOV from the scan's ``approaches`` (module docstring).

    ``client``: a Dask client to refine the candidates on (one task each), else here."""
    sig = vas.sigma
    n = len(vas)
    events: list[ImpactEvent] = []
    tasks: list = []
    for body in bodies:
        rows = approaches[approaches["body"] == body]
        if rows.size == 0:
            continue
        b_vec, b_imp, _ = _rows_b_vectors(rows, body)
        by_va: dict[int, np.ndarray] = {}
        for k, va in enumerate(rows["va"].tolist()):
            by_va.setdefault(va, []).append(k)
        # candidate segments: (score, i, k_i, k_j)
        segments = []
        for i in range(n - 1):
            ki_list, kj_list = by_va.get(i, []), by_va.get(i + 1, [])
            if not ki_list or not kj_list:
                continue
            tj = rows["time_tdb_jd"][kj_list]
            for ki in ki_list:
                j = int(np.argmin(np.abs(tj - rows["time_tdb_jd"][ki])))
                kj = kj_list[j]
                if abs(tj[j] - rows["time_tdb_jd"][ki]) > RETURN_WINDOW_DAYS:
                    continue
                s, dmin = _segment_min(b_vec[ki], b_vec[kj])
                span = float(np.linalg.norm(b_vec[kj] - b_vec[ki]))
                r_imp = max(b_imp[ki], b_imp[kj])
                if dmin < 3.0 * r_imp + 0.25 * span:
                    segments.append((dmin / r_imp, i, ki, kj, s))
        # group adjacent segments at the same return into one candidate (closest first)
        segments.sort(key=lambda q: q[1])
        groups: list[list[tuple]] = []
        open_groups: dict[int, list[int]] = {}  # last LOV index → indices of groups ending there
        for seg in segments:
            joined = False
            for g in open_groups.get(seg[1] - 1, []):
                last = groups[g][-1]
                if abs(rows["time_tdb_jd"][seg[2]] - rows["time_tdb_jd"][last[3]]) \
                        <= RETURN_WINDOW_DAYS:
                    groups[g].append(seg)
                    open_groups.setdefault(seg[1], []).append(g)
                    joined = True
                    break
            if not joined:
                groups.append([seg])
                open_groups.setdefault(seg[1], []).append(len(groups) - 1)
        # an impacting sample outside every candidate segment (its neighbours' approaches are
        # too far in time: a strongly stretched LOV) is a candidate of its own
        covered = {k for g in groups for q in g for k in (q[2], q[3])}
        for k in np.nonzero(rows["dist_km"] < RADIUS_KM[body])[0].tolist():
            if k not in covered:
                groups.append([(0.0, int(rows["va"][k]), k, k, 0.0)])
        groups.sort(key=lambda g: min(q[0] for q in g))
        point = _LovPoint(vas.epoch_tdb_jd, nominal, direction, vas.nongrav_names, body)
        for group in groups[:MAX_CANDIDATES]:
            # only what the candidate needs travels (to a Dask worker when there is a client)
            ks = sorted({k for q in group for k in (q[2], q[3])})
            sub = {k: j for j, k in enumerate(ks)}
            local = [(q[0], q[1], sub[q[2]], sub[q[3]], q[4]) for q in group]
            args = (point, local, rows[ks], b_vec[ks], b_imp[ks], sig, covariance)
            tasks.append(client.submit(_refine_candidate, *args, pure=False)
                         if client is not None else args)
    for task in tasks:
        event = task.result() if client is not None else _refine_candidate(*task)
        if event is not None:
            events.append(event)
    return _merge_duplicates(events)


def _representative(point: _LovPoint, group: list[tuple], rows: np.ndarray, b_vec: np.ndarray,
                    b_imp: np.ndarray, sig: np.ndarray
                    ) -> tuple[float, np.ndarray, float, float] | None:
    """The impacting LOV point of a candidate return nearest the nominal (highest density):
    (σ*, x*, time of closest approach, b-plane evaluation time), or None if none impacts.

    Scan samples that impact are taken as they are (their closest approach is known to
    < 0.01 s); otherwise the trace between the closest pair is refined by secant iterations
    within that segment, and the refined point's encounter is integrated again."""
    hits = []
    for _, i, ki, kj, _s in group:
        for va, k in ((i, ki),) if ki == kj else ((i, ki), (i + 1, kj)):
            if float(rows["dist_km"][k]) < RADIUS_KM[point.body]:
                hits.append((abs(float(sig[va])), va, k))
    if hits:
        _, va, k = min(hits)
        rel = rows["obj"][k] - rows["body_state"][k]
        t_ca = float(rows["time_tdb_jd"][k])
        t_eval = t_ca - lead_days(point.body, float(np.linalg.norm(rel[3:])) * AU_KM / DAY_S)
        return float(sig[va]), point.params(float(sig[va])), t_ca, t_eval
    _, i, ki, kj, _s = min(group, key=lambda q: q[0])
    s_star, b_star, r_imp, _, t_eval, _ = _refine(
        point, float(sig[i]), float(sig[i + 1]),
        float(rows["time_tdb_jd"][ki]), float(rows["time_tdb_jd"][kj]))
    if float(np.linalg.norm(b_star)) >= r_imp:
        return None
    x_star = point.params(s_star)
    # the refined orbit's own closest approach (from its state just before the encounter)
    state = propagate(point.epoch, x_star[:6], [t_eval],
                      nongrav=nongrav_from_params(x_star[6:], point.names)).states_au[0]
    cas = close_approaches(t_eval, state, t_eval + 2.0, bodies=(point.body,),
                           radius_au={point.body: 0.01},
                           nongrav=nongrav_from_params(x_star[6:], point.names))
    speed_km_s = float(np.linalg.norm(state[3:] - body_and_sun_states(point.body, t_eval)[0][3:])
                       ) * AU_KM / DAY_S
    t_ca = cas[0].time_tdb_jd if cas else t_eval + lead_days(point.body, speed_km_s)
    return s_star, x_star, float(t_ca), t_eval


def _merge_duplicates(events: list[ImpactEvent]) -> list[ImpactEvent]:
    """Two candidates refined onto the same VI (same body, time within a day, σ within 1e-6
    of the LOV span) are one."""
    out: list[ImpactEvent] = []
    for ev in sorted(events, key=lambda e: (e.body, e.time_tdb_jd)):
        if out and out[-1].body == ev.body and abs(out[-1].time_tdb_jd - ev.time_tdb_jd) < 1.0 \
                and abs(out[-1].sigma_lov - ev.sigma_lov) < 1e-6 * max(1.0, abs(ev.sigma_lov)):
            if ev.ip > out[-1].ip:
                out[-1] = ev
            continue
        out.append(ev)
    return sorted(out, key=lambda e: e.time_tdb_jd)


# ---------------------------------------------------------------------------------------------
# Monte Carlo


def monte_carlo_impacts(vas: VirtualAsteroids, approaches: np.ndarray,
                        bodies: Sequence[str], failed: Sequence[int] = ()) -> list[ImpactEvent]:
    """Impacting samples (closest approach below the body's radius) grouped into VIs.

    IP = the summed weight of a group's samples; its 1σ error is the binomial
    sqrt(p (1 − p) / N_eff) with N_eff = 1 / Σ w² (N for equal weights). Samples whose
    propagation failed count as not impacting (their number is reported by the caller).
    """
    w = vas.weights
    n_eff = 1.0 / float(np.sum(w**2)) if len(vas) else 0.0
    events: list[ImpactEvent] = []
    for body in bodies:
        hits = approaches[(approaches["body"] == body) & (approaches["dist_km"] < RADIUS_KM[body])]
        if hits.size == 0:
            continue
        hits = hits[np.argsort(hits["time_tdb_jd"])]
        breaks = np.nonzero(np.diff(hits["time_tdb_jd"]) > MC_CLUSTER_DAYS)[0] + 1
        for group in np.split(hits, breaks):
            p = float(np.sum(w[group["va"]]))
            b_vec, b_imp, v_inf = _rows_b_vectors(group, body)
            k = int(np.argmax(w[group["va"]]))
            events.append(ImpactEvent(
                body=body, time_tdb_jd=float(np.median(group["time_tdb_jd"])), ip=p,
                ip_sigma=float(np.sqrt(max(p * (1.0 - p), 0.0) / max(n_eff, 1.0))),
                v_inf_km_s=float(np.median(v_inf)), b_km=float(np.linalg.norm(b_vec[k])),
                b_impact_km=float(np.median(b_imp)), sigma_lov=float("nan"), method="mc",
                params=vas.params[int(group["va"][k])], n_impacting=int(group.size)))
    return sorted(events, key=lambda e: e.time_tdb_jd)


# ---------------------------------------------------------------------------------------------
# importance sampling around a virtual impactor


def importance_sampling_ip(event: ImpactEvent, nominal: np.ndarray, covariance: np.ndarray,
                           direction: np.ndarray, epoch_tdb_jd: float, names: Sequence[str],
                           n: int, seed: int, client=None) -> tuple[float, float, int]:  # noqa: ANN001
    """Importance-sampling estimate of one virtual impactor's probability: (IP, 1σ, hits).

    After Roa et al. (2021, AJ 162, 277; Sentry-II), whose proposal is centred on impacting
    orbits: here the centre is the LOV virtual impactor ``x*`` (found by the search, not by an
    impact pseudo-observation). The proposal is the fit's Gaussian moved to ``x*`` with its
    variance along the LOV shrunk to the width of the impacting interval (twice the focused
    radius over the b-plane speed |G d| per σ, at most 1σ): ``C_q = C − (1 − s²) d dᵀ``. Each
    sample is integrated to the encounter; the estimate is the mean of ``p/q`` over the impacting
    ones, with its sampling error. Nonlinear: it checks the linear target-plane value.
    """
    from neodefense.impacts.encounters import propagate_virtual_asteroids
    from neodefense.impacts.sampling import _sqrt_covariance, log_gaussian_density

    x_star = np.asarray(event.params, dtype=float)
    d = np.asarray(direction, dtype=float)
    cov = np.asarray(covariance, dtype=float)
    lead = lead_days(event.body, event.v_inf_km_s)
    _, g, b_imp = _bplane_linear(epoch_tdb_jd, x_star, event.time_tdb_jd - lead, event.body, names)
    speed = float(np.linalg.norm(g @ d))
    s = float(np.clip(2.0 * b_imp / max(speed, 1e-300), 1e-6, 1.0))
    cov_q = cov - (1.0 - s**2) * np.outer(d, d)
    cov_q = 0.5 * (cov_q + cov_q.T)
    rng = np.random.default_rng(seed)
    x = x_star + rng.standard_normal((n, x_star.size)) @ _sqrt_covariance(cov_q).T
    log_w = (log_gaussian_density(x, np.asarray(nominal, dtype=float), cov)
             - log_gaussian_density(x, x_star, cov_q))
    rows, failed = propagate_virtual_asteroids(epoch_tdb_jd, x, event.time_tdb_jd + 5.0,
                                               (event.body,), {event.body: 0.01}, names,
                                               client=client)
    hit = np.zeros(n, dtype=bool)
    impacts = rows[(rows["dist_km"] < RADIUS_KM[event.body])
                   & (np.abs(rows["time_tdb_jd"] - event.time_tdb_jd) < MC_CLUSTER_DAYS)]
    hit[impacts["va"]] = True
    values = np.where(hit, np.exp(log_w), 0.0)
    ip = float(values.mean())
    err = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return ip, err, int(hit.sum())
