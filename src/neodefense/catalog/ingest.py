"""Ingest a submission: store its bytes, parse, validate, resolve objects, store observations.

:func:`ingest` runs in two transactions:

1. The raw bytes are stored first, content-addressed by SHA-256 and chunked, together with a
   ``submissions`` row in status 'stored'. Nothing a submitter sent is ever lost, whatever happens
   next. The same bytes again add a submission row (``duplicate_of`` = the first one) but no blob.
2. Everything else is one transaction: the file is streamed through the readers
   (:func:`neodefense.observations.io.iter_read`) chunk by chunk, validated, its designations
   resolved to objects, and its observations and rejections inserted; the submission becomes
   'ingested' with its counts and receipt. On any error the transaction rolls back (none of the
   submission's observations remain), the submission is marked 'failed' with the error, and the
   exception propagates.

Every observation is stored once (see :mod:`neodefense.catalog.models` for the key). A record
seen before, in the catalog or earlier in the same file, counts as a duplicate.

Retrying is safe: a submission of the same bytes, file name and submitter that never finished
(status 'stored' or 'failed') is picked up again instead of adding a row, and a retry whose first
attempt did commit returns that attempt's receipt.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, NamedTuple, Protocol

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from neodefense.catalog import models as m
from neodefense.catalog.db import _dialect_insert, is_postgres, write_transaction
from neodefense.observations import io as obs_io
from neodefense.observations.batch import COLUMNS, ObservationBatch, ParseResult, Rejection
from neodefense.observations.validate import validate

log = logging.getLogger(__name__)

Source = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO

#: Raw submissions are stored in pieces of this size.
RAW_CHUNK_BYTES = 1 << 20
#: At most this many rejections are listed in a receipt (all are in the ``rejections`` table).
MAX_RECEIPT_REJECTIONS = 10_000
#: PostgreSQL advisory lock taken by every ingest transaction: ingests queue one after another,
#: which keeps object resolution and the duplicate pre-check exact. (SQLite's BEGIN IMMEDIATE
#: does the same.)
INGEST_LOCK_KEY = 0x6E65_6F64_0002


@dataclasses.dataclass
class Receipt:
    """What happened to one submission; :meth:`as_json` is what the submitter gets back."""

    file: str
    submission_id: int
    sha256: str = ""
    size: int = 0
    accepted: int = 0
    duplicates: int = 0  # already in the catalog, or earlier in the same file
    #: {line, field, reason} of each rejected line, at most MAX_RECEIPT_REJECTIONS of them
    rejected: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    n_rejected: int = 0  # all of them
    format: str = ""
    lines: int = 0
    duplicate_of: int | None = None
    status: str = m.INGESTED
    merged: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    renamed: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "submission_id": self.submission_id,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "n_rejected": self.n_rejected,
            "format": self.format,
            "lines": self.lines,
            "sha256": self.sha256,
            "size": self.size,
            "duplicate_of": self.duplicate_of,
            "status": self.status,
            "merged": self.merged,
            "renamed": self.renamed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def ingest(engine: Engine, source: Source, filename: str, submitter: str = "",
           fmt: str | None = None, *, chunk_bytes: int = obs_io.DEFAULT_CHUNK_BYTES,
           now_mjd: float | None = None, account_id: int | None = None) -> Receipt:
    """Store, parse, validate and catalog one submission; see the module docstring.

    ``source``: the bytes, a path, or a binary stream (read from its current position).
    ``fmt``: 'obs80', 'ades_psv' or 'ades_xml'; detected from the content when None.
    ``chunk_bytes``: how much of the file is parsed and inserted at a time (bounded memory).
    ``now_mjd``: the validation clock (tests); the current time when None.
    ``account_id``: the observatory account that POSTed it (HTTP API), written with the
    submission row itself.
    """
    if fmt is not None and fmt not in obs_io.FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {obs_io.FORMATS}")
    with _seekable(source) as (stream, start):
        sha256, size = _hash(stream, start)
        submission_id, duplicate_of = _store_raw(engine, stream, start, sha256, size,
                                                 filename, submitter, account_id)
        try:
            receipt = _ingest_stored(engine, stream, start, fmt, chunk_bytes, now_mjd,
                                     Receipt(filename, submission_id, sha256, size,
                                             format=fmt or "", duplicate_of=duplicate_of))
        except Exception as exc:
            _mark_failed(engine, submission_id, exc)
            raise
    log.info("ingested %s as submission %d: %d accepted, %d duplicates, %d rejected",
             filename, receipt.submission_id, receipt.accepted, receipt.duplicates,
             receipt.n_rejected)
    return receipt


# -- step 1: raw bytes ----------------------------------------------------------------------------

@contextlib.contextmanager
def _seekable(source: Source) -> Iterator[tuple[BinaryIO, int]]:
    """The source as a seekable binary stream and the offset where the submission starts."""
    if isinstance(source, bytes | bytearray | memoryview):
        yield io.BytesIO(bytes(source)), 0
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            yield f, 0
    elif source.seekable():
        yield source, source.tell()
    else:  # a pipe or socket: spool it (to disk past 64 MiB) so it can be read twice
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            shutil.copyfileobj(source, spool, RAW_CHUNK_BYTES)
            yield spool, 0  # type: ignore[misc]


def _read_chunks(stream: BinaryIO, start: int) -> Iterator[bytes]:
    stream.seek(start)
    while chunk := stream.read(RAW_CHUNK_BYTES):
        yield chunk


def _hash(stream: BinaryIO, start: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in _read_chunks(stream, start):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _store_raw(engine: Engine, stream: BinaryIO, start: int, sha256: str, size: int,
               filename: str, submitter: str, account_id: int | None = None
               ) -> tuple[int, int | None]:
    """Store the blob (unless already there) and the submission row; returns (id, duplicate_of)."""
    blobs, chunks, subs = m.RawBlob.__table__, m.RawChunk.__table__, m.Submission.__table__
    with write_transaction(engine) as conn:
        n_chunks = -(-size // RAW_CHUNK_BYTES)
        new_blob = conn.execute(
            _dialect_insert(conn)(blobs)
            .values(sha256=sha256, size=size, n_chunks=n_chunks, chunk_bytes=RAW_CHUNK_BYTES,
                    created_at=_utcnow())
            .on_conflict_do_nothing(index_elements=["sha256"])
            .returning(blobs.c.sha256)).first() is not None
        if new_blob:
            digest = hashlib.sha256()
            for seq, chunk in enumerate(_read_chunks(stream, start)):
                conn.execute(sa.insert(chunks), {"sha256": sha256, "seq": seq, "data": chunk})
                digest.update(chunk)
            if digest.hexdigest() != sha256:
                raise SourceChanged(f"{filename}: the file changed while it was being stored")
        unfinished = conn.execute(
            sa.select(subs.c.id, subs.c.duplicate_of)
            .where(subs.c.sha256 == sha256, subs.c.filename == filename,
                   subs.c.submitter == submitter, subs.c.status.in_([m.STORED, m.FAILED]))
            .order_by(subs.c.id).limit(1)).first()
        if unfinished is not None:  # a retry of a submission that did not get through
            conn.execute(sa.update(subs).where(subs.c.id == unfinished.id)
                         .values(status=m.STORED, error="",
                                 account_id=sa.func.coalesce(account_id, subs.c.account_id)))
            return unfinished.id, unfinished.duplicate_of
        first = conn.execute(sa.select(sa.func.min(subs.c.id))
                             .where(subs.c.sha256 == sha256)).scalar()
        submission_id = conn.execute(
            sa.insert(subs).values(
                sha256=sha256, filename=filename, submitter=submitter, received_at=_utcnow(),
                size=size, status=m.STORED, duplicate_of=first, account_id=account_id)
            .returning(subs.c.id)).scalar_one()
    return submission_id, first


class SourceChanged(OSError):
    """The submission's bytes changed while it was being ingested (e.g. still being written)."""


