"""Impact monitoring of one orbit solution: virtual impactors, risk scales, imminent entries.

:func:`monitor_solution` is the one entry point (the CLI ``neodefense monitor`` and the Prefect
flow ``flows/impact_monitoring.py`` call it):

1. **Samples** (:mod:`neodefense.impacts.sampling`). ``lov`` (default): ``n`` points uniformly in
   σ ∈ [−``SIGMA_MAX``, ``SIGMA_MAX``] along the line of variations; ``mc``: ``n`` Monte Carlo
   samples of the fit's Gaussian; a short arc without a covariance (status ``arc_too_short``)
   is sampled from its systematic-ranging admissible region (weighted Monte Carlo).
2. **Propagation** of every virtual asteroid over the horizon (``years`` after the last
   observation, within DE440) with close-approach detection
   (:mod:`neodefense.impacts.encounters`), spread over Dask when a client is given.
3. **Search** (:mod:`neodefense.impacts.search`): LOV returns → refined virtual impactors with
   linear target-plane probabilities; Monte Carlo → impacting-sample counts; ``is``: the LOV
   search, then each virtual impactor's probability re-estimated by importance sampling around
   it (nonlinear; the linear values are kept in ``cross_check["linear_vs_is"]``). With ``lov``
   and ``is`` the Monte Carlo cross-check runs as well (``cross_check``) and both are reported.
4. **Risk** (:mod:`neodefense.impacts.scales`): size from H (albedo 0.154, density 2.6 g/cm³),
   impact speed and energy, Palermo (ΔT from the last observation: results depend only on the
   inputs), Torino (impacts within 100 years), IAWN and SMPAG criteria on the cumulative IP of
   the impacts within 50 years.
5. **Imminent impactors** (Earth, within 30 days, IP > 0.5): the atmospheric entry point at
   ``entry_altitude_km`` and the 1σ / 3σ corridors along the LOV
   (:mod:`neodefense.impacts.entry`).
6. **Target planes** (:func:`target_planes`): the b-plane (ξ, ζ) of every virtual asteroid at
   the most probable virtual impactors and at the nominal's closest approaches, from the
   approaches already found (no extra propagation), for plots.

It never raises for a bad orbit: the status (:mod:`neodefense.impacts.assessment`) says why, and
the caller stores the assessment whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from neodefense import timescales
from neodefense.dynamics import ephemeris
from neodefense.dynamics.nongrav import NONGRAV_NAMES
from neodefense.dynamics.propagator import propagate
from neodefense.impacts import sampling, scales
from neodefense.impacts.assessment import (
    DEGENERATE,
    FAILED,
    METHODS,
    NO_SOLUTION,
    OK,
    UNBOUND,
    ImpactAssessment,
    VirtualImpactor,
)
from neodefense.impacts.bplane import GM_KM3_S2, RADIUS_KM, bplane_from_states, focused_radius_km
from neodefense.impacts.encounters import (
    body_and_sun_states,
    nongrav_from_params,
    propagate_virtual_asteroids,
)
from neodefense.impacts.search import (
    MC_CLUSTER_DAYS,
    ImpactEvent,
    find_virtual_impactors,
    importance_sampling_ip,
    lead_days,
    linear_impact_probability,
    monte_carlo_impacts,
)
from neodefense.observations.batch import ObservationBatch
from neodefense.orbits.solution import ARC_TOO_SHORT, OrbitSolution

__all__ = ["DEFAULT_SAMPLES", "SIGMA_MAX", "monitor_solution", "target_planes"]

DAYS_PER_YEAR = 365.25
#: half-width of the LOV scan in σ: |σ| > 5.5 holds 3.8e-8 of the probability, so every VI
#: with IP ≥ 1e-7 has part of its LOV interval inside the scan
SIGMA_MAX = 5.5
#: default sample counts per method, and of the Monte Carlo cross-check of an LOV run
DEFAULT_SAMPLES = {"lov": 1001, "mc": 1000, "is": 1001}
DEFAULT_CROSS_CHECK_SAMPLES = 200
#: importance samples per virtual impactor (method "is")
DEFAULT_IS_SAMPLES = 200
#: search radius per body (au): JPL's 0.05 au for the Earth, 0.01 au for the Moon
RADIUS_AU = {"earth": 0.05, "moon": 0.01}
#: more than this fraction of unbound samples (hyperbolic / into the Sun): no assessment
MAX_UNBOUND_FRACTION = 0.5
#: more than this fraction of failed propagations: the run failed
MAX_FAILED_FRACTION = 0.05
#: imminent impactor: Earth impact within this many days of the last observation, IP above this
IMMINENT_DAYS = 30.0
IMMINENT_IP = 0.5
#: Torino ratings are defined for impacts within 100 years; IAWN / SMPAG look 50 years ahead
TORINO_YEARS = 100.0
NOTIFY_YEARS = 50.0
#: LOV σ values of the corridor points
CORRIDOR_SIGMAS = {"1sigma": np.linspace(-1.0, 1.0, 21), "3sigma": np.linspace(-3.0, 3.0, 31)}
#: target planes: the most probable virtual impactors (at most this many), then the nominal's
#: closest approaches that have no virtual impactor (at most this many); points per plane at
#: most (seeded random thinning beyond), rounded to this many decimals of a km
TARGET_PLANE_VIS = 5
TARGET_PLANE_APPROACHES = 3
TARGET_PLANE_POINTS = 2000
TARGET_PLANE_DECIMALS = 1


def _iso_utc(tdb_jd: float, precision: int = 0) -> str:
    return str(timescales.tdb_jd_to_utc_iso(tdb_jd, precision=precision)[0])


def _last_obs_tdb_jd(solution: OrbitSolution, batch: ObservationBatch | None) -> float:
    times = None
    if batch is not None and len(batch):
        times = np.asarray(batch.columns["obsTime_mjd"], dtype=float)
    elif solution.residuals is not None and len(solution.residuals.obs_time_mjd_utc):
        times = np.asarray(solution.residuals.obs_time_mjd_utc, dtype=float)
    if times is None or not np.any(np.isfinite(times)):
        return float(solution.epoch_tdb_jd)
    jd1, jd2 = timescales.utc_mjd_to_tdb_jd(np.nanmax(times))
    return float(jd1[0] + jd2[0])


def _nominal_params(solution: OrbitSolution) -> tuple[np.ndarray, tuple[str, ...]]:
    names = tuple(solution.nongrav)  # covariance order: the solution's nongrav key order
    unknown = [k for k in names if k not in NONGRAV_NAMES]
    if unknown:
        raise ValueError(f"unknown non-grav parameters {unknown}")
    x0 = np.concatenate([np.asarray(solution.state_icrf_au, dtype=float),
                         [float(solution.nongrav[k]) for k in names]])
    return x0, names


def _lov_time(epoch: float, x0: np.ndarray, names: tuple[str, ...], horizon: float,
              bodies: tuple[str, ...]) -> tuple[float, list]:
    """(time the LOV is defined at, the nominal's approaches)."""
    from neodefense.dynamics.propagator import close_approaches

    found = close_approaches(epoch, x0[:6], horizon, bodies=bodies,
                             radius_au={b: RADIUS_AU[b] for b in bodies},
                             nongrav=nongrav_from_params(x0[6:], names),
                             stop_inside_km={b: RADIUS_KM[b] for b in bodies})
    # the integration stops just past an impact: no approach after it is reported
    if found:
        ca = found[0]
        return max(ca.time_tdb_jd - lead_days(ca.body, ca.speed_km_s), epoch + 1e-3), found
    return epoch + 0.5 * (horizon - epoch), found


def _lov_direction_at(epoch: float, x0: np.ndarray, names: tuple[str, ...], covariance: np.ndarray,
                      t_lov: float) -> np.ndarray:
    ng = nongrav_from_params(x0[6:], names, fitted=True)
    prop = propagate(epoch, x0[:6], [t_lov], nongrav=ng, stm=True)
    phi = prop.stm[0]
    if names:
        phi = np.concatenate([phi, prop.nongrav_partials[0]], axis=1)
    return sampling.lov_direction(covariance, phi[:3])


def _nominal_approaches(epoch: float, x0: np.ndarray, names: tuple[str, ...],
                        covariance: np.ndarray | None, found: list) -> list[dict[str, Any]]:
    """The nominal's approaches with the 1σ of the b-plane distance (linear theory)."""
    out = []
    for ca in found:
        item: dict[str, Any] = {"body": ca.body, "date_utc": _iso_utc(ca.time_tdb_jd),
                                "time_tdb_jd": ca.time_tdb_jd, "dist_km": ca.distance_km,
                                "dist_sigma_km": None, "v_rel_km_s": ca.speed_km_s}
        if covariance is not None:
            try:
                inside = ca.distance_km < 2 * RADIUS_KM[ca.body]
                t_eval = ca.time_tdb_jd - (lead_days(ca.body, ca.speed_km_s) if inside else 0.0)
                _, mean, cov = linear_impact_probability(epoch, x0, covariance, x0, t_eval,
                                                         ca.body, names)
                u = mean / max(float(np.linalg.norm(mean)), 1e-300)
                item["b_km"] = float(np.linalg.norm(mean))
                item["dist_sigma_km"] = float(np.sqrt(max(float(u @ cov @ u), 0.0)))
            except (RuntimeError, ValueError, np.linalg.LinAlgError):
                pass
        out.append(item)
    return out


def _risk(event: ImpactEvent, ref_tdb_jd: float, H: float | None, diameter_m: float | None,
          entry_altitude_km: float, epoch: float, names: tuple[str, ...],
          lov: tuple[np.ndarray, np.ndarray] | None, nominal_impacts: bool,
          x0: np.ndarray) -> VirtualImpactor:
    years_ahead = max((event.time_tdb_jd - ref_tdb_jd) / DAYS_PER_YEAR, 0.0)
    v_imp = float(scales.impact_speed_km_s(event.v_inf_km_s, event.body))
    diam = diameter_m if diameter_m is not None else (
        float(scales.diameter_m_from_H(H)) if H is not None else float("nan"))
    energy = float(scales.impact_energy_mt(v_imp, diameter_m=diam))
    palermo = float(scales.palermo(event.ip, energy, years_ahead)) if np.isfinite(energy) else \
        float("nan")
    torino = int(scales.torino(event.ip, energy)) if (np.isfinite(energy)
                                                      and years_ahead <= TORINO_YEARS) else 0
    vi = VirtualImpactor(
        body=event.body, time_tdb_jd=event.time_tdb_jd, date_utc=_iso_utc(event.time_tdb_jd, 1),
        ip=event.ip, ip_sigma=event.ip_sigma, palermo=palermo, torino=torino,
        v_inf_km_s=event.v_inf_km_s, v_imp_km_s=v_imp, energy_mt=energy, diameter_m=diam,
        sigma_lov=event.sigma_lov, b_km=event.b_km, b_impact_km=event.b_impact_km,
        method=event.method)
    imminent = (event.body == "earth" and event.ip > IMMINENT_IP
                and event.time_tdb_jd - ref_tdb_jd <= IMMINENT_DAYS)
    if imminent:
        from neodefense.impacts import entry

        x = x0 if nominal_impacts else event.params
        try:
            vi.entry = entry.entry_point(epoch, x[:6], event.time_tdb_jd,
                                         altitude_km=entry_altitude_km,
                                         nongrav=nongrav_from_params(x[6:], names))
        except (RuntimeError, ValueError) as exc:  # reported, the assessment stands
            vi.entry = {"error": f"{type(exc).__name__}: {exc}", "alt_km": entry_altitude_km}
        if lov is not None:
            nominal, direction = lov
            corridor: dict[str, Any] = {"alt_km": entry_altitude_km}
            try:
                for label, sig in CORRIDOR_SIGMAS.items():
                    states = nominal[None, :6] + sig[:, None] * direction[None, :6]
                    pts = entry.corridor_points(epoch, states, event.time_tdb_jd,
                                                altitude_km=entry_altitude_km,
                                                nongrav=nongrav_from_params(nominal[6:], names))
                    corridor[label] = [[float(a), float(b)] for a, b in pts if np.isfinite(a)]
            except (RuntimeError, ValueError) as exc:
                corridor["error"] = f"{type(exc).__name__}: {exc}"
            vi.corridor = corridor
    return vi


def _summarize(a: ImpactAssessment, ref_tdb_jd: float) -> None:
    vis = a.virtual_impactors
    a.cumulative_ip = float(min(1.0, sum(v.ip for v in vis)))
    ps = [v.palermo for v in vis if np.isfinite(v.palermo)]
    a.palermo_max = max(ps) if ps else None
    cum = scales.palermo_cumulative(ps) if ps else None
    a.palermo_cum = None if cum is None or not np.isfinite(cum) else float(cum)
    a.torino_max = max((v.torino for v in vis), default=0)
    soon = [v for v in vis if v.body == "earth"
            and (v.time_tdb_jd - ref_tdb_jd) / DAYS_PER_YEAR <= NOTIFY_YEARS]
    ip_soon = float(min(1.0, sum(v.ip for v in soon)))
    d = a.diameter_m if a.diameter_m is not None else float("nan")
    a.iawn_notify = bool(soon) and bool(scales.iawn_notify(ip_soon, d, 0.0))
    a.smpag = bool(soon) and bool(scales.smpag_criterion(ip_soon, d, 0.0))


def _cross_check_summary(events: list[ImpactEvent], n: int, main: list[ImpactEvent]
                         ) -> dict[str, Any]:
    """The Monte Carlo check beside the main method's (linear or IS) values, before any
    replacement."""
    p = float(min(1.0, sum(e.ip for e in events)))
    sigma = float(np.sqrt(max(p * (1 - p), 0.0) / max(n, 1)))
    p_main = float(min(1.0, sum(v.ip for v in main)))
    # agreement: within 3σ of the MC estimate, σ floored at the MC's resolution (1/N)
    tol = 3.0 * max(sigma, 1.0 / max(n, 1))
    return {"method": "mc", "n_samples": int(n), "cumulative_ip": p, "ip_sigma": sigma,
            "upper_limit_95": (3.0 / n if (n and not events) else None),
            "virtual_impactors": [{"body": e.body, "date_utc": _iso_utc(e.time_tdb_jd),
                                   "ip": e.ip, "ip_sigma": e.ip_sigma,
                                   "n_impacting": e.n_impacting} for e in events],
            "agrees": bool(abs(p - p_main) <= tol)}


def monitor_solution(solution: OrbitSolution, *, batch: ObservationBatch | None = None,
                     method: str = "lov", years: float = 100.0, n_samples: int | None = None,
                     bodies: tuple[str, ...] = ("earth", "moon"), seed: int = 0,
                     entry_altitude_km: float = 100.0, cross_check: bool = True,
                     client: Any = None, progress: bool = False,
                     cross_check_samples: int | None = None,
                     diameter_m: float | None = None,
                     is_samples: int | None = None) -> ImpactAssessment:
    """Search ``solution``'s uncertainty region for virtual impactors up to ``years`` ahead.

    ``batch``: the observations the solution was fitted to (needed for short arcs, where the
    samples come from systematic ranging). ``client``: a Dask client to spread the virtual
    asteroids over (None: this process). ``diameter_m``: a known diameter (overrides H).
    Never raises for bad orbits: the status says why.
    """
    t_start = time.perf_counter()
    bodies = tuple(str(b).strip().lower() for b in bodies)
    a = ImpactAssessment(
        designation=solution.designation, status=OK, method=method, seed=seed, years=years,
        bodies=bodies, assessed_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        H=solution.H, solution_epoch_tdb_jd=float(solution.epoch_tdb_jd),
        observation_set_hash=solution.observation_set_hash,
        solution_code_version=solution.code_version,
        settings={"method": method, "years": float(years), "n_samples": n_samples,
                  "bodies": list(bodies), "seed": int(seed),
                  "entry_altitude_km": float(entry_altitude_km), "cross_check": bool(cross_check),
                  "cross_check_samples": cross_check_samples, "diameter_m": diameter_m,
                  "is_samples": is_samples})
    try:
        _run(a, solution, batch, method, years, n_samples, bodies, seed, entry_altitude_km,
             cross_check, client, progress, cross_check_samples, diameter_m, is_samples)
    except Exception as exc:  # noqa: BLE001 - recorded in the status, nothing half-stored
        a.status, a.message = FAILED, f"{type(exc).__name__}: {exc}"
        a.virtual_impactors, a.cumulative_ip = [], 0.0
    a.runtime_s = time.perf_counter() - t_start
    return a


def _progress_bar(total: int, enabled: bool, desc: str) -> tuple[Callable[[int], None] | None,
                                                                   Any]:
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="VA")
    return bar.update, bar


