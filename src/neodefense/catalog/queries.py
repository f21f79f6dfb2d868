"""Read the catalog: resolve designations, observations of an object, submissions, raw bytes.

Every function takes an Engine (or, where noted, a Connection or ORM Session already in use).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from neodefense.catalog import models as m
from neodefense.catalog.ingest import canonical_designation
from neodefense.observations.batch import COLUMNS, ObservationBatch

Bind = Engine | Connection | Session


def _run(bind: Bind, fn):
    """Call ``fn(connection)`` on the bind's connection (opening one for an Engine)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return fn(conn)
    if isinstance(bind, Session):
        return fn(bind.connection())
    return fn(bind)


def resolve(bind: Bind, text: str) -> int | None:
    """The object id for any form of a designation or name, or None if the catalog has none.

    Tries the canonical form ('K04M04N', '2004MN4' and '(99942) Apophis' normalize), then the
    text as given, then names case-insensitively. Aliases make old forms work: '2004 MN4' finds
    the object now designated 99942."""
    text = " ".join(text.split())
    if not text or not text.isprintable():  # no stored designation holds a control character
        return None  # (and PostgreSQL refuses NUL in text parameters)
    d, o = m.Designation.__table__, m.Object.__table__

    def run(conn: Connection) -> int | None:
        for candidate in dict.fromkeys((canonical_designation(text), text)):
            found = conn.execute(sa.select(d.c.object_id).where(d.c.alias == candidate)).scalar()
            if found is not None:
                return found
        return conn.execute(sa.select(o.c.id).where(sa.func.lower(o.c.name) == text.lower())
                            .order_by(o.c.id).limit(1)).scalar()

    return _run(bind, run)


class UnknownDesignation(KeyError):
    """No object in the catalog goes by this designation."""


def object_info(bind: Bind, designation: str) -> dict[str, Any]:
    """An object's designations and counts: id, designation, permid, provid, name, aliases,
    observations (by kind)."""
    o, d = m.Object.__table__, m.Designation.__table__
    obs = m.observations_table

    def run(conn: Connection) -> dict[str, Any]:
        object_id = resolve(conn, designation)
        if object_id is None:
            raise UnknownDesignation(designation)
        row = conn.execute(sa.select(o).where(o.c.id == object_id)).mappings().one()
        aliases = conn.execute(sa.select(d.c.alias, d.c.kind).where(d.c.object_id == object_id)
                               .order_by(d.c.kind, d.c.alias)).all()
        counts = conn.execute(sa.select(obs.c.kind, sa.func.count()).where(
            obs.c.object_id == object_id).group_by(obs.c.kind)).all()
        return {**dict(row), "aliases": [{"alias": a, "kind": k} for a, k in aliases],
                "observations": {kind: n for kind, n in counts}}

    return _run(bind, run)


def observations_for(bind: Bind, designation: str) -> ObservationBatch:
    """All stored observations of the object ``designation`` names (any alias), ordered by
    time, as a batch with every column (NULL numbers come back as NaN)."""
    names = list(COLUMNS)
    obs = m.observations_table

    def run(conn: Connection) -> ObservationBatch:
        object_id = resolve(conn, designation)
        if object_id is None:
            raise UnknownDesignation(designation)
        # object_id leads the unique key index, which finds the rows; sorting them is cheap.
        rows = conn.execute(sa.select(*(obs.c[n] for n in names))
                            .where(obs.c.object_id == object_id)
                            .order_by(obs.c.obsTime_mjd, obs.c.id)).all()
        return _batch_from_rows(names, rows)

    return _run(bind, run)


def _batch_from_rows(names: list[str], rows: list[Any]) -> ObservationBatch:
    if not rows:
        return ObservationBatch.empty()
    columns: dict[str, np.ndarray] = {}
    for name, values in zip(names, zip(*rows, strict=True), strict=True):
        kind = COLUMNS[name]
        if kind == "f":
            columns[name] = np.array(values, dtype=np.float64)  # None -> NaN
        elif kind == "U":
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            columns[name] = arr
        elif kind == "b":
            columns[name] = np.array(values, dtype=bool)
        else:
            columns[name] = np.array(values, dtype=np.int64)
    return ObservationBatch(columns)