class _Verified(io.RawIOBase):
    """Reads through to ``stream`` while hashing, so the parsed bytes are proven to be the stored
    ones; :meth:`hexdigest` hashes whatever the reader left unread."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._digest = hashlib.sha256()
        self.name = getattr(stream, "name", "<stream>")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        self._digest.update(data)
        return len(data)

    def hexdigest(self) -> str:
        while chunk := self._stream.read(RAW_CHUNK_BYTES):
            self._digest.update(chunk)
        return self._digest.hexdigest()


def _mark_failed(engine: Engine, submission_id: int, exc: BaseException) -> None:
    subs = m.Submission.__table__
    try:
        with write_transaction(engine) as conn:
            conn.execute(sa.update(subs)
                         .where(subs.c.id == submission_id, subs.c.status != m.INGESTED)
                         .values(status=m.FAILED, error=f"{type(exc).__name__}: {exc}"[:10_000]))
    except Exception:  # the database may be what failed: the original error matters more
        log.exception("could not mark submission %d as failed", submission_id)


# -- step 2: parse, validate, resolve, insert -----------------------------------------------------

def _ingest_stored(engine: Engine, stream: BinaryIO, start: int, fmt: str | None,
                   chunk_bytes: int, now_mjd: float | None, receipt: Receipt) -> Receipt:
    subs = m.Submission.__table__
    with write_transaction(engine) as conn:
        _take_ingest_lock(conn)
        row = conn.execute(sa.select(subs.c.status, subs.c.receipt)
                           .where(subs.c.id == receipt.submission_id).with_for_update()).one()
        if row.status == m.INGESTED and row.receipt:  # a retry of an attempt that did commit
            return Receipt.from_json(row.receipt)
        stream.seek(start)
        verified = _Verified(stream)
        parts = obs_io.iter_read(verified, file=receipt.file, fmt=fmt, chunk_bytes=chunk_bytes)
        catalog_parts(conn, parts, receipt, now_mjd)
        if verified.hexdigest() != receipt.sha256:
            raise SourceChanged(f"{receipt.file}: the file changed after it was stored; "
                                "its observations were not kept")
        if not receipt.format:  # nothing came out of the reader (an empty file)
            stream.seek(start)
            receipt.format = obs_io.detect_format(stream.read(65536))
        conn.execute(sa.update(subs).where(subs.c.id == receipt.submission_id).values(
            status=m.INGESTED, format=receipt.format, n_lines=receipt.lines,
            n_accepted=receipt.accepted, n_duplicates=receipt.duplicates,
            n_rejected=receipt.n_rejected, receipt=receipt.as_json(), error="",
            ingested_at=_utcnow()))
    return receipt


def _take_ingest_lock(conn: Connection) -> None:
    """Queue behind other ingests (PostgreSQL; SQLite's BEGIN IMMEDIATE already did). Held to
    the end of the transaction; taking it again in the same transaction is free."""
    if is_postgres(conn):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": INGEST_LOCK_KEY})


def catalog_parts(conn: Connection, parts: Iterable[ParseResult], receipt: Receipt,
                  now_mjd: float | None = None) -> None:
    """Validate, resolve and store parsed chunks of submission ``receipt.submission_id`` inside
    the caller's write transaction, adding up the outcome in ``receipt``.

    On PostgreSQL a chunk's observations are copied by a background thread while the next chunk
    is parsed, validated, planned and laid out for its copy (none of which touches the
    database); the connection is used again only once that copy has finished. Any error stops
    the copy in flight before it propagates, and the caller's transaction rolls everything
    back."""
    _take_ingest_lock(conn)
    known = frozenset(conn.execute(sa.select(m.Observatory.code)).scalars())
    resolver = _Resolver(conn, receipt.file)
    with _Pipeline(conn) as pipeline:
        for part in parts:
            receipt.format = receipt.format or part.format
            receipt.lines += part.n_lines
            good, invalid = validate(part.batch, receipt.file, known, now_mjd=now_mjd)
            plan = resolver.plan(good)
            layout = _lay_out(good, plan.inverse) if pipeline.background is not None else None
            pipeline.wait(receipt)  # the previous chunk's copy: the connection is free again
            object_ids, keep, unresolved = resolver.resolve(good, plan)
            if not keep.all():
                good, object_ids = good.take(keep), object_ids[keep]
            rejections = sorted([*part.rejections, *invalid, *unresolved], key=lambda r: r.line)
            _write_rejections(conn, receipt.submission_id, rejections)
            receipt.n_rejected += len(rejections)
            room = MAX_RECEIPT_REJECTIONS - len(receipt.rejected)
            receipt.rejected.extend(r.as_dict() for r in rejections[:max(room, 0)])
            pipeline.start(_write_observations(conn, good, object_ids, receipt.submission_id,
                                               pipeline.background, layout))
        pipeline.wait(receipt)
    if receipt.accepted + receipt.duplicates + receipt.n_rejected == 0:
        # nothing in the file was a record: say so rather than return an empty receipt
        empty = Rejection(receipt.file, 0, "file",
                          "no observation records in the submission (empty file, or only blank "
                          "and header lines)")
        _write_rejections(conn, receipt.submission_id, [empty])
        receipt.n_rejected += 1
        receipt.rejected.append(empty.as_dict())
    receipt.merged += resolver.merged
    receipt.renamed += resolver.renamed


def _write_rejections(conn: Connection, submission_id: int,
                      rejections: list[Rejection]) -> None:
    if rejections:
        conn.execute(sa.insert(m.Rejection.__table__), [
            {"submission_id": submission_id, "line": r.line, "field": r.field,
             "reason": r.reason, "raw": r.raw} for r in rejections])


# -- observations ---------------------------------------------------------------------------------

_MISSING_TEST = {
    "U": lambda a: a == "",
    "f": np.isnan,
    "b": np.logical_not,
    "i": lambda a: a == -1,
}
_PG_TYPES = {"U": "text", "f": "float8", "b": "bool", "i": "int8"}
_FIXED = ("object_id", "submission_id", "k_time", "k_a", "k_b")
_FIXED_PG_TYPES = ("int4", "int4", "int8", "int8", "int8")
#: A cancelled copy stops within this many rows.
_CANCEL_CHECK_ROWS = 8192
#: Columns that come together, for grouping rows by the columns they carry (see :func:`_lay_out`).
_FAMILIES = {**dict.fromkeys(("delay", "rmsDelay", "doppler", "rmsDoppler", "frq", "trx", "rcv",
                              "com"), "radar"),
             **dict.fromkeys(("sys", "ctr", "pos1", "pos2", "pos3"), "position")}
#: At most this many COPYs per chunk: the rarest column patterns share the last one.
_MAX_GROUPS = 8


def _present_columns(batch: ObservationBatch) -> list[str]:
    """Columns with at least one non-missing value (the others are left to column defaults)."""
    return [name for name, kind in COLUMNS.items()
            if not _MISSING_TEST[kind](batch.columns[name]).all()]


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


class _Written(Protocol):
    """A chunk's observations on their way into the catalog."""

    def result(self) -> tuple[int, int]:
        """(accepted, duplicates) once the rows are stored; raises what storing them raised."""
        ...


@dataclasses.dataclass
class _Done:
    accepted: int
    duplicates: int

    def result(self) -> tuple[int, int]:
        return self.accepted, self.duplicates


class _CopyCancelled(Exception):
    """Stops a COPY in flight because the ingest failed elsewhere."""


class _Background:
    """The thread that runs one ingest's COPYs (PostgreSQL), one chunk at a time."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neodefense-copy")

    def submit(self, fn: Any, *args: Any) -> Future:
        """Run ``fn(*args)`` in the thread; returns once it has started (rather than leave the
        thread waiting for the GIL, up to 5 ms, while the server waits for the COPY)."""
        started = threading.Event()

        def run() -> Any:
            started.set()
            return fn(*args)

        future = self._executor.submit(run)
        started.wait()
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class _Pipeline:
    """At most one chunk's observations in flight while the next chunk is prepared. Leaving the
    block with an error cancels the copy in flight and waits for it, so the connection is idle
    (and the transaction can roll back) by the time the error propagates."""

    def __init__(self, conn: Connection):
        self.background = _Background() if is_postgres(conn) else None
        self.pending: _Written | None = None
        self._finished: _Written | None = None

    def wait(self, receipt: Receipt) -> None:
        """Wait for the chunk in flight, if any, and add its counts to ``receipt``."""
        # Freeing a chunk's millions of Python values takes ~10 ms: not between two copies,
        # while the server waits, but here, with the next copy on its way.
        self._finished = None
        pending, self.pending = self.pending, None
        if pending is not None:
            accepted, duplicates = pending.result()
            receipt.accepted += accepted
            receipt.duplicates += duplicates
            self._finished = pending

    def start(self, written: _Written) -> None:
        """``written`` is the chunk in flight now."""
        self.pending = written

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.background is not None:
            if exc is not None:
                self.background.cancelled.set()
            self.background.close()
        if isinstance(self.pending, _ChunkCopy):
            self.pending.close()


def _write_observations(conn: Connection, batch: ObservationBatch, object_ids: np.ndarray,
                        submission_id: int, background: _Background | None = None,
                        layout: _Layout | None = None) -> _Written:
    """Insert the rows not already in the catalog; ``.result()`` gives (accepted, duplicates).
    With ``background`` (PostgreSQL) the rows are copied by its thread, and the connection must
    not be used until ``.result()`` returns. ``layout``: :func:`_lay_out` of ``batch``, if made
    already."""
    n = len(batch)
    if n == 0:
        return _Done(0, 0)
    if is_postgres(conn):
        return _copy_postgres(conn, batch, object_ids, submission_id, background, layout)
    accepted = _insert_sqlite(conn, batch, object_ids, submission_id)
    return _Done(accepted, n - accepted)


def _insert_sqlite(conn: Connection, batch: ObservationBatch, object_ids: np.ndarray,
                   submission_id: int) -> int:
    """executemany with ON CONFLICT DO NOTHING: the unique key drops duplicates, rowcount counts
    the rest. (SQLite stores NaN as NULL by itself.)"""
    present = _present_columns(batch)
    k_time, k_a, k_b = m.dedup_keys(batch.columns)
    n = len(batch)
    values = [object_ids.tolist(), [submission_id] * n, k_time.tolist(), k_a.tolist(),
              k_b.tolist(), *(batch.columns[c].tolist() for c in present)]
    names = [*_FIXED, *present]
    sql = (f"INSERT INTO observations ({_quoted(names)}) VALUES ({', '.join('?' * len(names))})"
           " ON CONFLICT DO NOTHING")
    cursor = conn.connection.driver_connection.cursor()
    try:  # the DBAPI cursor straight away: it takes the rows as they are zipped
        cursor.executemany(sql, zip(*values, strict=True))
        return cursor.rowcount
    finally:
        cursor.close()


@dataclasses.dataclass
class _Group:
    """Rows copied together: ``rows`` of the batch, in copy order, with the values (Python
    objects, NaN → None) of their k_time, k_a, k_b and ``names`` columns; the other columns
    take their defaults."""

    rows: np.ndarray
    names: list[str]
    values: list[list[Any]]


@dataclasses.dataclass
class _Layout:
    """A chunk's rows laid out for COPY: everything but the object ids, which the resolver
    gives later. ``keys``: (k_time, k_a, k_b) of :func:`models.dedup_keys`, in row order;
    ``may_repeat``: :func:`_may_repeat` of them."""

    batch: ObservationBatch
    keys: tuple[np.ndarray, np.ndarray, np.ndarray]
    may_repeat: np.ndarray
    groups: list[_Group]


def _lay_out(batch: ObservationBatch, near: np.ndarray) -> _Layout:
    """Group and order ``batch`` for COPY, sparing the server (the bottleneck) ~10% of its work
    and the client a good part of its formatting:

    * Rows are grouped by which columns they carry (a missing value is NULL or the column
      default, so a column missing from every row of a group is left out of its COPY). The
      pattern is over the optional columns, radar and observer-position columns counted as one
      each; the :data:`_MAX_GROUPS` - 1 commonest patterns get a COPY each, the rest share one.
    * Within a group, rows go in order of (``near``, obsTime_mjd), ties in file order.
      ``near`` is the object id, or anything constant per object (the resolver's designation
      combination): consecutive rows then land next to each other in the unique key index.

    Ids follow the copy order, so ``ORDER BY "obsTime_mjd", id`` still lists rows of equal time
    in file order, unless the rows carry different columns or designations (a rare tie)."""
    c = batch.columns
    n = len(batch)
    keys = m.dedup_keys(c)
    if n == 0:
        return _Layout(batch, keys, np.zeros(0, dtype=bool), [])
    given = {name: ~_MISSING_TEST[kind](c[name]) for name, kind in COLUMNS.items()}
    counts = {name: int(g.sum()) for name, g in given.items()}
    optional = [name for name in COLUMNS if 0 < counts[name] < n]
    families: dict[str, list[str]] = {}
    for name in optional:
        families.setdefault(_FAMILIES.get(name, name), []).append(name)
    pattern = np.zeros(n, dtype=np.int64)
    for bit, members in enumerate(list(families.values())[:62]):
        pattern |= np.logical_or.reduce([given[name] for name in members]).astype(np.int64) << bit
    if len(families) <= 16:  # count the patterns directly
        sizes = np.bincount(pattern)
        distinct = np.flatnonzero(sizes)
        inverse = np.searchsorted(distinct, pattern)
        sizes = sizes[distinct]
    else:
        _, inverse, sizes = np.unique(pattern, return_inverse=True, return_counts=True)
    group_of_pattern = np.empty(len(sizes), dtype=np.int64)
    group_of_pattern[np.argsort(-sizes, kind="stable")] = np.minimum(np.arange(len(sizes)),
                                                                     _MAX_GROUPS - 1)
    group = group_of_pattern[inverse.reshape(-1)]
    order = np.lexsort((c["obsTime_mjd"], near, group))
    bounds = np.searchsorted(group[order], np.arange(group.max() + 2))
    groups = []
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        rows = order[start:stop]
        names = [name for name in COLUMNS
                 if counts[name] == n or (counts[name] and given[name][rows].any())]
        groups.append(_Group(rows, names, [*(key[rows].tolist() for key in keys),
                                           *(_python_values(c[name][rows]) for name in names)]))
    return _Layout(batch, keys, _may_repeat(*keys), groups)


def _python_values(column: np.ndarray) -> list[Any]:
    """The values as Python objects for psycopg, NaN as None (NULL)."""
    if column.dtype.kind == "f" and np.isnan(column).any():
        as_objects = column.astype(object)
        as_objects[np.isnan(column)] = None
        return as_objects.tolist()
    return column.tolist()


def _copy_postgres(conn: Connection, batch: ObservationBatch, object_ids: np.ndarray,
                   submission_id: int, background: _Background | None,
                   layout: _Layout | None) -> _ChunkCopy:
    if layout is None or layout.batch is not batch:
        layout = _lay_out(batch, object_ids)
    c = batch.columns
    k_time, k_a, k_b = layout.keys
    keys = [object_ids, k_time, c["stn"], k_a, k_b, c["trx"], c["rcv"]]  # as KEY_COLUMNS
    return _ChunkCopy(conn.connection.driver_connection, layout, object_ids, keys,
                      _first_occurrences(keys, layout.may_repeat), submission_id, background)


class _ChunkCopy:
    """Binary COPY of the rows of one chunk not stored yet. Optimistic: rows repeated within the
    chunk are dropped, the rest copied under a savepoint; only when the unique key reports a row
    already in the catalog are the stored keys looked up (an index probe per row) and the copy
    redone without them (in :meth:`result`). Exact because every ingest holds INGEST_LOCK_KEY."""

    def __init__(self, driver_connection: Any, layout: _Layout, object_ids: np.ndarray,
                 keys: list[np.ndarray], keep: np.ndarray, submission_id: int,
                 background: _Background | None):
        self.layout, self.object_ids, self.keys, self.keep = layout, object_ids, keys, keep
        self.submission_id = submission_id
        self.cursor = driver_connection.cursor()
        self.cursor.execute("SAVEPOINT neodefense_copy")
        args = (self.cursor, *self._kept(), submission_id)
        if background is not None:
            self._copied: Future = background.submit(_copy_rows, *args, background.cancelled)
        else:
            self._copied = Future()
            try:
                self._copied.set_result(_copy_rows(*args))
            except Exception as exc:  # handled in result(), as from the thread
                self._copied.set_exception(exc)

    def _kept(self) -> tuple[_Layout, np.ndarray]:
        """The layout and object ids of the rows to copy (laid out again if some are dropped)."""
        if self.keep.all():
            return self.layout, self.object_ids
        object_ids = self.object_ids[self.keep]
        return _lay_out(self.layout.batch.take(self.keep), object_ids), object_ids

    def result(self) -> tuple[int, int]:
        import psycopg

        try:
            try:
                self._copied.result()
            except psycopg.errors.UniqueViolation:
                self.cursor.execute("ROLLBACK TO SAVEPOINT neodefense_copy")
                self.keep &= ~_stored(self.cursor, self.keys, self.keep)
                _copy_rows(self.cursor, *self._kept(), self.submission_id)
            self.cursor.execute("RELEASE SAVEPOINT neodefense_copy")
        finally:
            self.close()
        accepted = int(self.keep.sum())
        return accepted, len(self.keep) - accepted

    def close(self) -> None:
        self.cursor.close()


def _factorize(*columns: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
    """Integer codes of the rows' value tuples (first seen = 0) and the distinct tuples.

    Each column is coded on its own (a dict of its distinct values, in C), the codes are
    combined into one integer per row, and the combinations are numbered in order of first
    appearance."""
    n = len(columns[0])
    combined = np.zeros(n, dtype=np.int64)
    span = 1  # combined < span
    for column in columns:
        values = column.tolist()
        number = {value: i for i, value in enumerate(dict.fromkeys(values))}
        if len(number) == 1:
            continue
        if span * len(number) >= 2**62:  # renumber before the product could overflow
            _, combined = np.unique(combined, return_inverse=True)
            span = int(combined.max()) + 1
        combined = combined * len(number) + np.fromiter(map(number.__getitem__, values),
                                                        dtype=np.int64, count=n)
        span *= len(number)
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    rows = first[order].tolist()
    distinct = list(zip(*(column[rows].tolist() for column in columns), strict=True))
    return rank[inverse.reshape(-1)], distinct


def _mix64(columns: list[np.ndarray]) -> np.ndarray:
    """A 64-bit mix of int64 columns, row by row (equal rows give equal mixes; different rows
    give different mixes but for chance collisions, ~n²/2⁶⁵)."""
    mixed = np.zeros(len(columns[0]), dtype=np.uint64)
    for column in columns:
        mixed ^= column.astype(np.int64, copy=False).view(np.uint64)
        mixed *= np.uint64(0x9E37_79B9_7F4A_7C15)
        mixed ^= mixed >> np.uint64(29)
    return mixed


def _may_repeat(k_time: np.ndarray, k_a: np.ndarray, k_b: np.ndarray) -> np.ndarray:
    """True for the rows whose (k_time, k_a, k_b) mix another row shares: every row whose whole
    key repeats is among them (usually no row is: a chunk rarely repeats itself)."""
    mixed = _mix64([k_time, k_a, k_b])
    shared = np.zeros(len(mixed), dtype=bool)
    in_order = np.sort(mixed)
    if not (in_order[1:] == in_order[:-1]).any():
        return shared
    order = np.argsort(mixed)
    repeated = mixed[order[1:]] == mixed[order[:-1]]
    shared[order[1:][repeated]] = True
    shared[order[:-1][repeated]] = True
    return shared


def _first_occurrences(keys: list[np.ndarray], candidates: np.ndarray | None = None,
                       ) -> np.ndarray:
    """True for each row whose key (ints and strings, as KEY_COLUMNS) no earlier row has.
    Only the ``candidates`` rows (by default :func:`_may_repeat`) are compared, on their whole
    key, in file order; the other rows are first occurrences."""
    if candidates is None:
        candidates = _may_repeat(keys[1], keys[3], keys[4])
    first = np.ones(len(keys[0]), dtype=bool)
    rows = np.flatnonzero(candidates)
    seen: set[tuple] = set()
    for row, key in zip(rows.tolist(), zip(*(k[rows].tolist() for k in keys)), strict=True):
        if key in seen:
            first[row] = False
        else:
            seen.add(key)
    return first


def _stored(cursor: Any, keys: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """True for the ``rows`` whose key is already in the catalog. The LATERAL ... LIMIT 1 keeps
    the planner on one unique-index probe per row, whatever its (often stale) statistics say."""
    index = np.flatnonzero(rows)
    cursor.execute(
        "SELECT r.i FROM unnest(%s::int4[], %s::int8[], %s::text[], %s::int8[], %s::int8[], "
        "%s::text[], %s::text[]) WITH ORDINALITY AS r(oid, t, stn, a, b, trx, rcv, i) "
        "CROSS JOIN LATERAL (SELECT 1 FROM observations o WHERE o.object_id = r.oid "
        "AND o.k_time = r.t AND o.stn = r.stn AND o.k_a = r.a AND o.k_b = r.b "
        "AND o.trx = r.trx AND o.rcv = r.rcv LIMIT 1) AS hit",
        [k[index].tolist() for k in keys])
    stored = np.zeros(len(rows), dtype=bool)
    stored[index[np.array([i for (i,) in cursor.fetchall()], dtype=np.int64) - 1]] = True
    return stored


def _copy_rows(cursor: Any, layout: _Layout, object_ids: np.ndarray, submission_id: int,
               cancelled: threading.Event | None = None) -> None:
    """COPY every row of ``layout`` (binary format, one COPY per group), with its object id and
    key columns; stops (and the server discards the COPY) as soon as ``cancelled`` is set."""
    for group in layout.groups:
        fixed = [object_ids[group.rows].tolist(), [submission_id] * len(group.rows)]
        with cursor.copy(f"COPY observations ({_quoted([*_FIXED, *group.names])}) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([*_FIXED_PG_TYPES, *(_PG_TYPES[COLUMNS[n]] for n in group.names)])
            rows_left = zip(*fixed, *group.values, strict=True)  # as _FIXED, then names
            for _ in range(0, len(group.rows), _CANCEL_CHECK_ROWS):
                if cancelled is not None and cancelled.is_set():
                    raise _CopyCancelled("the ingest failed; its copy was stopped")
                # the loop runs in C: map calls write_row, the empty deque drops the Nones
                collections.deque(map(copy.write_row,
                                      itertools.islice(rows_left, _CANCEL_CHECK_ROWS)), maxlen=0)


# -- objects and designations ---------------------------------------------------------------------

def canonical_designation(text: str) -> str:
    """The canonical unpacked form of a designation ('K08T03C' → '2008 TC3'); text the
    normalizer does not recognise is kept with its whitespace collapsed."""
    text = " ".join(text.split())
    try:
        from neodefense.observations.designations import normalize
    except ImportError:  # pragma: no cover - the normalizer ships with neodefense.observations
        return text
    try:
        return normalize(text) or text
    except (ValueError, KeyError):
        return text


def trksub_alias(stn: str, trksub: str) -> str:
    """Tracklet ids are chosen by each observer, so their alias carries the station."""
    return f"trkSub:{stn}:{trksub}"


@dataclasses.dataclass
class _Object:
    id: int
    designation: str
    permid: str | None
    provid: str | None
    dirty: bool = False


class _Plan(NamedTuple):
    """A chunk's designation combinations: the combination of each row, and per combination its
    canonical (form, kind) pairs."""

    inverse: np.ndarray
    forms_of: list[list[tuple[str, str]]]


class _Resolver:
    """Maps each row's (permID, provID, trkSub) to an object id, creating, identifying and
    merging objects as designations link up. Works chunk by chunk inside the ingest
    transaction; new objects get temporary negative ids until :meth:`_flush` inserts them."""

    def __init__(self, conn: Connection, file: str):
        self.conn = conn
        self.file = file
        self.merged: list[dict[str, Any]] = []
        self.renamed: list[dict[str, Any]] = []

    def plan(self, batch: ObservationBatch) -> _Plan:
        """The chunk's distinct designation combinations and their canonical forms: the part of
        :meth:`resolve` that needs no database (so it can overlap the previous chunk's copy)."""
        c = batch.columns
        if len(batch) == 0:
            return _Plan(np.zeros(0, np.int64), [])
        trk_stn = np.where(c["trkSub"] != "", c["stn"], "")
        inverse, combos = _factorize(c["permID"], c["provID"], c["trkSub"], trk_stn)
        forms_of = []
        for perm, prov, trk, stn in combos:
            forms_of.append([
                (form, kind) for form, kind in (
                    (canonical_designation(perm) if perm else "", "permID"),
                    (canonical_designation(prov) if prov else "", "provID"),
                    (trksub_alias(stn, trk) if trk else "", "trkSub"))
                if form])
        return _Plan(inverse, forms_of)

    def resolve(self, batch: ObservationBatch, plan: _Plan | None = None,
                ) -> tuple[np.ndarray, np.ndarray, list[Rejection]]:
        """(object id per row, rows kept, rejections for rows whose designations conflict);
        ``plan`` is :meth:`plan` of the same batch (made here when None)."""
        n = len(batch)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, bool), []
        c = batch.columns
        inverse, forms_of = plan or self.plan(batch)
        self._start_chunk({form for forms in forms_of for form, _ in forms})
        combo_ids = np.zeros(len(forms_of), np.int64)
        combo_reason: dict[int, tuple[str, str]] = {}
        for i, forms in enumerate(forms_of):
            result = self._resolve_one(forms)
            if isinstance(result, tuple):
                combo_reason[i] = result
            else:
                combo_ids[i] = result
        final = self._flush()
        combo_ids = np.array([final(int(i)) if i else 0 for i in combo_ids], dtype=np.int64)
        object_ids = combo_ids[inverse]
        keep = np.ones(n, dtype=bool)
        rejections: list[Rejection] = []
        for i, (field, reason) in combo_reason.items():
            for row in np.flatnonzero(inverse == i):
                keep[row] = False
                rejections.append(Rejection(self.file, int(c["line"][row]), field, reason,
                                            c["raw"][row]))
        return object_ids, keep, rejections

    # The chunk's state: alias -> object id, objects by id, redirects of merged ids.
    def _start_chunk(self, forms: set[str]) -> None:
        self.alias: dict[str, int] = {}
        self.objects: dict[int, _Object] = {}
        self.redirect: dict[int, int] = {}
        self.new_aliases: dict[str, tuple[str, int]] = {}
        self.db_merges: list[tuple[int, int]] = []
        self.next_pending = -1
        d, o = m.Designation.__table__, m.Object.__table__
        wanted = sorted(forms)
        for k in range(0, len(wanted), 500):
            for alias, object_id in self.conn.execute(
                    sa.select(d.c.alias, d.c.object_id).where(d.c.alias.in_(wanted[k:k + 500]))):
                self.alias[alias] = object_id
        ids = sorted(set(self.alias.values()))
        for k in range(0, len(ids), 500):
            for row in self.conn.execute(sa.select(o.c.id, o.c.designation, o.c.permid,
                                                   o.c.provid).where(o.c.id.in_(ids[k:k + 500]))):
                self.objects[row.id] = _Object(row.id, row.designation, row.permid, row.provid)

    def _find(self, object_id: int) -> int:
        while object_id in self.redirect:
            object_id = self.redirect[object_id]
        return object_id

    def _resolve_one(self, forms: list[tuple[str, str]]) -> int | tuple[str, str]:
        """The object for one designation combination, or (field, reason) if they conflict."""
        perm = next((f for f, kind in forms if kind == "permID"), None)
        prov = next((f for f, kind in forms if kind == "provID"), None)
        ids = list(dict.fromkeys(self._find(self.alias[f]) for f, _ in forms if f in self.alias))
        numbered = {self.objects[i].permid: i for i in ids if self.objects[i].permid}
        if perm is not None and any(p != perm for p in numbered):
            other = next(p for p in numbered if p != perm)
            form, kind = next((f, k) for f, k in forms if f in self.alias
                              and self._find(self.alias[f]) == numbered[other])
            return kind, f"{form!r} already designates {other}, not {perm}"
        if len(numbered) > 1:
            return ("provID", "designations of different numbered objects on one record: "
                              + ", ".join(sorted(numbered)))
        if not ids:
            target = self.next_pending
            self.next_pending -= 1
            self.objects[target] = _Object(target, forms[0][0], perm, prov)
        else:
            # Keep a stored object over a new one, a numbered one over a provisional one.
            target = min(ids, key=lambda i: (i < 0, self.objects[i].permid is None, abs(i)))
            for other in ids:
                if other != target:
                    self._merge(other, target)
        obj = self.objects[target]
        if perm is not None and obj.permid is None:
            obj.permid, obj.dirty = perm, True
        if prov is not None and obj.provid is None:
            obj.provid, obj.dirty = prov, True
        self._redesignate(obj)
        for form, kind in forms:
            if form not in self.alias:
                self.alias[form] = target
                self.new_aliases[form] = (kind, target)
        return target

    def _redesignate(self, obj: _Object) -> None:
        """Designate by number if known, else by provisional designation, else as it was."""
        best = obj.permid or obj.provid or obj.designation
        if best != obj.designation:
            if obj.id > 0:
                self.renamed.append({"object_id": obj.id, "from": obj.designation, "to": best})
            obj.designation, obj.dirty = best, True

    def _merge(self, loser: int, survivor: int) -> None:
        lost, kept = self.objects.pop(loser), self.objects[survivor]
        self.redirect[loser] = survivor
        if kept.permid is None and lost.permid is not None:
            kept.permid, kept.dirty = lost.permid, True
        if kept.provid is None and lost.provid is not None:
            kept.provid, kept.dirty = lost.provid, True
        self._redesignate(kept)
        if loser > 0:  # stored rows move over in _flush
            self.db_merges.append((loser, survivor))
            self.merged.append({"object_id": loser, "from": lost.designation,
                                "into_object_id": survivor})

    def _flush(self):
        """Write the chunk's object changes; returns the function mapping ids to final ids."""
        conn = self.conn
        o, d = m.Object.__table__, m.Designation.__table__
        for loser, survivor in self.db_merges:
            entry = next(e for e in self.merged if e["object_id"] == loser)
            entry["duplicates_removed"] = _merge_objects(conn, loser, self._find(survivor))
        for obj in self.objects.values():
            if obj.id > 0 and obj.dirty:
                conn.execute(sa.update(o).where(o.c.id == obj.id).values(
                    designation=obj.designation, permid=obj.permid, provid=obj.provid))
        pending = [obj for obj in self.objects.values() if obj.id < 0]
        real: dict[int, int] = {}
        if pending:
            rows = conn.execute(
                sa.insert(o).returning(o.c.id, o.c.designation, sort_by_parameter_order=True),
                [{"designation": p.designation, "permid": p.permid, "provid": p.provid}
                 for p in pending]).all()
            real = {p.id: row.id for p, row in zip(pending, rows, strict=True)}

        def final(object_id: int) -> int:
            object_id = self._find(object_id)
            return real.get(object_id, object_id)

        if self.new_aliases:
            conn.execute(sa.insert(d), [
                {"alias": alias, "kind": kind, "object_id": final(object_id)}
                for alias, (kind, object_id) in self.new_aliases.items()])
        for entry in self.renamed:
            entry["object_id"] = final(entry["object_id"])
        for entry in self.merged:
            entry["into_object_id"] = final(entry["into_object_id"])
        return final


def _merge_objects(conn: Connection, loser: int, survivor: int) -> int:
    """Move everything of object ``loser`` to ``survivor``; observations the survivor already
    has are deleted (they were the same observation under another designation). Returns how many
    were deleted. An object on the risk list leaves it first, with reason 'reassigned'."""
    from neodefense.catalog.alerts import object_merged

    object_merged(conn, loser, survivor)
    same_key = " AND ".join(f"s.{k} = observations.{k}" for k in m.KEY_COLUMNS[1:])
    removed = conn.execute(sa.text(
        "DELETE FROM observations WHERE object_id = :loser AND EXISTS (SELECT 1 FROM "
        f"observations s WHERE s.object_id = :survivor AND {same_key})"),
        {"loser": loser, "survivor": survivor}).rowcount
    conn.execute(sa.text("UPDATE observations SET object_id = :survivor WHERE object_id = :loser"),
                 {"loser": loser, "survivor": survivor})
    conn.execute(sa.text("UPDATE designations SET object_id = :survivor "
                         "WHERE object_id = :loser"), {"loser": loser, "survivor": survivor})
    conn.execute(sa.text("DELETE FROM objects WHERE id = :loser"), {"loser": loser})
    return removed


def add_name(engine: Engine, designation: str, name: str) -> int:
    """Give an object its name (e.g. 'Apophis'), also as an alias; returns the object id."""
    from neodefense.catalog.queries import resolve

    name = " ".join(name.split())
    with write_transaction(engine) as conn:
        object_id = resolve(conn, designation)
        if object_id is None:
            raise KeyError(f"unknown designation {designation!r}")
        o, d = m.Object.__table__, m.Designation.__table__
        conn.execute(sa.update(o).where(o.c.id == object_id).values(name=name))
        owner = conn.execute(sa.select(d.c.object_id).where(d.c.alias == name)).scalar()
        if owner is None:
            conn.execute(sa.insert(d).values(alias=name, object_id=object_id, kind="name"))
        elif owner != object_id:
            raise ValueError(f"{name!r} already names object {owner}")
    return object_id