def _run(a: ImpactAssessment, solution: OrbitSolution, batch: ObservationBatch | None,
         method: str, years: float, n_samples: int | None, bodies: tuple[str, ...], seed: int,
         entry_altitude_km: float, cross_check: bool, client: Any, progress: bool,
         cross_check_samples: int | None, diameter_m: float | None,
         is_samples: int | None) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    unknown = [b for b in bodies if b not in RADIUS_AU]
    if unknown:
        raise ValueError(f"bodies must be among {sorted(RADIUS_AU)}, not {unknown}")
    if not (np.isfinite(years) and years > 0):
        raise ValueError(f"years must be positive, got {years!r}")
    a.diameter_m = diameter_m if diameter_m is not None else (
        float(scales.diameter_m_from_H(solution.H)) if solution.H is not None else None)
    ref = _last_obs_tdb_jd(solution, batch)
    horizon = min(ref + years * DAYS_PER_YEAR, ephemeris.de440_coverage_tdb_jd()[1] - 1.0)
    a.horizon_tdb_jd = horizon
    radius = {b: RADIUS_AU[b] for b in bodies}

    if solution.status == ARC_TOO_SHORT:
        if batch is None:
            a.status, a.message = NO_SOLUTION, "short arc: the observations are needed (ranging)"
            return
        from neodefense.orbits.ranging import ranging_from_batch

        rng_result = ranging_from_batch(batch)
        if not rng_result.ok:
            a.status, a.message = NO_SOLUTION, f"short arc, ranging failed: {rng_result.message}"
            return
        n = int(n_samples or DEFAULT_SAMPLES["mc"])
        vas = sampling.ranging_samples(rng_result, max_samples=n, seed=seed)
        a.method, a.message = "mc", "short arc: samples from systematic ranging (weighted)"
        x0, names, cov, direction = vas.params[int(np.argmax(vas.weights))], (), None, None
        epoch = vas.epoch_tdb_jd
        found: list = []
    elif not solution.ok:
        a.status = NO_SOLUTION
        a.message = f"orbit solution status {solution.status!r}: {solution.message}"
        return
    else:
        why = sampling.check_covariance(solution.covariance)
        if why:
            a.status, a.message = DEGENERATE, why
            return
        x0, names = _nominal_params(solution)
        cov = np.asarray(solution.covariance, dtype=float)
        if cov.shape[0] != x0.size:
            a.status = DEGENERATE
            a.message = f"covariance is {cov.shape}, parameters are {x0.size}"
            return
        epoch = float(solution.epoch_tdb_jd)
        if np.mean(sampling.unbound_mask(epoch, x0[None, :6])):
            a.status, a.message = UNBOUND, "the nominal orbit is unbound or falls into the Sun"
            return
        t_lov, found = _lov_time(epoch, x0, names, horizon, bodies)
        direction = _lov_direction_at(epoch, x0, names, cov, t_lov)
        n = int(n_samples or DEFAULT_SAMPLES[method])
        if method in ("lov", "is"):
            n += (n + 1) % 2  # odd: σ = 0 (the nominal) is a sample
            sig = np.linspace(-SIGMA_MAX, SIGMA_MAX, n)
            vas = sampling.line_of_variations(epoch, x0, direction, sig, names)
        else:
            vas = sampling.monte_carlo(epoch, x0, cov, n, seed, names)
    a.n_samples = len(vas)
    is_report: list[dict[str, Any]] | None = None

    unbound = sampling.unbound_mask(vas.epoch_tdb_jd, vas.states_au)
    if np.mean(unbound) > MAX_UNBOUND_FRACTION:
        a.status = UNBOUND
        a.message = (f"{int(unbound.sum())} of {len(vas)} samples are hyperbolic or fall into "
                     "the Sun: the orbit is too poorly determined to monitor")
        return
    keep = np.nonzero(~unbound)[0]
    if unbound.any():
        a.message = (a.message + "; " if a.message else "") + \
            f"{int(unbound.sum())} unbound samples left out"
    vas_kept = vas.take(keep) if unbound.any() else vas

    update, bar = _progress_bar(len(vas_kept), progress, f"{a.designation} {a.method}")
    try:
        approaches, failed = propagate_virtual_asteroids(
            vas_kept.epoch_tdb_jd, vas_kept.params, horizon, bodies, radius, names, client=client,
            progress=update)
    finally:
        if bar is not None:
            bar.close()
    if len(failed) > MAX_FAILED_FRACTION * len(vas_kept):
        raise RuntimeError(f"{len(failed)} of {len(vas_kept)} propagations failed, e.g. "
                           f"{failed[0][1]}")
    if failed:
        a.message = (a.message + "; " if a.message else "") + \
            f"{len(failed)} propagations failed (counted as not impacting)"

    if a.method in ("lov", "is"):
        events = find_virtual_impactors(vas_kept, approaches, x0, direction, cov, bodies,
                                        client=client)
        if a.method == "is":
            linear = []
            for k, e in enumerate(events):
                ip, err, hits = importance_sampling_ip(e, x0, cov, direction, epoch, names,
                                                       is_samples or DEFAULT_IS_SAMPLES,
                                                       seed + 1000 + k, client)
                linear.append({"body": e.body, "date_utc": _iso_utc(e.time_tdb_jd),
                               "ip_linear": e.ip, "ip_is": ip, "ip_is_sigma": err,
                               "is_hits": hits})
                e.ip, e.ip_sigma, e.method = ip, err, "is"
            a.message = (a.message + "; " if a.message else "") + (
                f"importance sampling: {is_samples or DEFAULT_IS_SAMPLES} samples per VI")
            is_report = linear
    else:
        events = monte_carlo_impacts(vas_kept, approaches, bodies)

    mc_events: list[ImpactEvent] | None = None
    mc_rows: np.ndarray | None = None
    n_mc = 0
    if cross_check and a.method in ("lov", "is"):
        n_cc = int(cross_check_samples or DEFAULT_CROSS_CHECK_SAMPLES)
        mc = sampling.monte_carlo(epoch, x0, cov, n_cc, seed, names)
        mc = mc.take(np.nonzero(~sampling.unbound_mask(epoch, mc.states_au))[0])
        update, bar = _progress_bar(len(mc), progress, f"{a.designation} mc check")
        try:
            mc_rows, _ = propagate_virtual_asteroids(epoch, mc.params, horizon, bodies, radius,
                                                     names, client=client, progress=update)
        finally:
            if bar is not None:
                bar.close()
        mc_events, n_mc = monte_carlo_impacts(mc, mc_rows, bodies), len(mc)
        a.cross_check = _cross_check_summary(mc_events, n_mc, events)
        replaced = _prefer_counted(events, mc_events)
        if replaced:
            a.cross_check["reported_from_mc"] = replaced

    nominal_impacts = any(ca.distance_km < RADIUS_KM[ca.body] for ca in found)
    lov = (x0, direction) if direction is not None else None
    a.virtual_impactors = [
        _risk(e, ref, solution.H, diameter_m, entry_altitude_km, vas_kept.epoch_tdb_jd, names,
              lov, nominal_impacts and abs(e.time_tdb_jd - found[-1].time_tdb_jd) < 1.0, x0)
        for e in events]
    a.close_approaches = _nominal_approaches(epoch, x0, names, cov, found)
    _summarize(a, ref)
    a.target_planes = target_planes(list(zip(a.virtual_impactors, events, strict=True)), vas_kept,
                                    approaches, found, mc_rows, a.method, seed)
    if is_report is not None:
        a.cross_check = {**(a.cross_check or {}), "linear_vs_is": is_report}


