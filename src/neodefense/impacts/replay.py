"""Replay of an object's discovery: impact probability as the observations arrived.

The observations of one object are fed in the order they were made, as a monitoring system
would have received them, and each time the orbit is refitted
(:func:`neodefense.orbits.fit.fit_orbit`) and monitored
(:func:`neodefense.impacts.monitor.monitor_solution`). The result is the impact probability (IP)
as a function of real time and, with the known impact time, the warning time: how long before
impact the IP first passed 1 %, 50 % and 99 %.

Steps (:func:`replay_steps`)
----------------------------
1. **The first tracklet**: the observations of the discovery station (the station of the record
   flagged ``*`` in obs80's discovery column, else of the earliest observation) made within
   ``tracklet_hours`` (default 1 h) of the discovery observation. One hour holds a survey's
   discovery tracklet (typically 3–5 exposures some 15 minutes apart — 2008 TC3's four Mt. Lemmon
   images spanned 43 minutes) and no later follow-up of the same night. Other stations'
   observations made meanwhile are not part of the first step.
2. **Then every ``step_hours`` of real time**: the cutoff advances from the time of the first
   tracklet's last observation by ``step_hours`` per step, and each step holds every observation
   made at or before its cutoff (observation time in UTC), until all are in. Steps in which no
   new observation arrived keep the previous step's result (no refit; ``recomputed`` False).

Observations without a finite time never enter. Deprecated (obs80 "X") records are carried
along like the others; the fit itself leaves them out.

A replay is the input of issue 5's alert replay too: :func:`replay_step` assesses one subset and
:func:`warning_times` reads any list of step records, whatever the object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from neodefense import timescales
from neodefense.impacts.assessment import ImpactAssessment, VirtualImpactor
from neodefense.impacts.monitor import monitor_solution
from neodefense.observations.batch import ObservationBatch
from neodefense.orbits.fit import fit_orbit

__all__ = [
    "DEFAULT_YEARS",
    "STEP_HOURS",
    "THRESHOLDS",
    "TRACKLET_HOURS",
    "first_tracklet",
    "replay",
    "replay_step",
    "replay_steps",
    "warning_times",
]

HOURS_PER_DAY = 24.0
#: span of the discovery tracklet (hours after the discovery observation)
TRACKLET_HOURS = 1.0
#: real time between replay steps (hours)
STEP_HOURS = 1.0
#: default monitoring horizon (years after the last observation): an imminent impactor's
#: impact lies within days of its discovery
DEFAULT_YEARS = 0.05
#: the IP levels whose first passage :func:`warning_times` reports
THRESHOLDS = (0.01, 0.5, 0.99)
#: the fields of a record that belong to its step rather than to its assessment
_STEP_KEYS = ("step", "cutoff_mjd_utc", "cutoff_utc", "n_new")
#: cutoff comparison tolerance (days; ~1 ms): times on the step grid count as "before"
_EPS_DAY = 1e-8


def _times_mjd_utc(batch: ObservationBatch) -> np.ndarray:
    return np.asarray(batch.columns["obsTime_mjd"], dtype=float)


def _iso(mjd_utc: float, precision: int = 0) -> str:
    return str(timescales.utc_mjd_to_iso(mjd_utc, precision)[0])


def _to_mjd_utc(when: str | float) -> float:
    """An ISO UTC time ("2008-10-07T02:45:45" or with a space) or a UTC MJD → UTC MJD."""
    if isinstance(when, str):
        return float(timescales.iso_to_utc_mjd(when.strip().replace(" ", "T").rstrip("Z"))[0])
    return float(when)


def first_tracklet(batch: ObservationBatch, tracklet_hours: float = TRACKLET_HOURS) -> np.ndarray:
    """Indices (time order) of the discovery tracklet: the discovery station's observations
    within ``tracklet_hours`` of the discovery observation (module docstring)."""
    t = _times_mjd_utc(batch)
    finite = np.isfinite(t)
    if not finite.any():
        raise ValueError("no observation has a finite time")
    flagged = np.nonzero(finite & (batch.columns["disc"] == "*"))[0]
    candidates = flagged if len(flagged) else np.nonzero(finite)[0]
    anchor = int(candidates[np.argmin(t[candidates])])
    t0 = t[anchor]
    mask = (finite & (batch.columns["stn"] == batch.columns["stn"][anchor]) & (t >= t0)
            & (t <= t0 + tracklet_hours / HOURS_PER_DAY + _EPS_DAY))
    idx = np.nonzero(mask)[0]
    return idx[np.argsort(t[idx], kind="stable")]


def replay_steps(batch: ObservationBatch, step_hours: float = STEP_HOURS,
                 tracklet_hours: float = TRACKLET_HOURS) -> list[tuple[float, np.ndarray]]:
    """``[(cutoff_mjd_utc, indices), ...]``: the first tracklet, then every ``step_hours`` of real
    time until every observation with a finite time is in (indices in time order)."""
    if not step_hours > 0:
        raise ValueError(f"step_hours must be positive, got {step_hours!r}")
    t = _times_mjd_utc(batch)
    first = first_tracklet(batch, tracklet_hours)
    cutoff0 = float(t[first].max())
    steps: list[tuple[float, np.ndarray]] = [(cutoff0, first)]
    order = np.nonzero(np.isfinite(t))[0]
    order = order[np.argsort(t[order], kind="stable")]
    k = 1
    while len(steps[-1][1]) < len(order):
        cutoff = cutoff0 + k * step_hours / HOURS_PER_DAY
        steps.append((cutoff, order[t[order] <= cutoff + _EPS_DAY]))
        k += 1
    return steps


def _earliest_earth_vi(assessment: ImpactAssessment) -> VirtualImpactor | None:
    earth = [vi for vi in assessment.virtual_impactors if vi.body == "earth"]
    return min(earth, key=lambda vi: vi.time_tdb_jd) if earth else None


def _ip_sigma(assessment: ImpactAssessment) -> float | None:
    """1σ of the cumulative IP of a sampled estimate (Monte Carlo, importance sampling): the VIs'
    errors added in quadrature (exact for one VI, as for an imminent impactor); None for the
    linearized LOV estimate."""
    if assessment.method not in ("mc", "is") or not assessment.ok:
        return None
    return float(np.sqrt(sum(float(vi.ip_sigma) ** 2 for vi in assessment.virtual_impactors)))


def replay_step(batch: ObservationBatch, designation: str, *, method: str = "lov",
                years: float = DEFAULT_YEARS, n_samples: int | None = None, seed: int = 0,
                bodies: tuple[str, ...] = ("earth",), cross_check: bool = False,
                nongrav: str = "none", client: Any = None) -> dict[str, Any]:
    """Fit ``batch`` and monitor the solution: one step's record (see :func:`replay`), without
    the step number and cutoff."""
    t = _times_mjd_utc(batch)
    t_start = time.perf_counter()
    sol = fit_orbit(batch, designation, nongrav=nongrav, close_approach_years=None)
    t_fit = time.perf_counter() - t_start
    a = monitor_solution(sol, batch=batch, method=method, years=years, n_samples=n_samples,
                         bodies=bodies, seed=seed, cross_check=cross_check, client=client)
    vi = _earliest_earth_vi(a)
    ip_valid = a.ok and np.isfinite(a.cumulative_ip) and all(
        np.isfinite(v.ip) for v in a.virtual_impactors)
    message = a.message
    cc = a.cross_check or {}
    if a.ok and not ip_valid:  # e.g. NaN sample weights: min(1, nan) would read as IP = 1
        message = (message + "; " if message else "") + "non-finite impact probability"
    return {
        "n_obs": len(batch),
        "n_stations": len(set(batch.columns["stn"].tolist())),
        "first_obs_utc": _iso(float(np.nanmin(t))),
        "last_obs_utc": _iso(float(np.nanmax(t))),
        "arc_hours": float((np.nanmax(t) - np.nanmin(t)) * HOURS_PER_DAY),
        "fit_status": sol.status,
        "fit_message": sol.message,
        "n_used": int(sol.n_used),
        "rms_arcsec": None if not np.isfinite(sol.rms_arcsec) else float(sol.rms_arcsec),
        "method": a.method,
        "status": a.status,
        "message": message,
        "n_samples": int(a.n_samples),
        "cumulative_ip": float(a.cumulative_ip) if ip_valid else None,
        "ip_sigma": _ip_sigma(a),
        "n_vi": len(a.virtual_impactors),
        # the independent Monte Carlo estimate when the LOV run was cross-checked
        "cross_check_ip": cc.get("cumulative_ip"),
        "cross_check_sigma": cc.get("ip_sigma"),
        "cross_check_agrees": cc.get("agrees"),
        "vi_date_utc": vi.date_utc if vi is not None else None,
        "vi_ip": float(vi.ip) if vi is not None else None,
        "entry": vi.entry if vi is not None else None,
        "fit_runtime_s": t_fit,
        "monitor_runtime_s": float(a.runtime_s),
        "runtime_s": time.perf_counter() - t_start,
        "recomputed": True,
    }


def replay(batch: ObservationBatch, designation: str, *, method: str = "lov",
           years: float = DEFAULT_YEARS, n_samples: int | None = None,
           step_hours: float = STEP_HOURS, tracklet_hours: float = TRACKLET_HOURS,
           seed: int = 0, bodies: tuple[str, ...] = ("earth",), cross_check: bool = False,
           nongrav: str = "none", client: Any = None, max_steps: int | None = None,
           on_step: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Replay ``batch`` step by step (:func:`replay_steps`); one record per step.

    Each record: ``step`` (0 = first tracklet), ``cutoff_mjd_utc`` / ``cutoff_utc`` (ISO),
    ``n_obs``, ``n_new``, ``n_stations``, ``arc_hours``, ``fit_status``, ``rms_arcsec``,
    ``method`` (``lov``, ``is`` or ``mc``; ``mc`` whenever a short arc was sampled from
    ranging), ``status`` (the assessment's),
    ``cumulative_ip`` (None when the assessment is not ``ok`` or its IP is not finite),
    ``ip_sigma`` (sampled methods),
    ``cross_check_ip`` / ``cross_check_sigma`` / ``cross_check_agrees`` (with ``cross_check``),
    the earliest Earth VI's ``vi_date_utc``, ``vi_ip`` and ``entry``, runtimes, and
    ``recomputed`` (False: no new observation, the previous result is carried over).
    ``max_steps`` stops early; ``on_step`` is called with each record as it is made.
    Monitoring options (``method``, ``years``, ``n_samples``, ``seed``, ``bodies``,
    ``cross_check``, ``client``) go to :func:`~neodefense.impacts.monitor.monitor_solution`.
    """
    records: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for k, (cutoff, idx) in enumerate(replay_steps(batch, step_hours, tracklet_hours)):
        if max_steps is not None and k >= max_steps:
            break
        n_prev = previous["n_obs"] if previous is not None else 0
        # the steps are nested: an equal count is the same set of observations
        if previous is not None and len(idx) == n_prev:
            record = {k_: v for k_, v in previous.items() if k_ not in _STEP_KEYS}
            record.update(recomputed=False, fit_runtime_s=0.0, monitor_runtime_s=0.0,
                          runtime_s=0.0)
        else:
            record = replay_step(batch.take(idx), designation, method=method, years=years,
                                 n_samples=n_samples, seed=seed, bodies=bodies,
                                 cross_check=cross_check, nongrav=nongrav, client=client)
        record = {"step": k, "cutoff_mjd_utc": float(cutoff), "cutoff_utc": _iso(cutoff),
                  "n_new": len(idx) - n_prev if k else len(idx), **record}
        records.append(record)
        previous = record
        if on_step is not None:
            on_step(record)
    return records


