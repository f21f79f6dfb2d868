"""Alert replay: an object's discovery fed through the real catalog pipeline, alerts and all.

:func:`alert_replay` is issue 5's end-to-end rehearsal. The observations of one object arrive as
they were made (the steps of :func:`neodefense.impacts.replay.replay_steps`: the discovery
tracklet, then every ``step_hours`` of real time), and each step goes through the same functions
the production flows call, on a catalog of its own:

1. the step's new observations are written as a submission and ingested
   (:func:`neodefense.catalog.ingest.ingest`, submitter ``"replay"``, file
   ``replay-step-<k>.obs80`` or ``.psv``);
2. the object is resolved (:func:`neodefense.catalog.queries.resolve`), its fit set loaded
   (:func:`neodefense.catalog.solutions.observations_with_ids`), fitted
   (:func:`neodefense.orbits.fit.fit_orbit`) and the solution stored
   (:func:`neodefense.catalog.solutions.store_solution`);
3. a converged (or short-arc, ranging) solution is monitored
   (:func:`neodefense.impacts.monitor.monitor_solution`, with the arguments
   :func:`neodefense.impacts.replay.replay_step` uses) and the assessment stored
   (:func:`neodefense.catalog.assessments.store_assessment`) with ``as_of`` = the step's cutoff:
   the alert rules run in that transaction and date the alerts in simulated time;
4. with ``deliver`` the outbox is delivered (:func:`neodefense.alerts.deliver.deliver_due`) to the
   subscribers added before the first step.

A step with no new observation changes nothing and is skipped (no record); a step whose new
observations were all duplicates or rejected is recorded but not refitted. A fit that does not
converge is stored (as the orbit flow stores it) and not monitored (as the monitoring flow,
which monitors converged and short-arc solutions only). No science here: this module only
composes the pipeline's functions.

The submission format: obs80 when writing the step's records as obs80 and reading them back
reproduces every field exactly (an obs80 source: its records are copied verbatim), else ADES PSV
(:func:`neodefense.observations.ades.write_psv`).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neodefense import timescales
from neodefense.impacts.replay import DEFAULT_YEARS, STEP_HOURS, TRACKLET_HOURS, replay_steps
from neodefense.observations.batch import COLUMNS, ObservationBatch

__all__ = ["SUBMITTER", "alert_replay", "submission"]

#: ``submitter`` of the replay's submissions
SUBMITTER = "replay"
#: columns that need not survive the submission round trip (where a record sits in its file)
_PROVENANCE_COLUMNS = frozenset({"line", "raw"})


def _iso(mjd_utc: float) -> str:
    """ISO UTC to the (rounded) second, no zone: '2008-10-06T07:23:05'."""
    return str(timescales.utc_mjd_to_iso(mjd_utc, 0)[0])


def _same(a: ObservationBatch, b: ObservationBatch) -> bool:
    """Every column but the provenance ones equal (NaN equal to NaN)."""
    if len(a) != len(b):
        return False
    for name, kind in COLUMNS.items():
        if name in _PROVENANCE_COLUMNS:
            continue
        x, y = a.columns[name], b.columns[name]
        same = np.array_equal(x, y, equal_nan=True) if kind == "f" else np.array_equal(x, y)
        if not same:
            return False
    return True


def submission(batch: ObservationBatch) -> tuple[bytes, str]:
    """The bytes of a submission holding ``batch`` and its file extension: obs80 when that round
    trip is exact (module docstring), else ADES PSV."""
    from neodefense.observations import ades, obs80
    from neodefense.observations import io as obs_io

    text = obs80.write(batch)
    if text:
        try:
            back = obs_io.read(text.encode(), file="<replay>", fmt="obs80").batch
        except ValueError:
            back = None
        if back is not None and _same(batch, back):
            return text.encode(), "obs80"
    return ades.write_psv(batch).encode(), "psv"


def _add_subscribers(engine: Any, subscribers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Subscribers ``replay-1``, ``replay-2``, ...: each entry is one channel dict (``kind``,
    ``target``, ``format``, ``secret``: a subscriber to every alert) or a dict with ``channels``
    and optional ``criteria`` and ``name``."""
    from neodefense.catalog.alerts import add_subscriber

    added = []
    for i, entry in enumerate(subscribers, start=1):
        if "channels" in entry:
            name, criteria, channels = (entry.get("name") or f"replay-{i}", entry.get("criteria") or {},
                                        list(entry["channels"]))
        else:
            name, criteria, channels = f"replay-{i}", {}, [dict(entry)]
        added.append(add_subscriber(engine, name, criteria, channels))
    return added


