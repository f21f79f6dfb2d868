"""Observatory submissions over HTTP: ``POST /v1/submissions``, ``GET /v1/submissions[/{id}]``.

An observatory POSTs the raw file (obs80, ADES PSV or ADES XML) as the request body, with its
bearer token. The body is read as it arrives, capped at ``api.max_submission_bytes`` (413 past
it, the Content-Length checked first), and spooled (to disk past a few MiB). Before anything is
stored the file is parsed with the project's readers (:func:`neodefense.observations.io.iter_read`)
to check two things:

* every record's station code (``stn``) is one of the account's stations, else 403 naming the
  offending lines;
* the file is readable as a whole — an XML DTD/entity (billion laughs, XXE), malformed XML or a
  root element that is not ``<ades>`` refuse the file (400).

A refused request leaves nothing but its api_audit row (with the first ``api.audit_body_bytes`` of
the body). An accepted one goes through :func:`neodefense.catalog.ingest.ingest`, the code the
inbox uses (``submitter`` = the account name), and is answered 201 with the receipt: the keys
of :meth:`Receipt.as_json` plus ``submission_id``, ``status`` and ``links``. The same bytes again
are recorded as a duplicate submission (status 'duplicate'), exactly as the inbox does.

When a Prefect server is configured (``[prefect] api_url``, $PREFECT_API_URL) and a submission
added observations, the Prefect event :data:`SUBMISSION_EVENT` (resource
``neodefense.submission.<id>``) is posted to it after the answer has been sent
(:func:`announce_submission`): the ``pipeline-on-submission`` deployment (flows/deploy.py) runs
on it. A Prefect server that is down or refuses the event is logged; the submission stands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import tempfile
import uuid
from typing import Annotated, Any, BinaryIO, Literal

import httpx
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from neodefense.api.deps import (
    AuditedRoute,
    api_setting,
    get_engine,
    get_settings,
    note_audit,
    require_roles,
)
from neodefense.catalog import access
from neodefense.catalog.access import Principal
from neodefense.catalog.ingest import ingest
from neodefense.observations import io as obs_io

log = logging.getLogger(__name__)

router = APIRouter(route_class=AuditedRoute, tags=["submissions"])

#: Default of ``api.max_submission_bytes``.
DEFAULT_MAX_SUBMISSION_BYTES = 16 << 20
#: Bodies are spooled in memory up to this size, then on disk.
SPOOL_MEMORY_BYTES = 4 << 20
#: At most this many offending lines are named in a 403 answer (all are counted).
MAX_LISTED_LINES = 1000
#: Name given to a submission POSTed without ``filename``.
DEFAULT_FILENAME = "api-submission"
#: Largest id a path accepts (the id columns are 32-bit).
MAX_ID = 2**31 - 1
#: The Prefect event announcing a submission that added observations (flows/deploy.py's
#: ``pipeline-on-submission`` deployment is triggered by it).
SUBMISSION_EVENT = "neodefense.submission.received"
#: Timeout of the POST of that event to the Prefect server (seconds).
EVENT_TIMEOUT_S = 5.0

Format = Literal["obs80", "ades_psv", "ades_xml"]
_BODY_DOC = {"requestBody": {"required": True, "description": "The raw observation file.",
                             "content": {t: {"schema": {"type": "string"}} for t in (
                                 "text/plain", "text/psv", "application/xml", "text/xml",
                                 "application/octet-stream")}}}


class Refusal(Exception):
    """The file may not be stored: ``status_code`` and the JSON ``detail`` to answer with."""

    def __init__(self, status_code: int, detail: dict[str, Any]):
        super().__init__(detail.get("reason", ""))
        self.status_code = status_code
        self.detail = detail


def clean_filename(name: str) -> str:
    """A safe display name: the last path component, printable, at most 200 characters."""
    name = os.path.basename(name.replace("\\", "/")).strip()
    name = "".join(ch for ch in name if ch.isprintable())[:200]
    return name if name not in ("", ".", "..") else DEFAULT_FILENAME


class _Shielded(io.RawIOBase):
    """Reads through to a stream that must stay open: readers may close (or drop, which closes)
    the wrappers they put around it."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.name = getattr(stream, "name", "<body>")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def screen(stream: BinaryIO, filename: str, fmt: str | None,
           stations: frozenset[str]) -> None:
    """Parse the whole file (constant memory) and raise :class:`Refusal` if it is unreadable
    (400) or holds records of stations not in ``stations`` (403, naming the lines).

    Records without a station code are left to the ingest, which rejects them in the receipt.
    Radar records are checked on ``stn`` (the receiving station, as obs80 and ADES put it)."""
    foreign: list[dict[str, Any]] = []
    n_foreign = 0
    allowed = np.array(sorted(stations), dtype=object)
    stream.seek(0)
    try:
        for part in obs_io.iter_read(_Shielded(stream), file=filename, fmt=fmt):
            for rejection in part.rejections:
                if rejection.field == "xml":
                    raise Refusal(400, {"error": "unreadable", "line": rejection.line,
                                        "reason": rejection.reason})
            stn, lines = part.batch.columns["stn"], part.batch.columns["line"]
            bad = np.flatnonzero((stn != "") & ~np.isin(stn, allowed))
            n_foreign += len(bad)
            room = MAX_LISTED_LINES - len(foreign)
            foreign.extend({"line": int(lines[i]), "stn": str(stn[i])} for i in bad[:max(room, 0)])
    except Refusal:
        raise
    except Exception as exc:  # a reader that gives up on the file as a whole
        raise Refusal(400, {"error": "unreadable", "line": None,
                            "reason": f"{type(exc).__name__}: {exc}"}) from exc
    if n_foreign:
        codes = sorted({x["stn"] for x in foreign})
        raise Refusal(403, {
            "error": "foreign_station",
            "reason": f"{n_foreign} record(s) of station(s) {', '.join(codes)} that this account "
                      f"may not submit for (its stations: {', '.join(sorted(stations)) or 'none'});"
                      " nothing was stored",
            "n_lines": n_foreign, "lines": foreign, "stations": sorted(stations)})


