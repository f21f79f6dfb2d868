"""Deliver what the outbox holds: claim due deliveries, send them, record every attempt.

:func:`deliver_due` is the whole loop, used by the Prefect flow ``flows/alerts.py``, the command
line and the tests. Each round claims up to ``batch_size`` due deliveries
(:func:`neodefense.catalog.alerts.claim_deliveries`), sends them concurrently
(:func:`neodefense.alerts.channels.send`) and records the outcomes
(:func:`neodefense.catalog.alerts.record_outcomes`). Rounds go on while something is due;
deliveries whose retry lies in the future are left for a later run (or waited for, up to
``wait_s``).

Guarantees (with the catalog's outbox): every (alert, channel) pair is sent at least once — a
crash between sending and recording leaves the claim to run out and the delivery is sent again,
with the same ``Idempotency-Key`` so the receiver can drop the repeat — and is recorded as
delivered exactly once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine

from neodefense.catalog import alerts as catalog_alerts

__all__ = ["DeliveryOptions", "deliver_due"]


@dataclasses.dataclass(frozen=True)
class DeliveryOptions:
    """Delivery settings: the ``[alerts]`` section of the configuration."""

    policy: catalog_alerts.DeliveryPolicy = dataclasses.field(
        default_factory=catalog_alerts.DeliveryPolicy)
    webhook_timeout_s: float = 10.0
    concurrency: int = 8
    batch_size: int = 500
    smtp: Any = None  # neodefense.alerts.channels.SmtpSettings; None: its defaults

    @classmethod
    def from_settings(cls, section: Mapping[str, Any]) -> DeliveryOptions:
        from neodefense.alerts.channels import SmtpSettings

        return cls(policy=catalog_alerts.DeliveryPolicy.from_settings(section),
                   webhook_timeout_s=float(section.get("webhook_timeout_s", 10.0)),
                   concurrency=int(section.get("concurrency", 8)),
                   batch_size=int(section.get("batch_size", 500)),
                   smtp=SmtpSettings.from_settings(section.get("smtp", {})))


def deliver_due(engine: Engine, options: DeliveryOptions | None = None, *,
                max_rounds: int | None = None, wait_s: float = 0.0, seed: int | None = None,
                on_round: Callable[[dict[str, int]], None] | None = None) -> dict[str, int]:
    """Deliver every due delivery; returns totals: rounds, sent, delivered, already (sent again,
    recorded before), failed, paused (channels paused). ``wait_s``: keep going while retries
    fall due within this many seconds (tests, and a deliverer that stays up between flow runs).
    ``seed`` makes the backoff jitter reproducible."""
    from neodefense.alerts import channels, messages

    options = options or DeliveryOptions()
    smtp = options.smtp if options.smtp is not None else channels.SmtpSettings()
    rng = random.Random(seed)
    totals = {"rounds": 0, "sent": 0, "delivered": 0, "already": 0, "failed": 0, "paused": 0}
    deadline = time.monotonic() + wait_s
    while max_rounds is None or totals["rounds"] < max_rounds:
        batch = catalog_alerts.claim_deliveries(engine, limit=options.batch_size,
                                                lease_s=options.policy.lease_s)
        if not batch:
            due = catalog_alerts.delivery_summary(engine)["next_due_utc"]
            if due is None or time.monotonic() >= deadline:
                break
            wait = (dt.datetime.fromisoformat(due.replace("Z", "+00:00"))
                    - dt.datetime.now(dt.UTC)).total_seconds()
            time.sleep(min(max(wait, 0.0) + 0.01, max(deadline - time.monotonic(), 0.0), 1.0))
            continue
        outcomes = channels.send(batch, timeout_s=options.webhook_timeout_s,
                                 concurrency=options.concurrency, smtp=smtp,
                                 subject_fn=messages.email_subject, text_fn=messages.email_text)
        counts = catalog_alerts.record_outcomes(engine, outcomes, options.policy, rng=rng)
        totals["rounds"] += 1
        totals["sent"] += len(outcomes)
        for key in ("delivered", "already", "failed", "paused"):
            totals[key] += counts[key]
        if on_round is not None:
            on_round(counts)
    return totals