def _imminent_time(assessment: Mapping[str, Any] | None) -> dt.datetime | None:
    """Entry time (else VI date) of the most probable Earth VI with an atmospheric entry."""
    from neodefense.alerts.rules import imminent_vi

    if not assessment:
        return None
    earth = {**assessment, "virtual_impactors": [
        vi for vi in assessment.get("virtual_impactors") or () if vi.get("body") == "earth"]}
    vi = imminent_vi(earth)
    if vi is None:
        return None
    text = (vi.get("entry") or {}).get("time_utc") or vi.get("date_utc")
    if not text:
        return None
    when = dt.datetime.fromisoformat(str(text).strip().replace(" ", "T").replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _add_totals(totals: dict[str, int] | None, more: Mapping[str, int]) -> dict[str, int]:
    out = dict(totals or {})
    for key, value in more.items():
        out[key] = out.get(key, 0) + int(value)
    return out


def alert_replay(batch: ObservationBatch, designation: str, *, catalog_url: str | None = None,
                 step_hours: float = STEP_HOURS, tracklet_hours: float = TRACKLET_HOURS,
                 method: str = "lov", years: float = DEFAULT_YEARS, n_samples: int | None = None,
                 seed: int = 0, bodies: tuple[str, ...] = ("earth",), cross_check: bool = False,
                 nongrav: str = "none", client: Any = None, alert_config: Any = None,
                 subscribers: Sequence[Mapping[str, Any]] = (), deliver: bool = False,
                 delivery_options: Any = None, max_steps: int | None = None,
                 on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Replay ``batch`` (one object's observations, any order) through ingest, fit, monitoring
    and alerting, step by step (module docstring); returns what happened.

    ``designation``: the object's designation as the observations carry it (any alias).
    ``catalog_url``: the catalog to write to; None: a fresh SQLite file in a new temporary
    directory (left in place, its URL returned; the caller removes it). Monitoring options
    (``method``, ``years`` after the last observation, ``n_samples``, ``seed``, ``bodies``,
    ``cross_check``, ``client``) go to :func:`~neodefense.impacts.monitor.monitor_solution`,
    ``nongrav`` to :func:`~neodefense.orbits.fit.fit_orbit`. ``alert_config``: a
    :class:`~neodefense.catalog.alerts.AlertConfig` (None: the default rules). ``subscribers``:
    channel dicts (``{"kind", "target", "format", "secret"}``; or ``{"channels", "criteria",
    "name"}``), added as subscribers ``replay-1``, ... before the first step; with ``deliver``
    the due deliveries are sent after every step (``delivery_options``: a
    :class:`~neodefense.alerts.deliver.DeliveryOptions`). ``max_steps``: stop before step
    ``max_steps`` (steps counted as :func:`~neodefense.impacts.replay.replay_steps` counts them);
    ``on_step`` is called with each step record as it is made.

    Returns ``{"designation", "catalog_url", "steps", "alerts", "deliveries", "subscribers"}``:

    * ``steps``: one record per step that brought observations: ``step``, ``cutoff_mjd_utc``,
      ``cutoff_utc`` (ISO), ``n_obs`` (observations fed so far), ``n_new``, ``n_accepted`` /
      ``n_rejected`` (the ingest's), ``n_fit`` (the catalog's fit set), ``fit_status``,
      ``solution_id``, ``assessment_id``, ``status``, ``message``, ``method``, ``n_samples``,
      ``cumulative_ip``, ``torino_max``, ``n_vi``, ``alerts`` (public ids raised at this step),
      ``delivered`` (deliveries recorded after it), ``runtime_s``; fields without a value
      (no refit, no assessment) are None.
    * ``alerts``: the alerts raised (:func:`neodefense.catalog.alerts.alerts` dicts: alert_id,
      issued_utc, kinds, payload, ...) plus ``step``, ``cutoff_utc`` and ``lead_hours``: hours
      from the alert's issue to the atmospheric entry (else the date) of the most probable
      imminent Earth VI of the final assessment, None when it has none.
    * ``deliveries``: :func:`~neodefense.alerts.deliver.deliver_due` totals summed over the
      steps (None without ``deliver``); ``subscribers``: as added (channel secrets included).
    """
    from neodefense.alerts.deliver import deliver_due
    from neodefense.catalog import alerts as catalog_alerts
    from neodefense.catalog import db
    from neodefense.catalog.assessments import latest_assessment, store_assessment
    from neodefense.catalog.ingest import ingest
    from neodefense.catalog.queries import resolve
    from neodefense.catalog.solutions import observations_with_ids, store_solution
    from neodefense.impacts.monitor import monitor_solution
    from neodefense.orbits.fit import fit_orbit
    from neodefense.orbits.solution import ARC_TOO_SHORT, CONVERGED

    if catalog_url is None:
        directory = Path(tempfile.mkdtemp(prefix="neodefense-alert-replay-"))
        catalog_url = f"sqlite:///{directory / 'catalog.sqlite'}"
    engine = db.connect(catalog_url)
    fit_settings = {"nongrav": nongrav, "exclude": [], "epoch_tdb_jd": None,
                    "requested_by": "alert replay"}
    steps: list[dict[str, Any]] = []
    raised: list[dict[str, Any]] = []
    deliveries: dict[str, int] | None = {} if deliver else None
    object_id: int | None = None
    try:
        seen = {a["id"] for a in catalog_alerts.alerts(engine)}
        added = _add_subscribers(engine, subscribers)
        fed = np.zeros(len(batch), dtype=bool)
        for k, (cutoff, idx) in enumerate(replay_steps(batch, step_hours, tracklet_hours)):
            if max_steps is not None and k >= max_steps:
                break
            new = idx[~fed[idx]]  # time order, as replay_steps gives them
            if not len(new):  # nothing arrived: nothing changes
                continue
            fed[new] = True
            t_start = time.perf_counter()
            cutoff_utc = _iso(cutoff)
            # the simulated "now" of the step (whole seconds, as alerts are dated)
            as_of = dt.datetime.fromisoformat(cutoff_utc).replace(tzinfo=dt.UTC)
            record: dict[str, Any] = {
                "step": k, "cutoff_mjd_utc": float(cutoff), "cutoff_utc": cutoff_utc,
                "n_obs": int(fed.sum()), "n_new": len(new), "n_accepted": 0, "n_rejected": 0,
                "n_fit": None, "fit_status": None, "solution_id": None, "assessment_id": None,
                "status": None, "message": "", "method": None, "n_samples": None,
                "cumulative_ip": None, "torino_max": None, "n_vi": None, "alerts": [],
                "delivered": None, "runtime_s": 0.0}
            data, ext = submission(batch.take(new))
            receipt = ingest(engine, data, f"replay-step-{k}.{ext}", SUBMITTER)
            record.update(n_accepted=receipt.accepted, n_rejected=receipt.n_rejected)
            object_id = resolve(engine, designation)
            if object_id is None:
                record["message"] = f"{designation!r} is not in the catalog (yet)"
            elif receipt.accepted:  # else the fit set is unchanged: no refit (as the orbit flow)
                obs, ids = observations_with_ids(engine, object_id)
                sol = fit_orbit(obs, designation, nongrav=nongrav, close_approach_years=None)
                solution_id = store_solution(engine, object_id, sol, ids, fit_settings)
                record.update(n_fit=len(obs), fit_status=sol.status, solution_id=solution_id,
                              message=sol.message or "")
                if sol.status in (CONVERGED, ARC_TOO_SHORT):  # what the monitoring flow takes
                    assessment = monitor_solution(
                        sol, batch=obs, method=method, years=years, n_samples=n_samples,
                        bodies=bodies, seed=seed, cross_check=cross_check, client=client)
                    # the alert rules run in this transaction, dated in simulated time
                    record["assessment_id"] = store_assessment(
                        engine, solution_id, assessment, alert_config=alert_config, as_of=as_of)
                    record.update(status=assessment.status, message=assessment.message or "",
                                  method=assessment.method, n_samples=int(assessment.n_samples),
                                  cumulative_ip=_finite(assessment.cumulative_ip),
                                  torino_max=int(assessment.torino_max),
                                  n_vi=len(assessment.virtual_impactors))
            fresh = [a for a in catalog_alerts.alerts(engine) if a["id"] not in seen]
            seen.update(a["id"] for a in fresh)
            record["alerts"] = [a["alert_id"] for a in fresh]
            raised += [{**a, "step": k, "cutoff_utc": record["cutoff_utc"]} for a in fresh]
            if deliver:
                totals = deliver_due(engine, delivery_options)
                deliveries = _add_totals(deliveries, totals)
                record["delivered"] = int(totals.get("delivered", 0))
            record["runtime_s"] = time.perf_counter() - t_start
            steps.append(record)
            if on_step is not None:
                on_step(record)
        final = latest_assessment(engine, object_id) if object_id is not None else None
        impact = _imminent_time(final)
        for a in raised:
            issued = dt.datetime.fromisoformat(a["issued_utc"].replace("Z", "+00:00"))
            a["lead_hours"] = (None if impact is None
                               else (impact - issued).total_seconds() / 3600.0)
    finally:
        engine.dispose()
    return {"designation": designation, "catalog_url": catalog_url, "steps": steps,
            "alerts": raised, "deliveries": deliveries, "subscribers": added}
