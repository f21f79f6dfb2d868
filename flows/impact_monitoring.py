"""Impact-monitoring flow: monitor every object whose orbit solution changed since its last
assessment, the virtual asteroids spread over Dask.

1. :func:`neodefense.catalog.assessments.solutions_to_monitor` lists the objects whose current
   orbit solution (newest converged one) has no impact assessment yet (``scope="changed"``);
   ``scope="all"`` (the nightly run) adds :func:`~neodefense.catalog.assessments.stale_solutions`:
   the objects last assessed by another code version or with other settings than this run's
   (:func:`monitor_settings`).
2. One coarse Prefect task opens the Dask client (:func:`neodefense.compute.client`) once and
   monitors the objects one after the other *in this process*: it loads the solution and its
   observations, calls :func:`neodefense.impacts.monitor.monitor_solution` with the client (the
   monitor spreads one object's thousands of virtual asteroids over the workers itself, which
   keeps the cluster busy without running objects side by side), and stores the assessment as
   the object's next version. A crash inside the monitor is stored as a 'failed' assessment
   naming the error, as is an assessment the catalog refuses; the flow goes on with the others.
   Transient database errors are retried as in the orbit flow.
3. Returns one summary dict per object.

The monitor is looked up as ``neodefense.impacts.monitor.monitor_solution`` at each call, in the
flow's process: replacing that attribute (a test's ``monkeypatch``) replaces the monitor.
Settings: the ``[monitoring]`` section of config/neodefense.toml, overridden by the flow's
parameters. No science and no SQL here: both live in the package.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from neodefense import config
from neodefense.catalog.errors import is_transient

#: Retries of a catalog read or write after a transient database error, and the waits between
#: them (s).
RETRY_DELAYS_S = (1.0, 2.0, 4.0)


def monitoring_options(settings: config.Settings, **overrides: Any) -> dict[str, Any]:
    """The ``[monitoring]`` section of the settings, with the overrides that are not None, and
    ``alert_config`` (the ``[alerts]`` rules applied when each assessment is stored)."""
    from neodefense.catalog.alerts import AlertConfig

    options = dict(settings.raw["monitoring"])
    options.update({k: v for k, v in overrides.items() if v is not None})
    # the alert rules run in the transaction that stores each assessment (the outbox)
    options.setdefault("alert_config", AlertConfig.from_settings(settings.raw.get("alerts", {})))
    return options


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a flow or task, else this module's logger."""
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - prefect's MissingContextError: called outside a run
        return logging.getLogger(__name__)


