"""Prefect deployments of the pipeline, served by this process: ``python -m flows.deploy``.

* ``pipeline-hourly``: the pipeline every hour (``scope="changed"``: new observations, orbits).
* ``pipeline-nightly``: every night at 02:30 UTC with ``scope="all"``: also re-monitors every
  object whose assessment is stale (another code version or other monitoring settings).
* ``pipeline-on-submission``: whenever the API accepts a submission with new observations (the
  Prefect event :data:`SUBMISSION_EVENT`, emitted by :mod:`neodefense.api.submissions`).
* ``deliver-alerts``: the alert outbox every minute (retries fall due between pipeline runs).

The three pipeline deployments allow one run at a time each (later runs wait their turn). The
same deployments are declared in prefect.yaml for ``prefect deploy`` on a process work pool;
tests/test_pipeline.py checks the two agree. Needs a Prefect server ($PREFECT_API_URL); see
docs/deploy.md.
"""

from __future__ import annotations

if __name__ == "__main__":  # before Prefect is imported: its server or embedded home from config
    from neodefense import config as _config

    _config.apply_prefect_environment(_config.load())

from typing import Any  # noqa: E402

from prefect.client.schemas.objects import ConcurrencyLimitConfig  # noqa: E402
from prefect.deployments.runner import EntrypointType, RunnerDeployment  # noqa: E402
from prefect.events import DeploymentEventTrigger  # noqa: E402
from prefect.schedules import Cron, Interval  # noqa: E402

from flows.alerts import deliver_alerts  # noqa: E402
from flows.pipeline import pipeline  # noqa: E402

#: The event the API emits after accepting a submission; its resource is
#: ``neodefense.submission.<id>``.
SUBMISSION_EVENT = "neodefense.submission.received"
#: Schedules (cron, UTC) and the delivery interval.
HOURLY_CRON = "0 * * * *"
NIGHTLY_CRON = "30 2 * * *"
DELIVERY_INTERVAL_S = 60


def submission_trigger() -> DeploymentEventTrigger:
    """Run the deployment once per :data:`SUBMISSION_EVENT` (scope "changed")."""
    return DeploymentEventTrigger(
        name="neodefense: submission received",
        description="A submission with new observations was accepted by the API.",
        expect={SUBMISSION_EVENT},
        match={"prefect.resource.id": "neodefense.submission.*"},
        parameters={"scope": "changed"})


def build_deployments() -> list[RunnerDeployment]:
    """The four deployments (no server contacted: :func:`prefect.serve` registers them)."""
    common: dict[str, Any] = {"tags": ["neodefense"], "entrypoint_type": EntrypointType.MODULE_PATH}
    one_at_a_time = ConcurrencyLimitConfig(limit=1)
    return [
        pipeline.to_deployment(
            name="pipeline-hourly", schedule=Cron(HOURLY_CRON, timezone="UTC"),
            parameters={"scope": "changed"}, concurrency_limit=one_at_a_time,
            description="Ingest, fit and monitor what changed; deliver the alerts.", **common),
        pipeline.to_deployment(
            name="pipeline-nightly", schedule=Cron(NIGHTLY_CRON, timezone="UTC"), parameters={"scope": "all"},
            concurrency_limit=one_at_a_time,
            description="As hourly, and re-monitor every stale assessment.", **common),
        pipeline.to_deployment(
            name="pipeline-on-submission", triggers=[submission_trigger()],
            parameters={"scope": "changed"}, concurrency_limit=one_at_a_time,
            description=f"Run on each {SUBMISSION_EVENT} event from the API.", **common),
        deliver_alerts.to_deployment(
            name="deliver-alerts", schedule=Interval(DELIVERY_INTERVAL_S, timezone="UTC"),
            description="Deliver the due alerts of the outbox.", **common),
    ]


def main() -> None:
    """Register the deployments with the Prefect server and run their flow runs until stopped."""
    from prefect import serve

    serve(*build_deployments())


if __name__ == "__main__":
    main()