def _ingest(engine: Engine, stream: BinaryIO, filename: str, fmt: str | None,
            principal: Principal) -> dict[str, Any]:
    """Screen, then ingest (blocking: runs in the thread pool); the answer's JSON."""
    screen(stream, filename, fmt, principal.stations)
    stream.seek(0)
    receipt = ingest(engine, stream, filename, submitter=principal.observatory or "", fmt=fmt,
                     account_id=principal.observatory_id)
    body = receipt.as_json()
    body["submission_id"] = receipt.submission_id
    body["ingest_status"] = receipt.status
    body["status"] = access.ingest_outcome(receipt.status, receipt.accepted, receipt.duplicates,
                                           receipt.n_rejected, receipt.duplicate_of)
    body["links"] = {"self": f"/v1/submissions/{receipt.submission_id}"}
    return body


def _failed_submission(engine: Engine, sha256: str, filename: str, principal: Principal
                       ) -> int | None:
    """The submission row a failed ingest left (status 'failed'), given to the account."""
    submission_id = access.unfinished_submission(engine, sha256, filename,
                                                 principal.observatory or "")
    if submission_id is not None:
        access.set_submission_account(engine, submission_id, principal.observatory_id)
    return submission_id


@router.post("/v1/submissions", status_code=201, openapi_extra=_BODY_DOC,
             summary="Submit an observation file (observatory token)",
             responses={201: {"description": "Stored; the receipt"},
                        400: {"description": "Unreadable file (e.g. XML with a DTD)"},
                        403: {"description": "Records of stations the account does not own"},
                        413: {"description": "Body larger than api.max_submission_bytes"}})
async def post_submission(
        request: Request,
        principal: Annotated[Principal, Depends(require_roles(access.OBSERVATORY))],
        fmt: Annotated[Format | None, Query(alias="format")] = None,
        filename: Annotated[str, Query(max_length=255)] = "") -> JSONResponse:
    """Store and ingest the raw file in the body; answer with its receipt (accepted, duplicates,
    rejected lines with field and reason). The account must own every record's station."""
    if principal.observatory_id is None:
        raise HTTPException(403, "submissions need an observatory token (tied to an account)")
    limit = int(api_setting(request, "max_submission_bytes", DEFAULT_MAX_SUBMISSION_BYTES))
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "bad Content-Length")
        if int(declared) > limit:
            note_audit(request, body_size=int(declared))
            raise HTTPException(413, f"submission of {declared} bytes is larger than the "
                                     f"limit of {limit} bytes")
    name = clean_filename(filename)
    keep = int(api_setting(request, "audit_body_bytes", 65536))
    digest, size, head = hashlib.sha256(), 0, bytearray()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if len(head) < keep:
                    head += chunk[:keep - len(head)]
                if size > limit:
                    note_audit(request, body=bytes(head), body_size=size, keep_body=True,
                               body_sha256="")
                    raise HTTPException(413, f"submission larger than the limit of {limit} "
                                             "bytes (reading stopped there)")
                digest.update(chunk)
                spool.write(chunk)
        except ClientDisconnect:
            note_audit(request, body=bytes(head), body_size=size, keep_body=True, body_sha256="")
            raise HTTPException(400, "the client went away before the body was complete") from None
        note_audit(request, body=bytes(head), body_size=size, body_sha256=digest.hexdigest())
        if size == 0:
            raise HTTPException(400, "empty submission: send the file as the request body")
        engine = get_engine(request)
        try:
            answer = await run_in_threadpool(_ingest, engine, spool, name, fmt, principal)
        except Refusal as refusal:
            note_audit(request, keep_body=True)
            raise HTTPException(refusal.status_code, refusal.detail) from None
        except Exception as exc:
            log.exception("ingest of %s from %s failed", name, principal.observatory)
            submission_id = await run_in_threadpool(_failed_submission, engine,
                                                    digest.hexdigest(), name, principal)
            note_audit(request, submission_id=submission_id)
            raise HTTPException(500, {"error": "ingest_failed", "submission_id": submission_id,
                                      "reason": f"{type(exc).__name__}: {exc}"}) from None
    note_audit(request, submission_id=answer["submission_id"], reason=answer["status"])
    return JSONResponse(answer, status_code=201, headers={"Location": answer["links"]["self"]},
                        background=_announcement(request, answer, principal))