#: a virtual impactor hit by at least this many Monte Carlo samples is reported with the counted
#: probability: counting is exact where it has the statistics, the linear theory is not where
#: the encounter is strongly nonlinear (short arcs, whose uncertainty is mostly in range)
MC_HITS_PREFERRED = 20


def _prefer_counted(events: list[ImpactEvent], mc_events: list[ImpactEvent]) -> list[dict]:
    """Replace the IP of every VI matched (same body, within ``MC_CLUSTER_DAYS``) by a Monte
    Carlo group with ≥ ``MC_HITS_PREFERRED`` hits with the counted value; what was replaced."""
    from neodefense.impacts.search import MC_CLUSTER_DAYS

    out = []
    for e in events:
        match = [m for m in mc_events if m.body == e.body
                 and abs(m.time_tdb_jd - e.time_tdb_jd) < MC_CLUSTER_DAYS
                 and m.n_impacting >= MC_HITS_PREFERRED]
        if not match:
            continue
        m = match[0]
        out.append({"body": e.body, "date_utc": _iso_utc(e.time_tdb_jd), "ip_lov": e.ip,
                    "ip_mc": m.ip, "ip_mc_sigma": m.ip_sigma, "n_impacting": m.n_impacting})
        e.ip, e.ip_sigma, e.method = m.ip, m.ip_sigma, f"{e.method}+mc"
    return out


