"""Alert delivery flow: deliver every alert the outbox holds that is due, record every attempt.

Alerts are raised in the transaction that stores an impact assessment
(:func:`neodefense.catalog.alerts.raise_alerts`); this flow only delivers. One coarse Prefect
task runs :func:`neodefense.alerts.deliver.deliver_due`: claim due deliveries, send them
concurrently (webhooks with HMAC signatures, e-mail through SMTP), record the outcomes; retries
wait with exponential backoff, and an endpoint that keeps failing is paused with a reason.
Running it again (on a schedule, or after the monitoring flow) picks up the retries that fell
due. No SQL and no delivery logic here: both live in the package.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE

from neodefense import config


@task(name="deliver-due-alerts", cache_policy=NO_CACHE)
def deliver_due_alerts(catalog_url: str, settings: config.Settings, wait_s: float,
                       max_rounds: int | None) -> dict[str, int]:
    from neodefense.alerts.deliver import DeliveryOptions, deliver_due
    from neodefense.catalog import db

    engine = db.connect(catalog_url)
    try:
        return deliver_due(engine, DeliveryOptions.from_settings(settings.raw["alerts"]),
                           wait_s=wait_s, max_rounds=max_rounds)
    finally:
        engine.dispose()


@flow(name="deliver-alerts", log_prints=True)
def deliver_alerts(catalog_url: str | None = None, config_path: str | None = None,
                   wait_s: float = 0.0, max_rounds: int | None = None) -> dict[str, Any]:
    """Deliver the due alerts of the outbox. ``wait_s``: also wait for retries falling due
    within that many seconds. Returns the totals of
    :func:`~neodefense.alerts.deliver.deliver_due` and the outbox summary after it."""
    from neodefense.catalog import alerts, db

    settings = config.load(config_path)
    url = catalog_url or settings.catalog_url
    totals = deliver_due_alerts(url, settings, wait_s, max_rounds)
    engine = db.connect(url)
    try:
        summary = alerts.delivery_summary(engine)
    finally:
        engine.dispose()
    get_run_logger().info("sent %d (delivered %d, failed %d), %d channel(s) paused; outbox: %s",
                          totals["sent"], totals["delivered"], totals["failed"],
                          totals["paused"], summary["deliveries"])
    return {**totals, "outbox": summary}


if __name__ == "__main__":
    deliver_alerts()