def summary(bind: Bind) -> dict[str, Any]:
    """Counts: objects, observations by kind, submissions by status, rejections, raw bytes."""
    obs, subs = m.observations_table, m.Submission.__table__

    def run(conn: Connection) -> dict[str, Any]:
        count = sa.func.count()
        return {
            "objects": conn.execute(sa.select(count).select_from(m.Object.__table__)).scalar(),
            "observations": dict(conn.execute(
                sa.select(obs.c.kind, count).group_by(obs.c.kind).order_by(obs.c.kind)).all()),
            "submissions": dict(conn.execute(
                sa.select(subs.c.status, count).group_by(subs.c.status)
                .order_by(subs.c.status)).all()),
            "rejections": conn.execute(
                sa.select(count).select_from(m.Rejection.__table__)).scalar(),
            "raw_blobs": conn.execute(
                sa.select(count).select_from(m.RawBlob.__table__)).scalar(),
            "raw_bytes": int(conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(m.RawBlob.__table__.c.size), 0))).scalar()),
        }

    return _run(bind, run)


def submission(bind: Bind, submission_id: int) -> dict[str, Any] | None:
    """A submission row as a dict (status, counts, receipt, error, ...), or None."""
    subs = m.Submission.__table__

    def run(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(sa.select(subs).where(subs.c.id == submission_id)).mappings().first()
        return None if row is None else _utc(dict(row))

    return _run(bind, run)


def submissions(bind: Bind, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest submissions first (optionally only those with ``status``)."""
    subs = m.Submission.__table__
    query = sa.select(*(c for c in subs.c if c.name != "receipt")).order_by(subs.c.id.desc())
    if status is not None:
        query = query.where(subs.c.status == status)
    return _run(bind, lambda conn: [_utc(dict(r))
                                    for r in conn.execute(query.limit(limit)).mappings()])


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as aware UTC datetimes (SQLite hands them back naive)."""
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            row[key] = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return row


def rejections(bind: Bind, submission_id: int) -> list[dict[str, Any]]:
    """Every rejection of a submission in line order: line, field, reason, raw."""
    r = m.Rejection.__table__
    query = (sa.select(r.c.line, r.c.field, r.c.reason, r.c.raw)
             .where(r.c.submission_id == submission_id).order_by(r.c.line, r.c.id))
    return _run(bind, lambda conn: [dict(x) for x in conn.execute(query).mappings()])


def raw_bytes(engine: Engine, sha256: str) -> Iterator[bytes]:
    """The stored bytes of a submission, chunk by chunk (constant memory)."""
    blobs, chunks = m.RawBlob.__table__, m.RawChunk.__table__
    with engine.connect() as conn:
        n_chunks = conn.execute(sa.select(blobs.c.n_chunks)
                                .where(blobs.c.sha256 == sha256)).scalar()
    if n_chunks is None:
        raise KeyError(f"no raw blob {sha256}")
    for seq in range(n_chunks):
        with engine.connect() as conn:
            yield conn.execute(sa.select(chunks.c.data).where(
                chunks.c.sha256 == sha256, chunks.c.seq == seq)).scalar_one()


def check_integrity(bind: Bind) -> dict[str, int]:
    """Counts of rows that break relations the schema does not enforce (all zero when sound):
    observations without their object or submission, objects without their designation alias."""
    obs, o, s, d = (m.observations_table, m.Object.__table__, m.Submission.__table__,
                    m.Designation.__table__)

    def orphans(conn: Connection, column: sa.Column, parent: sa.Column) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(column.table).where(
            ~sa.exists().where(parent == column))).scalar()

    def run(conn: Connection) -> dict[str, int]:
        return {
            "observations_without_object": orphans(conn, obs.c.object_id, o.c.id),
            "observations_without_submission": orphans(conn, obs.c.submission_id, s.c.id),
            "objects_without_alias": conn.execute(sa.select(sa.func.count()).select_from(o).where(
                ~sa.exists().where(d.c.alias == o.c.designation, d.c.object_id == o.c.id))
            ).scalar(),
        }

    return _run(bind, run)