# ---------------------------------------------------------------------------------------------
# target planes (for plots): the samples' b-plane points near each encounter, no propagation


def _encounter_rows(rows: np.ndarray, body: str, t_tdb_jd: float) -> np.ndarray:
    """Approach rows of ``body`` within ``MC_CLUSTER_DAYS`` of ``t_tdb_jd`` (the grouping of
    :func:`neodefense.impacts.search.monte_carlo_impacts`), one per virtual asteroid (the one
    nearest that time), in virtual-asteroid order."""
    if rows.size == 0:
        return rows
    dt_days = np.abs(rows["time_tdb_jd"] - t_tdb_jd)
    sel = rows[(rows["body"] == body) & (dt_days <= MC_CLUSTER_DAYS)]
    if sel.size == 0:
        return sel
    sel = sel[np.lexsort((np.abs(sel["time_tdb_jd"] - t_tdb_jd), sel["va"]))]
    _, first = np.unique(sel["va"], return_index=True)
    return sel[first]


def _xi_zeta(rows: np.ndarray, body: str) -> tuple[np.ndarray, np.ndarray]:
    """((n, 2) [ξ, ζ] km, (n,) focused radius km) of approach rows (NaN rows where undefined)."""
    if rows.size == 0:
        return np.zeros((0, 2)), np.zeros(0)
    bp = bplane_from_states(rows["obj"], rows["body_state"], rows["sun_state"], body)
    return np.stack([bp.xi_km, bp.zeta_km], axis=1), np.asarray(bp.impact_radius_km)