def submission_event(answer: dict[str, Any], submitter: str) -> dict[str, Any]:
    """The Prefect event (its JSON) announcing the accepted submission ``answer``."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": dt.datetime.now(dt.UTC).isoformat(),
        "event": SUBMISSION_EVENT,
        "resource": {"prefect.resource.id": f"neodefense.submission.{answer['submission_id']}",
                     "prefect.resource.name": str(answer.get("file") or "")},
        "payload": {"submission_id": answer["submission_id"], "submitter": submitter,
                    "accepted": answer["accepted"], "duplicates": answer["duplicates"],
                    "status": answer["status"]},
        "related": [],
    }


def announce_submission(api_url: str, event: dict[str, Any]) -> bool:
    """POST ``event`` to the events API of the Prefect server at ``api_url`` (``.../api``);
    whether it was accepted. Never raises: a failure is logged (the submission is stored
    whatever happens here, and the hourly run picks it up)."""
    try:
        response = httpx.post(f"{api_url.rstrip('/')}/events", json=[event],
                              timeout=EVENT_TIMEOUT_S)
        response.raise_for_status()
    except Exception as exc:  # noqa: BLE001 - the answer has been sent; only log
        log.warning("Prefect event %s for %s not delivered to %s: %s: %s", event["event"],
                    event["resource"]["prefect.resource.id"], api_url, type(exc).__name__, exc)
        return False
    return True


def _announcement(request: Request, answer: dict[str, Any],
                  principal: Principal) -> BackgroundTask | None:
    """The background task posting :data:`SUBMISSION_EVENT` after the answer, when a Prefect
    server is configured and the submission added observations; else None."""
    try:
        api_url = str((get_settings(request).raw.get("prefect") or {}).get("api_url") or "")
        if not api_url or not answer.get("accepted"):
            return None
        return BackgroundTask(announce_submission, api_url,
                              submission_event(answer, principal.observatory or ""))
    except Exception:  # noqa: BLE001 - never fail an accepted submission over its event
        log.exception("no Prefect event for submission %s", answer.get("submission_id"))
        return None


def _visible(principal: Principal, account_id: int | None) -> bool:
    return principal.sees_everything or (
        principal.observatory_id is not None and account_id == principal.observatory_id)


@router.get("/v1/submissions/{submission_id}", summary="A submission's progress and receipt")
def get_submission(
        request: Request, submission_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        principal: Annotated[Principal, Depends(require_roles(access.OBSERVATORY,
                                                              access.SCIENTIST))]
) -> dict[str, Any]:
    """Status (stored → ingested → fitted → monitored, or failed / duplicate / rejected), the
    receipt, the objects it went into (solution and assessment ids) and links. An observatory
    sees only its own submissions (others are 404, as if they did not exist)."""
    progress = access.submission_progress(get_engine(request), submission_id)
    if progress is None or not _visible(principal, progress["account_id"]):
        raise HTTPException(404, f"no submission {submission_id}")
    return jsonable(progress)


@router.get("/v1/submissions", summary="The caller's submissions, newest first")
def list_submissions(
        request: Request,
        principal: Annotated[Principal, Depends(require_roles(access.OBSERVATORY,
                                                              access.SCIENTIST))],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        account_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> dict[str, Any]:
    """An observatory's own submissions; scientists and admins see all (or one account's)."""
    if principal.sees_everything:
        owner = account_id
    else:
        owner = principal.observatory_id if principal.observatory_id is not None else -1
    items = access.list_submissions(get_engine(request), owner, limit=limit, before_id=before_id)
    nxt = f"/v1/submissions?limit={limit}&before_id={items[-1]['id']}" if len(items) == limit \
        else None
    return {"submissions": jsonable(items), "links": {"next": nxt}}


def jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 strings, recursively (everything else is JSON already)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
