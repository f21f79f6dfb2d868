"""The whole pipeline as one Prefect flow: ingest → fit → monitor → deliver, each stage a subflow.

1. ``ingest-inbox`` (:mod:`flows.ingest`): the files waiting in the inbox (skipped with
   ``ingest=False``; submissions over HTTP are already in the catalog).
2. ``fit-changed-objects`` (:mod:`flows.orbits`): every object whose observation set changed.
3. ``monitor-changed-objects`` (:mod:`flows.impact_monitoring`): every object whose orbit has no
   assessment yet; with ``scope="all"`` (nightly) also every object whose assessment is stale
   (another code version or other monitoring settings). Alerts are raised as each assessment is
   stored.
4. ``deliver-alerts`` (:mod:`flows.alerts`): the outbox (skipped with ``deliver=False``).

One Dask cluster serves the whole run (:func:`neodefense.compute.shared_cluster`): the configured
``[dask] address`` ($NEODEFENSE_DASK_ADDRESS), or a LocalCluster started when the first stage
needs workers and stopped at the end of the run (a run with nothing to fit or monitor starts
none). The subflows' Dask clients connect to it, and so does the flow's own task runner
(:class:`SharedClusterTaskRunner`, prefect-dask's ``DaskTaskRunner``) for any task the flow
submits. Each stage logs one summary line. No science and no SQL here.

``python -m flows.pipeline`` runs it once with the settings (config/neodefense.toml,
$NEODEFENSE_CONFIG, environment) and prints the result as JSON; flows/deploy.py and prefect.yaml
schedule it.
"""

from __future__ import annotations

if __name__ == "__main__":  # before Prefect is imported: its server or embedded home from config
    from neodefense import config as _config

    _config.apply_prefect_environment(_config.load())

import contextlib  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from prefect import flow, get_run_logger  # noqa: E402
from prefect_dask import DaskTaskRunner  # noqa: E402

from flows.alerts import deliver_alerts  # noqa: E402
from flows.impact_monitoring import SCOPES, monitor_changed_objects  # noqa: E402
from flows.ingest import ingest_inbox  # noqa: E402
from flows.orbits import fit_changed_objects  # noqa: E402
from neodefense import compute, config  # noqa: E402

#: Keys of the ``monitoring`` parameter: the monitoring flow's overridable settings.
MONITORING_KEYS = ("method", "years", "n_samples", "bodies", "seed", "cross_check_samples",
                   "entry_altitude_km")


class SharedClusterTaskRunner(DaskTaskRunner):
    """prefect-dask's task runner on the cluster of the enclosing
    :func:`neodefense.compute.shared_cluster` (the pipeline run's), connected when the first
    task is submitted and disconnected before that cluster stops; outside one it behaves as a
    plain ``DaskTaskRunner``."""

    def submit(self, task, parameters, wait_for=None, dependencies=None):  # noqa: ANN001, ANN201
        shared = compute.current_shared_cluster()
        if self.address is None and shared is not None:
            self.address = shared.address
            shared.on_close(self._disconnect)
        return super().submit(task, parameters, wait_for=wait_for, dependencies=dependencies)

    def _disconnect(self) -> None:
        with contextlib.suppress(Exception):  # closing twice (at the run's end) is harmless
            self.client.close()


def _timed(timings_s: dict[str, float], stage: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    start = time.perf_counter()
    try:
        return fn(**kwargs)
    finally:
        timings_s[stage] = round(time.perf_counter() - start, 3)


def _count(rows: list[dict[str, Any]], key: str) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row.get(key))] = counts.get(str(row.get(key)), 0) + 1
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "none"


def _ingest_line(receipts: list[dict[str, Any]]) -> str:
    return (f"{len(receipts)} file(s): {sum(r['accepted'] for r in receipts)} accepted, "
            f"{sum(r['duplicates'] for r in receipts)} duplicates, "
            f"{sum(len(r['rejected']) for r in receipts)} rejected, "
            f"{sum(1 for r in receipts if r.get('error'))} failed")