def _thinned(xz: np.ndarray, seed_seq: list[int]) -> list[list[float]]:
    """Finite points, at most ``TARGET_PLANE_POINTS`` (a seeded random subset in the original
    order beyond), rounded to ``TARGET_PLANE_DECIMALS``."""
    xz = xz[np.all(np.isfinite(xz), axis=1)]
    if len(xz) > TARGET_PLANE_POINTS:
        rng = np.random.default_rng(np.random.SeedSequence(seed_seq))
        xz = xz[np.sort(rng.choice(len(xz), TARGET_PLANE_POINTS, replace=False))]
    return np.round(xz, TARGET_PLANE_DECIMALS).tolist()


def _opt(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), TARGET_PLANE_DECIMALS)


def _vi_point(event: ImpactEvent, vas: sampling.VirtualAsteroids, rows: np.ndarray,
              xz: np.ndarray) -> tuple[float | None, float | None]:
    """The virtual impactor's own (ξ, ζ): its representative orbit's point when it is one of the
    samples; on the LOV, else the linear interpolation in σ between its two neighbouring
    samples (the search's trace, :mod:`neodefense.impacts.search`); (None, None) otherwise."""
    if rows.size == 0:
        return None, None
    va = rows["va"]
    params = np.asarray(event.params, dtype=float)
    if params.shape == vas.params.shape[1:]:
        same = np.nonzero(np.all(vas.params[va] == params[None, :], axis=1))[0]
        if same.size:
            return _opt(xz[same[0], 0]), _opt(xz[same[0], 1])
    s_star = float(event.sigma_lov)
    sig = vas.sigma[va]
    if not np.isfinite(s_star) or not np.any(np.isfinite(sig)):
        return None, None
    exact = np.nonzero(sig == s_star)[0]
    if exact.size:
        return _opt(xz[exact[0], 0]), _opt(xz[exact[0], 1])
    below = np.nonzero(sig < s_star)[0]
    above = np.nonzero(sig > s_star)[0]
    if not below.size or not above.size:
        return None, None
    i, j = below[np.argmax(sig[below])], above[np.argmin(sig[above])]
    if va[j] - va[i] != 1:  # not neighbours on the LOV: no trace between them on this plane
        return None, None
    f = (s_star - sig[i]) / (sig[j] - sig[i])
    p = xz[i] + f * (xz[j] - xz[i])
    return _opt(p[0]), _opt(p[1])