def _retrying(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, retried after transient database errors (:data:`RETRY_DELAYS_S`)."""
    for delay in (*RETRY_DELAYS_S, None):
        try:
            return fn(*args)
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


#: What :func:`monitor_changed_objects` monitors: "changed" (objects whose current orbit has
#: no assessment yet) or "all" (those, and every object whose assessment is stale).
SCOPES = ("changed", "all")


def monitor_arguments(options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments :func:`neodefense.impacts.monitor.monitor_solution` gets from the
    run's ``options`` (besides the solution, its observations and the Dask client)."""
    cross_check_samples = int(options.get("cross_check_samples", 0))
    return {"method": str(options["method"]), "years": float(options["years"]),
            "n_samples": int(options["n_samples"]) or None, "bodies": tuple(options["bodies"]),
            "seed": int(options["seed"]),
            "entry_altitude_km": float(options["entry_altitude_km"]),
            "cross_check": cross_check_samples > 0,
            "cross_check_samples": cross_check_samples or None}


def monitor_settings(options: dict[str, Any]) -> dict[str, Any]:
    """The ``settings`` an assessment made with ``options`` records (as
    :func:`~neodefense.impacts.monitor.monitor_solution` writes them): what an assessment's
    settings are compared with to tell whether it is stale."""
    args = monitor_arguments(options)
    return {"method": args["method"], "years": args["years"], "n_samples": args["n_samples"],
            "bodies": [str(b).strip().lower() for b in args["bodies"]], "seed": args["seed"],
            "entry_altitude_km": args["entry_altitude_km"], "cross_check": args["cross_check"],
            "cross_check_samples": args["cross_check_samples"], "diameter_m": None,
            "is_samples": None}


@task(name="find-solutions-to-monitor", cache_policy=NO_CACHE)
def find_solutions_to_monitor(catalog_url: str, scope: str = "changed",
                              settings: dict[str, Any] | None = None
                              ) -> list[tuple[int, str, int]]:
    """(object id, designation, solution id) to monitor, by object id: the changed ones, and
    with ``scope="all"`` those whose assessment is stale for this code version and the monitor
    ``settings`` (:func:`monitor_settings`)."""
    from neodefense.catalog import assessments, db
    from neodefense.orbits.solution import code_version

    engine = db.connect(catalog_url)
    try:
        todo = _retrying(assessments.solutions_to_monitor, engine)
        if scope == "all":
            stale = _retrying(assessments.stale_solutions, engine, code_version(), settings or {})
            todo = sorted(set(todo) | set(stale))
        return todo
    finally:
        engine.dispose()


def _failed(solution, options: dict[str, Any], message: str, runtime_s: float = 0.0):  # noqa: ANN001, ANN202
    """A 'failed' assessment of ``solution`` naming what went wrong, with the run's settings."""
    from neodefense.impacts.assessment import FAILED, ImpactAssessment

    return ImpactAssessment(
        designation=solution.designation, status=FAILED, message=message,
        method=str(options["method"]), n_samples=int(options["n_samples"] or 0),
        seed=int(options["seed"]), years=float(options["years"]),
        bodies=tuple(options["bodies"]), runtime_s=runtime_s,
        solution_epoch_tdb_jd=solution.epoch_tdb_jd,
        observation_set_hash=solution.observation_set_hash,
        solution_code_version=solution.code_version)


def monitor_one(engine, client, object_id: int, designation: str, solution_id: int,  # noqa: ANN001
                options: dict[str, Any]) -> dict[str, Any] | None:
    """Monitor one stored solution and store the assessment; its summary, or None when the
    object left the catalog meanwhile (merged away). ``client``: the Dask client handed to the
    monitor (None: the monitor computes in this process)."""
    from neodefense.catalog import assessments, solutions
    from neodefense.impacts import monitor

    logger = _logger()
    try:
        solution = _retrying(solutions.load_solution, engine, solution_id)
        batch, _ = _retrying(solutions.observations_with_ids, engine, object_id)
    except LookupError:  # solution or object merged away since the list was made
        logger.warning("%s: solution %d no longer in the catalog, skipped", designation,
                       solution_id)
        return None
    start = time.perf_counter()
    try:
        assessment = monitor.monitor_solution(solution, batch=batch, client=client,
                                              **monitor_arguments(options))
    except Exception as exc:  # noqa: BLE001 - a bug, a killed worker: record it, go on
        assessment = _failed(solution, options, f"monitor: {type(exc).__name__}: {exc}",
                             time.perf_counter() - start)
    alert_config = options.get("alert_config")
    try:
        assessment_id = _retrying(partial(assessments.store_assessment,
                                          alert_config=alert_config),
                                  engine, solution_id, assessment)
    except Exception as exc:  # noqa: BLE001 - refused by the catalog: store that it failed
        logger.error("%s: assessment not stored (%s: %s)", designation, type(exc).__name__, exc)
        assessment = _failed(solution, options, f"store: {type(exc).__name__}: {exc}",
                             assessment.runtime_s)
        assessment_id = _retrying(assessments.store_assessment, engine, solution_id, assessment)
    log = logger.info if assessment.ok else logger.warning
    log("%s: %s (assessment %d of solution %d) IP %.3g, %d VI %s", designation,
        assessment.status, assessment_id, solution_id, assessment.cumulative_ip,
        len(assessment.virtual_impactors), assessment.message)
    return {
        "object_id": object_id, "designation": designation, "solution_id": solution_id,
        "assessment_id": assessment_id, "status": assessment.status,
        "message": assessment.message, "cumulative_ip": assessment.cumulative_ip,
        "palermo_cum": assessment.palermo_cum, "torino_max": assessment.torino_max,
        "n_vi": len(assessment.virtual_impactors), "runtime_s": assessment.runtime_s,
    }


@task(name="monitor-and-store", cache_policy=NO_CACHE)
def monitor_and_store(catalog_url: str, todo: list[tuple[int, str, int]],
                      settings: config.Settings, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Monitor the ``todo`` solutions one after the other (each spread over Dask by the monitor)
    and store every assessment; summaries in ``todo`` order."""
    from neodefense import compute
    from neodefense.catalog import db
    from neodefense.impacts import monitor  # noqa: F401 - a broken install fails here, stores nothing

    engine = db.connect(catalog_url)
    summaries: list[dict[str, Any]] = []
    try:
        with compute.client(settings) as client:
            for object_id, designation, solution_id in todo:
                summary = monitor_one(engine, client, object_id, designation, solution_id,
                                      options)
                if summary is not None:
                    summaries.append(summary)
    finally:
        engine.dispose()
    return summaries


@flow(name="monitor-changed-objects", log_prints=True)
def monitor_changed_objects(catalog_url: str | None = None, method: str | None = None,
                            years: float | None = None, n_samples: int | None = None,
                            bodies: list[str] | None = None, seed: int | None = None,
                            config_path: str | None = None, *,
                            cross_check_samples: int | None = None,
                            entry_altitude_km: float | None = None,
                            scope: str = "changed") -> list[dict[str, Any]]:
    """Monitor every object whose current orbit solution has no impact assessment yet; store
    each assessment as the object's next version. ``scope="all"``: also every object whose
    current assessment is stale (made by another code version or with other settings than
    this run's; see :func:`~neodefense.catalog.assessments.stale_solutions`). Parameters left
    None come from the ``[monitoring]`` settings (``n_samples`` 0: the method's default;
    ``cross_check_samples`` 0: no Monte Carlo cross-check). Returns one summary per object
    monitored."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
    settings = config.load(config_path)
    url = catalog_url or settings.catalog_url
    options = monitoring_options(settings, method=method, years=years, n_samples=n_samples,
                                 bodies=bodies, seed=seed, cross_check_samples=cross_check_samples,
                                 entry_altitude_km=entry_altitude_km)
    logger = get_run_logger()
    todo = find_solutions_to_monitor(url, scope, monitor_settings(options))
    if not todo:
        logger.info("no object has a new orbit solution%s: nothing to monitor",
                    " or a stale assessment" if scope == "all" else "")
        return []
    logger.info("%d object(s) to monitor (%s, %g years)", len(todo), options["method"],
                float(options["years"]))
    return monitor_and_store(url, todo, settings, options)


if __name__ == "__main__":
    monitor_changed_objects()
