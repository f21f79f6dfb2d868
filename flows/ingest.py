"""Ingest flow: take new files from the inbox, store raw, parse, validate, write, settle.

Runs embedded (no Prefect server needed); point ``PREFECT_API_URL`` at a server for production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from neodefense import config, inbox
from neodefense.catalog import db
from neodefense.catalog import ingest as catalog_ingest
from neodefense.catalog.errors import is_transient


def _retry_if_transient(task_, task_run, state) -> bool:  # noqa: ANN001 - Prefect's callback
    return _still_transient(state)


def _still_transient(state) -> bool:  # noqa: ANN001 - a Prefect State
    """The failed state's error is a transient database error (worth another try)."""
    try:
        error = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - unreadable result: not retried
        return False
    return isinstance(error, BaseException) and is_transient(error)


#: retries and delays are set per run from ``[ingest] retries`` / ``retry_delay_seconds``
@task(retries=3, retry_delay_seconds=[1, 2, 4], retry_condition_fn=_retry_if_transient,
      task_run_name="ingest {item.path.name}")
def ingest_file(item: inbox.InboxFile, catalog_url: str, chunk_bytes: int) -> dict[str, Any]:
    engine = db.connect(catalog_url)
    try:
        receipt = catalog_ingest.ingest(engine, item.path, filename=item.path.name,
                                        submitter=item.submitter, chunk_bytes=chunk_bytes)
    finally:
        engine.dispose()
    return receipt.as_json()


@flow(name="ingest-inbox", log_prints=True)
def ingest_inbox(inbox_root: str | None = None, catalog_url: str | None = None,
                 config_path: str | None = None) -> list[dict[str, Any]]:
    """Ingest every file waiting in the inbox and move it to processed/ or quarantine/."""
    settings = config.load(config_path)
    root = Path(inbox_root) if inbox_root else settings.inbox_root
    url = catalog_url or settings.catalog_url
    logger = get_run_logger()
    receipts: list[dict[str, Any]] = []
    retries = int(settings.get("ingest", "retries"))
    delay_s = float(settings.get("ingest", "retry_delay_seconds"))
    ingest_task = ingest_file.with_options(
        retries=retries, retry_delay_seconds=[delay_s * 2**k for k in range(retries)])
    for item in inbox.scan(root):
        state = ingest_task(item, url, int(settings.get("ingest", "chunk_bytes")),
                            return_state=True)
        if state.is_completed():
            receipt = state.result()
            inbox.settle(item, receipt, settings.processed_dir, settings.quarantine_dir)
            logger.info("%s/%s: %d accepted, %d duplicates, %d rejected", item.submitter,
                        item.path.name, receipt["accepted"], receipt["duplicates"],
                        len(receipt["rejected"]))
        else:
            error = str(state.message)
            receipt = {"file": item.path.name, "submission_id": None, "accepted": 0,
                       "duplicates": 0, "rejected": [], "error": error}
            if _still_transient(state):
                # the database is still away after every retry: leave the file in the inbox;
                # the next run takes up the same stored submission (nothing is lost)
                receipt["retry"] = True
                logger.warning("%s/%s: database unavailable (%s); left in the inbox for the "
                               "next run", item.submitter, item.path.name, error)
            else:
                inbox.settle(item, receipt, settings.processed_dir, settings.quarantine_dir,
                             error=error)
                logger.error("%s/%s failed: %s", item.submitter, item.path.name, error)
        receipts.append(receipt)
    return receipts


if __name__ == "__main__":
    ingest_inbox()