def _nominal_point(found: list, body: str, t_tdb_jd: float
                   ) -> tuple[float | None, float | None, float, float]:
    """(ξ, ζ, focused radius, v∞) of the nominal's approach to ``body`` nearest ``t_tdb_jd``
    (within ``MC_CLUSTER_DAYS``); Nones and NaNs when it has none."""
    near = [ca for ca in found if ca.body == body
            and abs(ca.time_tdb_jd - t_tdb_jd) <= MC_CLUSTER_DAYS]
    if not near:
        return None, None, float("nan"), float("nan")
    ca = min(near, key=lambda c: abs(c.time_tdb_jd - t_tdb_jd))
    body_state, sun_state = body_and_sun_states(body, ca.time_tdb_jd)
    obj = body_state + np.concatenate([ca.rel_position_au, ca.rel_velocity_au_per_day])
    bp = bplane_from_states(obj, body_state, sun_state, body)
    return (_opt(bp.xi_km[0]), _opt(bp.zeta_km[0]), float(bp.impact_radius_km[0]),
            float(bp.v_inf_km_s[0]))


def _plane(kind: str, body: str, t_tdb_jd: float, date_utc: str, method: str,
           approaches: np.ndarray, check_rows: np.ndarray | None, seed_seq: list[int]
           ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """A target plane's common keys, and (rows, points, focused radii) of its samples."""
    rows = _encounter_rows(approaches, body, t_tdb_jd)
    xz, r_imp = _xi_zeta(rows, body)
    check = _encounter_rows(check_rows, body, t_tdb_jd) if check_rows is not None else None
    check_xz = _xi_zeta(check, body)[0] if check is not None else np.zeros((0, 2))
    plane: dict[str, Any] = {
        "kind": kind, "body": body, "date_utc": date_utc, "time_tdb_jd": float(t_tdb_jd),
        "radius_km": float(RADIUS_KM[body]), "method": method,
        "n_samples": int(rows.size),
        "n_impacting": int(np.sum(rows["dist_km"] < RADIUS_KM[body])) if rows.size else 0,
        "points_km": _thinned(xz, [*seed_seq, 0]),
        "n_check_samples": int(check.size) if check is not None else 0,
        "check_points_km": _thinned(check_xz, [*seed_seq, 1]),
    }
    return plane, rows, xz, r_imp


def target_planes(vis: list[tuple[VirtualImpactor, ImpactEvent]], vas: sampling.VirtualAsteroids,
                  approaches: np.ndarray, found: list, check_rows: np.ndarray | None,
                  method: str, seed: int | None = 0) -> list[dict[str, Any]]:
    """Target planes (Öpik b-planes) for plots, from the approaches the run already found.

    One plane per virtual impactor (the ``TARGET_PLANE_VIS`` most probable, most probable first),
    then one per nominal close approach without a virtual impactor at the same encounter (the
    ``TARGET_PLANE_APPROACHES`` closest). On each, every virtual asteroid of the run with an
    approach to that body within ``MC_CLUSTER_DAYS`` of the encounter is a point (ξ, ζ) in km in
    its own b-plane frame (:func:`neodefense.impacts.bplane.bplane_from_states`): for Monte Carlo
    runs the cloud over the body's disc, for LOV runs the line of virtual asteroids crossing it
    (ranging samples are drawn ∝ weight, so their density is the probability density too).
    The samples of the Monte Carlo cross-check are given separately.

    Keys of each plane: ``kind`` ("virtual_impactor" | "close_approach"), ``body``,
    ``date_utc``, ``time_tdb_jd``, ``radius_km`` (the body's), ``b_impact_km`` (the focused
    impact radius at the encounter's v∞), ``v_inf_km_s``, ``ip`` (the VI's; None for a close
    approach), ``vi_xi_km``/``vi_zeta_km`` (the VI's own point when known, else None),
    ``nominal_xi_km``/``nominal_zeta_km`` (the nominal orbit's point when it comes within the
    search radius at this encounter, else None), ``method`` (of the points: the run's),
    ``n_samples`` (virtual asteroids at this encounter), ``n_impacting`` (those hitting the
    body), ``points_km`` ([[ξ, ζ], ...], at most ``TARGET_PLANE_POINTS``, seeded thinning in
    virtual-asteroid order — σ order on the LOV), ``n_check_samples`` and ``check_points_km``
    (the same for the Monte Carlo cross-check; 0 and [] without one). Coordinates rounded to
    0.1 km.
    """
    seed0 = abs(int(seed or 0))
    planes: list[dict[str, Any]] = []
    ranked = sorted(vis, key=lambda pair: (-float(pair[0].ip), pair[0].time_tdb_jd))
    for k, (vi, event) in enumerate(ranked[:TARGET_PLANE_VIS]):
        plane, rows, xz, r_imp = _plane("virtual_impactor", vi.body, vi.time_tdb_jd, vi.date_utc,
                                        method, approaches, check_rows, [seed0, k])
        nom_xi, nom_zeta, _, _ = _nominal_point(found, vi.body, vi.time_tdb_jd)
        b_imp = float(vi.b_impact_km)
        if not np.isfinite(b_imp):
            b_imp = float(focused_radius_km(RADIUS_KM[vi.body], GM_KM3_S2[vi.body], vi.v_inf_km_s))
        if not np.isfinite(b_imp) and np.any(np.isfinite(r_imp)):
            b_imp = float(np.nanmedian(r_imp))
        vi_xi, vi_zeta = _vi_point(event, vas, rows, xz)
        plane.update({"b_impact_km": _num_or_none(b_imp), "v_inf_km_s": _num_or_none(vi.v_inf_km_s),
                      "ip": _num_or_none(vi.ip), "vi_xi_km": vi_xi, "vi_zeta_km": vi_zeta,
                      "nominal_xi_km": nom_xi, "nominal_zeta_km": nom_zeta})
        planes.append(plane)
    taken = [(p["body"], p["time_tdb_jd"]) for p in planes]
    extra = [ca for ca in sorted(found, key=lambda c: c.distance_km)
             if not any(b == ca.body and abs(t - ca.time_tdb_jd) <= MC_CLUSTER_DAYS
                        for b, t in taken)]
    for k, ca in enumerate(extra[:TARGET_PLANE_APPROACHES]):
        plane, _, _, _ = _plane("close_approach", ca.body, ca.time_tdb_jd, _iso_utc(ca.time_tdb_jd),
                                method, approaches, check_rows, [seed0, TARGET_PLANE_VIS + k])
        nom_xi, nom_zeta, b_imp, v_inf = _nominal_point(found, ca.body, ca.time_tdb_jd)
        plane.update({"b_impact_km": _num_or_none(b_imp), "v_inf_km_s": _num_or_none(v_inf),
                      "ip": None, "vi_xi_km": None, "vi_zeta_km": None,
                      "nominal_xi_km": nom_xi, "nominal_zeta_km": nom_zeta})
        planes.append(plane)
    return [_ordered(p) for p in planes]


_PLANE_KEYS = ("kind", "body", "date_utc", "time_tdb_jd", "radius_km", "b_impact_km",
               "v_inf_km_s", "ip", "vi_xi_km", "vi_zeta_km", "nominal_xi_km", "nominal_zeta_km",
               "method", "n_samples", "n_impacting", "points_km", "n_check_samples",
               "check_points_km")


def _ordered(plane: dict[str, Any]) -> dict[str, Any]:
    return {k: plane[k] for k in _PLANE_KEYS}


def _num_or_none(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(value)