def _monitor_line(assessments: list[dict[str, Any]]) -> str:
    with_vi = [a for a in assessments if a.get("n_vi")]
    top = max((a["cumulative_ip"] for a in with_vi), default=0.0)
    return (f"{len(assessments)} object(s): {_count(assessments, 'status')}; "
            f"{len(with_vi)} with virtual impactors (highest IP {top:.3g})")


@flow(name="neodefense-pipeline", log_prints=True, task_runner=SharedClusterTaskRunner())
def pipeline(catalog_url: str | None = None, config_path: str | None = None, *,
             ingest: bool = True, scope: str = "changed", deliver: bool = True,
             deliver_wait_s: float = 0.0,
             monitoring: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ingest the inbox, fit the changed objects, monitor them (``scope="all"``: and the stale
    assessments), deliver the alerts; on one Dask cluster.

    ``catalog_url``/``config_path``: as the stage flows take them (default: the settings').
    ``ingest``/``deliver``: run those stages. ``deliver_wait_s``: also wait that long for
    delivery retries falling due. ``monitoring``: overrides of ``[monitoring]`` for this run
    (keys :data:`MONITORING_KEYS`).

    Returns ``{"receipts": [...], "fits": [...], "assessments": [...], "delivery": {...},
    "timings_s": {...}}``: the stage flows' results (``[]``/``{}`` for a skipped stage) and
    each stage's wall time with ``"total"``.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
    overrides = dict(monitoring or {})
    unknown = sorted(set(overrides) - set(MONITORING_KEYS))
    if unknown:
        raise ValueError(f"unknown monitoring setting(s) {unknown}; known: {list(MONITORING_KEYS)}")
    settings = config.load(config_path)
    url = catalog_url or settings.catalog_url
    logger = get_run_logger()
    started = time.perf_counter()
    timings_s: dict[str, float] = {}
    result: dict[str, Any] = {"receipts": [], "fits": [], "assessments": [], "delivery": {},
                              "timings_s": timings_s}
    with compute.shared_cluster(settings) as cluster:
        if ingest:
            result["receipts"] = _timed(timings_s, "ingest", ingest_inbox, catalog_url=url,
                                        config_path=config_path)
            logger.info("ingest: %s (%.1f s)", _ingest_line(result["receipts"]),
                        timings_s["ingest"])
        result["fits"] = _timed(timings_s, "fit", fit_changed_objects, catalog_url=url,
                                config_path=config_path)
        logger.info("fit: %d object(s): %s (%.1f s)", len(result["fits"]),
                    _count(result["fits"], "status"), timings_s["fit"])
        result["assessments"] = _timed(timings_s, "monitor", monitor_changed_objects,
                                       catalog_url=url, config_path=config_path, scope=scope,
                                       **overrides)
        logger.info("monitor (%s): %s (%.1f s)", scope, _monitor_line(result["assessments"]),
                    timings_s["monitor"])
        if deliver:
            result["delivery"] = _timed(timings_s, "deliver", deliver_alerts, catalog_url=url,
                                        config_path=config_path, wait_s=deliver_wait_s)
            d = result["delivery"]
            logger.info("deliver: sent %d (delivered %d, failed %d), %d channel(s) paused "
                        "(%.1f s)", d["sent"], d["delivered"], d["failed"], d["paused"],
                        timings_s["deliver"])
        dask_note = cluster.address if cluster.started else "none needed"
    timings_s["total"] = round(time.perf_counter() - started, 3)
    logger.info("pipeline (%s): %d file(s), %d fit(s), %d assessment(s), %d alert(s) sent in "
                "%.1f s (Dask cluster: %s)", scope, len(result["receipts"]), len(result["fits"]),
                len(result["assessments"]), result["delivery"].get("sent", 0), timings_s["total"],
                dask_note)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(pipeline(), indent=2, default=str))