def warning_times(steps: Sequence[dict[str, Any]], impact_time_utc: str | float,
                  thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, Any]]:
    """For each threshold, the first step whose cumulative IP reaches it (IP ≥ threshold).

    ``impact_time_utc``: ISO UTC or UTC MJD. Each entry: ``threshold``, ``step``, ``cutoff_utc``,
    ``cutoff_mjd_utc``, ``n_obs``, ``ip``, ``warning_hours`` (impact time − cutoff), and
    ``stays_above`` (every later step with an IP is at or above the threshold too); the step
    fields are None when the IP never reached it. Steps are read in cutoff order; a step
    without an IP (failed fit or assessment) neither passes nor counts as a drop.
    """
    impact = _to_mjd_utc(impact_time_utc)
    ordered = sorted(steps, key=lambda s: s["cutoff_mjd_utc"])
    ips = [s.get("cumulative_ip") for s in ordered]
    out = []
    for threshold in thresholds:
        hit = next((i for i, ip in enumerate(ips) if ip is not None and ip >= threshold), None)
        entry: dict[str, Any] = {"threshold": float(threshold), "step": None, "cutoff_utc": None,
                                 "cutoff_mjd_utc": None, "n_obs": None, "ip": None,
                                 "warning_hours": None, "stays_above": None}
        if hit is not None:
            s = ordered[hit]
            entry.update(step=s.get("step", hit), cutoff_utc=s.get("cutoff_utc"),
                         cutoff_mjd_utc=float(s["cutoff_mjd_utc"]), n_obs=s.get("n_obs"),
                         ip=float(ips[hit]),
                         warning_hours=float((impact - s["cutoff_mjd_utc"]) * HOURS_PER_DAY),
                         stays_above=all(ip >= threshold for ip in ips[hit:] if ip is not None))
        out.append(entry)
    return out
