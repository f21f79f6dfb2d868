"""Who may use the API: observatory accounts and their station codes, bearer tokens, the audit
log, and what each observatory contributed.

Tokens
------
A token reads ``nd_<id>_<secret>`` (``secret``: :func:`secrets.token_urlsafe` of 32 bytes). Only
the SHA-256 (hex) of the whole token is stored: for a high-entropy random secret a fast hash is
the standard choice (as for GitHub or Stripe keys) — no password-hashing cost is needed because
there is nothing to guess. :func:`authenticate` looks the row up by id and compares hashes with
:func:`hmac.compare_digest`; an unknown id is compared against a dummy hash, so the time taken
does not tell whether a token id exists. The plaintext is returned once, by :func:`create_token`.

Roles: 'observatory' (submit for its own station codes, read its own submissions; tied to an
account), 'scientist' (see everything), 'admin' (manage accounts and tokens; passes every role
check, see :meth:`Principal.has_role`).

Submission progress
-------------------
:func:`submission_progress` tells how far a submission got: 'stored' (bytes kept, not parsed yet)
→ 'ingested' → 'fitted' (every object that got an accepted observation from it has a converged
orbit solution whose residual rows include all of those observations) → 'monitored' (each of those
solutions has an impact assessment that did not fail). A submission that went nowhere is
'failed' (the ingest raised), 'duplicate' (nothing new: the same bytes again, or only
observations the catalog already had) or 'rejected' (every line was rejected).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from neodefense.catalog import models as m
from neodefense.catalog.db import write_transaction
from neodefense.catalog.queries import Bind, _run, _utc

OBSERVATORY, SCIENTIST, ADMIN = "observatory", "scientist", "admin"
ROLES = (OBSERVATORY, SCIENTIST, ADMIN)
#: Token prefix: ``nd_<id>_<secret>``.
TOKEN_PREFIX = "nd_"
#: ``last_used_at`` is rewritten only when older than this (one write a minute per busy token).
LAST_USED_RESOLUTION_S = 60.0
#: Longest account or token name accepted.
MAX_NAME_CHARS = 200
#: Status values of :func:`submission_progress` beyond the stored ones.
FITTED, MONITORED, DUPLICATE, REJECTED = "fitted", "monitored", "duplicate", "rejected"

_DUMMY_HASH = hashlib.sha256(b"neodefense: no such token").hexdigest()
_TOKEN_RE = re.compile(r"nd_([0-9]{1,10})_[A-Za-z0-9_-]{16,128}")
_STATION_RE = re.compile(r"[A-Z0-9]{3,8}")


class AccessError(ValueError):
    """A request the access rules refuse: unknown role or station code, bad name, ..."""


class NotFound(LookupError):
    """No such account or token."""


class Conflict(ValueError):
    """The name is taken (observatory accounts have unique names)."""


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a request comes from: the token and its role, and for observatory tokens the account
    (id and name) and its station codes."""

    token_id: int
    token_name: str
    role: str
    observatory_id: int | None = None
    observatory: str | None = None
    stations: frozenset[str] = frozenset()

    def has_role(self, *roles: str) -> bool:
        """True when the principal's role is one of ``roles``; an admin has every role."""
        return self.role == ADMIN or self.role in roles

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"token {self.token_id} {self.token_name}"

    @property
    def sees_everything(self) -> bool:
        """Scientists and admins see every submission; observatories only their own."""
        return self.role in (SCIENTIST, ADMIN)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive UTC
        return value.replace(tzinfo=dt.UTC)
    return value


def _clean_name(name: str, what: str) -> str:
    name = " ".join(str(name).split())
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise AccessError(f"{what} must be 1 to {MAX_NAME_CHARS} printable characters")
    return name


# -- observatory accounts ------------------------------------------------------------------------

def validate_station(stn: str) -> str:
    """The station code in canonical form, if the shipped MPC observatory table has it; else
    :class:`AccessError`."""
    from neodefense.observatories.codes import known_codes

    code = str(stn).strip().upper()
    if not _STATION_RE.fullmatch(code) or code not in known_codes():
        raise AccessError(f"{str(stn)[:16]!r} is not an MPC observatory code")
    return code


def _account_dict(conn: Connection, row: Any) -> dict[str, Any]:
    st = m.ObservatoryStation.__table__
    stations = conn.execute(sa.select(st.c.stn).where(st.c.account_id == row.id)
                            .order_by(st.c.stn)).scalars().all()
    return {"id": row.id, "name": row.name, "contact": row.contact, "active": bool(row.active),
            "created_at": _aware(row.created_at), "stations": list(stations)}


def _account_row(conn: Connection, account_id: int | str, lock: bool = False) -> Any:
    a = m.ObservatoryAccount.__table__
    key = a.c.name if isinstance(account_id, str) else a.c.id
    query = sa.select(a).where(key == account_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no observatory account {account_id!r}")
    return row


def create_account(engine: Engine, name: str, contact: str = "",
                   stations: Iterable[str] = ()) -> dict[str, Any]:
    """A new observatory account with its station codes (each checked against the MPC table);
    returns it as :func:`account` does. :class:`Conflict` if the name is taken."""
    name = _clean_name(name, "an account name")
    codes = sorted({validate_station(s) for s in stations})
    a, st = m.ObservatoryAccount.__table__, m.ObservatoryStation.__table__
    with write_transaction(engine) as conn:
        if conn.execute(sa.select(a.c.id).where(a.c.name == name)).first() is not None:
            raise Conflict(f"an observatory account named {name!r} exists")
        account_id = conn.execute(sa.insert(a).values(
            name=name, contact=str(contact)[:1000], created_at=_utcnow(), active=True)
            .returning(a.c.id)).scalar_one()
        if codes:
            conn.execute(sa.insert(st), [{"account_id": account_id, "stn": c} for c in codes])
        return _account_dict(conn, _account_row(conn, account_id))


def account(bind: Bind, key: int | str) -> dict[str, Any] | None:
    """One account by id (int) or name (str): id, name, contact, active, created_at, stations;
    None if there is no such account."""
    def run(conn: Connection) -> dict[str, Any] | None:
        try:
            return _account_dict(conn, _account_row(conn, key))
        except NotFound:
            return None

    return _run(bind, run)


def accounts(bind: Bind) -> list[dict[str, Any]]:
    """Every account (active or not), by id."""
    a = m.ObservatoryAccount.__table__

    def run(conn: Connection) -> list[dict[str, Any]]:
        return [_account_dict(conn, row)
                for row in conn.execute(sa.select(a).order_by(a.c.id)).all()]

    return _run(bind, run)


def add_station(engine: Engine, account_id: int, stn: str) -> dict[str, Any]:
    """Let the account submit for station ``stn`` too (no-op if it already may); the account."""
    code = validate_station(stn)
    st = m.ObservatoryStation.__table__
    with write_transaction(engine) as conn:
        _account_row(conn, account_id, lock=True)
        exists = conn.execute(sa.select(st.c.stn).where(st.c.account_id == account_id,
                                                        st.c.stn == code)).first()
        if exists is None:
            conn.execute(sa.insert(st).values(account_id=account_id, stn=code))
        return _account_dict(conn, _account_row(conn, account_id))


def remove_station(engine: Engine, account_id: int, stn: str) -> dict[str, Any]:
    """Stop the account submitting for ``stn``; the account. :class:`NotFound` if it could not."""
    code = str(stn).strip().upper()
    st = m.ObservatoryStation.__table__
    with write_transaction(engine) as conn:
        _account_row(conn, account_id, lock=True)
        gone = conn.execute(sa.delete(st).where(st.c.account_id == account_id,
                                                st.c.stn == code)).rowcount
        if not gone:
            raise NotFound(f"account {account_id} has no station {code[:16]!r}")
        return _account_dict(conn, _account_row(conn, account_id))


def deactivate_account(engine: Engine, account_id: int) -> dict[str, Any]:
    """Deactivate an account: its tokens stop authenticating at once (the rows stay, and its
    submissions keep pointing at it). Returns the account."""
    a = m.ObservatoryAccount.__table__
    with write_transaction(engine) as conn:
        _account_row(conn, account_id, lock=True)
        conn.execute(sa.update(a).where(a.c.id == account_id).values(active=False))
        return _account_dict(conn, _account_row(conn, account_id))


# -- tokens --------------------------------------------------------------------------------------

def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256 hex of its UTF-8 text."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(engine: Engine, name: str, role: str,
                 account_id: int | None = None) -> tuple[int, str]:
    """A new token: (token id, plaintext ``nd_<id>_<secret>``). The plaintext is not stored and
    cannot be shown again. Observatory tokens need an active ``account_id``; scientist and admin
    tokens have none."""
    name = _clean_name(name, "a token name")
    if role not in ROLES:
        raise AccessError(f"role must be one of {', '.join(ROLES)}, not {str(role)[:32]!r}")
    if (role == OBSERVATORY) != (account_id is not None):
        raise AccessError("observatory tokens need an account; scientist and admin tokens "
                          "must not have one")
    t = m.ApiToken.__table__
    with write_transaction(engine) as conn:
        if account_id is not None and not _account_row(conn, account_id).active:
            raise AccessError(f"observatory account {account_id} is deactivated")
        token_id = conn.execute(sa.insert(t).values(
            name=name, role=role, account_id=account_id, token_hash="", created_at=_utcnow())
            .returning(t.c.id)).scalar_one()
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        conn.execute(sa.update(t).where(t.c.id == token_id).values(token_hash=hash_token(token)))
    return int(token_id), token


def bootstrap_admin(engine: Engine, name: str = "admin") -> str:
    """A new admin token (the first one of a fresh catalog, or a replacement); the plaintext."""
    return create_token(engine, name, ADMIN)[1]


def revoke_token(engine: Engine, token_id: int) -> dict[str, Any]:
    """Revoke a token (it stops authenticating at once; revoking again keeps the first time);
    returns it as :func:`tokens` lists it. :class:`NotFound` for an unknown id."""
    t = m.ApiToken.__table__
    with write_transaction(engine) as conn:
        found = conn.execute(sa.update(t).where(t.c.id == token_id, t.c.revoked_at.is_(None))
                             .values(revoked_at=_utcnow())).rowcount
        if not found and conn.execute(sa.select(t.c.id).where(t.c.id == token_id)).first() is None:
            raise NotFound(f"no token {token_id}")
        return _tokens(conn, token_id)[0]


def _tokens(conn: Connection, token_id: int | None = None) -> list[dict[str, Any]]:
    t, a = m.ApiToken.__table__, m.ObservatoryAccount.__table__
    query = (sa.select(t.c.id, t.c.name, t.c.role, t.c.account_id, a.c.name.label("account"),
                       t.c.created_at, t.c.revoked_at, t.c.last_used_at)
             .select_from(t.outerjoin(a, a.c.id == t.c.account_id)).order_by(t.c.id))
    if token_id is not None:
        query = query.where(t.c.id == token_id)
    out = []
    for row in conn.execute(query).mappings():
        item = {k: _aware(v) if isinstance(v, dt.datetime) else v for k, v in row.items()}
        item["active"] = item["revoked_at"] is None
        out.append(item)
    return out


def tokens(bind: Bind) -> list[dict[str, Any]]:
    """Every token without its secret or hash: id, name, role, account_id, account (name),
    created_at, revoked_at, last_used_at, active."""
    return _run(bind, _tokens)


def authenticate(engine: Engine, token: str | None) -> Principal | None:
    """The principal a token stands for, or None if it is malformed, unknown, revoked, or its
    observatory account is deactivated. Constant time in the secret (see the module docstring);
    refreshes ``last_used_at`` at most once per :data:`LAST_USED_RESOLUTION_S`."""
    token = token or ""
    match = _TOKEN_RE.fullmatch(token)
    given = hash_token(token)
    if match is None:
        hmac.compare_digest(_DUMMY_HASH, given)
        return None
    token_id = int(match.group(1))
    t, a, st = m.ApiToken.__table__, m.ObservatoryAccount.__table__, m.ObservatoryStation.__table__
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(t.c.id, t.c.name, t.c.role, t.c.account_id, t.c.token_hash, t.c.revoked_at,
                      t.c.last_used_at, a.c.name.label("account"), a.c.active)
            .select_from(t.outerjoin(a, a.c.id == t.c.account_id))
            .where(t.c.id == token_id)).first()
        matches = hmac.compare_digest(row.token_hash if row is not None else _DUMMY_HASH, given)
        if row is None or not matches or row.revoked_at is not None:
            return None
        if row.role not in ROLES or (row.role == OBSERVATORY and not row.active):
            return None
        stations = frozenset(conn.execute(sa.select(st.c.stn).where(
            st.c.account_id == row.account_id)).scalars()) if row.account_id else frozenset()
    now = _utcnow()
    last = _aware(row.last_used_at)
    if last is None or (now - last).total_seconds() > LAST_USED_RESOLUTION_S:
        _touch(engine, token_id, now)
    return Principal(token_id=row.id, token_name=row.name, role=row.role,
                     observatory_id=row.account_id, observatory=row.account, stations=stations)


def _touch(engine: Engine, token_id: int, now: dt.datetime) -> None:
    """Record the token's use (skipped by whoever comes second within the resolution)."""
    t = m.ApiToken.__table__
    stale = now - dt.timedelta(seconds=LAST_USED_RESOLUTION_S)
    with engine.begin() as conn:  # a plain (deferred) transaction: one short UPDATE
        conn.execute(sa.update(t).where(
            t.c.id == token_id, sa.or_(t.c.last_used_at.is_(None), t.c.last_used_at < stale))
            .values(last_used_at=now))


# -- the audit log -------------------------------------------------------------------------------

def record_audit(engine: Engine, *, method: str, path: str, status_code: int, reason: str = "",
                 remote: str = "", actor: str = "", body: bytes = b"",
                 body_size: int | None = None, body_sha256: str | None = None,
                 max_body_bytes: int = 0, submission_id: int | None = None) -> int:
    """Write one audit row; returns its id. ``body``: the request body (or its first part);
    at most ``max_body_bytes`` of it are kept (0: none). ``body_size`` / ``body_sha256``
    describe the whole body (default: those of ``body``)."""
    body = bytes(body)
    kept = body[:max(int(max_body_bytes), 0)] or None
    values = {
        "at": _utcnow(), "method": str(method)[:16], "path": str(path)[:2000],
        "remote": str(remote)[:200], "actor": str(actor)[:300], "status_code": int(status_code),
        "reason": str(reason)[:4000],
        "body_sha256": body_sha256 if body_sha256 is not None else
        (hashlib.sha256(body).hexdigest() if body else ""),
        "body_size": len(body) if body_size is None else int(body_size),
        "body": kept, "submission_id": submission_id,
    }
    au = m.ApiAudit.__table__
    with write_transaction(engine) as conn:
        return int(conn.execute(sa.insert(au).values(**values).returning(au.c.id)).scalar_one())


def audit_log(bind: Bind, limit: int = 100, *, before_id: int | None = None,
              status_code: int | None = None, min_status: int | None = None,
              actor: str | None = None, path_prefix: str | None = None,
              submission_id: int | None = None, with_body: bool = False) -> list[dict[str, Any]]:
    """Audit rows, newest first (``before_id``: the page after an earlier one), filtered by
    exact ``status_code``, ``min_status`` (e.g. 400: refusals only), ``actor`` (exact),
    ``path_prefix`` and ``submission_id``. The stored body bytes only ``with_body``."""
    au = m.ApiAudit.__table__
    columns = [c for c in au.c if with_body or c.name != "body"]
    query = sa.select(*columns).order_by(au.c.id.desc()).limit(max(1, min(int(limit), 10_000)))
    if before_id is not None:
        query = query.where(au.c.id < before_id)
    if status_code is not None:
        query = query.where(au.c.status_code == status_code)
    if min_status is not None:
        query = query.where(au.c.status_code >= min_status)
    if actor is not None:
        query = query.where(au.c.actor == actor)
    if path_prefix:
        escaped = path_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(au.c.path.like(escaped + "%", escape="\\"))
    if submission_id is not None:
        query = query.where(au.c.submission_id == submission_id)
    return _run(bind, lambda conn: [_utc(dict(r)) for r in conn.execute(query).mappings()])


# -- submissions of an account, and how far they got ----------------------------------------------

def set_submission_account(engine: Engine, submission_id: int, account_id: int) -> None:
    """Record which observatory account POSTed a submission."""
    s = m.Submission.__table__
    with write_transaction(engine) as conn:
        conn.execute(sa.update(s).where(s.c.id == submission_id).values(account_id=account_id))


def unfinished_submission(bind: Bind, sha256: str, filename: str, submitter: str) -> int | None:
    """The newest submission of these bytes, name and submitter that did not finish ingesting
    (status 'stored' or 'failed'), if any: what a failed ingest left behind."""
    s = m.Submission.__table__
    query = (sa.select(s.c.id).where(s.c.sha256 == sha256, s.c.filename == filename,
                                     s.c.submitter == submitter,
                                     s.c.status.in_([m.STORED, m.FAILED]))
             .order_by(s.c.id.desc()).limit(1))
    return _run(bind, lambda conn: conn.execute(query).scalar())


_LIST_COLUMNS = ("id", "filename", "submitter", "account_id", "received_at", "ingested_at",
                 "size", "sha256", "format", "status", "n_lines", "n_accepted", "n_duplicates",
                 "n_rejected", "duplicate_of", "error")


def ingest_outcome(status: str, accepted: int, duplicates: int, rejected: int,
                   duplicate_of: int | None) -> str:
    """The status a submission's own counts tell, before looking at fits: 'stored' or
    'failed' as stored; an ingested one that accepted nothing is 'duplicate' (the same bytes
    again, or only observations already in the catalog) or 'rejected' (every line refused)."""
    if status != m.INGESTED:
        return status
    if accepted == 0 and (duplicates > 0 or duplicate_of is not None):
        return DUPLICATE
    if accepted == 0 and rejected > 0:
        return REJECTED
    return m.INGESTED


def _base_status(row: Any) -> str:
    return ingest_outcome(row.status, row.n_accepted, row.n_duplicates, row.n_rejected,
                          row.duplicate_of)


def _progress(conn: Connection, rows: Sequence[Any]) -> dict[int, tuple[str, list[dict]]]:
    """submission id → (status, objects) for submission rows, in a few grouped queries."""
    obs, r = m.observations_table, m.OrbitResidual.__table__
    s, ia, o = (m.OrbitSolutionRecord.__table__, m.ImpactAssessmentRecord.__table__,
                m.Object.__table__)
    from neodefense.impacts.assessment import FAILED as ASSESSMENT_FAILED
    from neodefense.orbits.solution import CONVERGED

    ids = [row.id for row in rows if _base_status(row) == m.INGESTED and row.n_accepted > 0]
    out = {row.id: (_base_status(row), []) for row in rows}
    if not ids:
        return out
    # how many observations each submission gave each object (as the catalog holds them now)
    wanted: dict[tuple[int, int], int] = {}
    for sid, oid, n in conn.execute(
            sa.select(obs.c.submission_id, obs.c.object_id, sa.func.count())
            .where(obs.c.submission_id.in_(ids)).group_by(obs.c.submission_id, obs.c.object_id)):
        wanted[(sid, oid)] = n
    # how many of them each solution fitted
    covered: dict[tuple[int, int], int] = {}
    for sid, sol, n in conn.execute(
            sa.select(obs.c.submission_id, r.c.solution_id, sa.func.count())
            .select_from(r.join(obs, obs.c.id == r.c.observation_id))
            .where(obs.c.submission_id.in_(ids)).group_by(obs.c.submission_id, r.c.solution_id)):
        covered[(sid, sol)] = n
    solutions = {row.id: row for row in conn.execute(
        sa.select(s.c.id, s.c.object_id, s.c.version, s.c.status)
        .where(s.c.id.in_(sorted({sol for _, sol in covered}))))} if covered else {}
    assessments: dict[int, Any] = {}
    if solutions:
        for row in conn.execute(sa.select(ia.c.id, ia.c.solution_id, ia.c.version, ia.c.status)
                                .where(ia.c.solution_id.in_(sorted(solutions)))
                                .order_by(ia.c.id)):
            assessments[row.solution_id] = row  # the newest one of each solution
    names = dict(conn.execute(sa.select(o.c.id, o.c.designation).where(
        o.c.id.in_(sorted({oid for _, oid in wanted})))).all()) if wanted else {}
    for sid in ids:
        objects = []
        for (wsid, oid), n in sorted(wanted.items()):
            if wsid != sid:
                continue
            full = [solutions[sol] for (csid, sol), k in covered.items()
                    if csid == sid and sol in solutions and solutions[sol].object_id == oid
                    and k == n]
            good = [x for x in full if x.status == CONVERGED]
            best = max(good or full, key=lambda x: x.version, default=None)
            assessment = assessments.get(best.id) if best is not None else None
            objects.append({
                "object_id": oid, "designation": names.get(oid, ""), "observations": n,
                "solution_id": None if best is None else best.id,
                "solution_version": None if best is None else best.version,
                "solution_status": None if best is None else best.status,
                "fitted": bool(good),
                "assessment_id": None if assessment is None else assessment.id,
                "assessment_status": None if assessment is None else assessment.status,
                "monitored": bool(good) and assessment is not None
                and assessment.status != ASSESSMENT_FAILED,
            })
        status = m.INGESTED
        if objects and all(x["fitted"] for x in objects):
            status = MONITORED if all(x["monitored"] for x in objects) else FITTED
        out[sid] = (status, objects)
    return out


def _submission_dict(row: Any, status: str, objects: list[dict]) -> dict[str, Any]:
    item = _utc({c: getattr(row, c) for c in _LIST_COLUMNS})
    item["ingest_status"] = item.pop("status")
    item["status"] = status
    item["objects"] = objects
    item["links"] = {"self": f"/v1/submissions/{row.id}"}
    return item


def submission_progress(bind: Bind, submission_id: int) -> dict[str, Any] | None:
    """How far a submission got (see the module docstring), or None if there is none:
    the submission's columns (``ingest_status``: the stored status), ``status``, ``receipt``
    (what the submitter got back; None before the ingest finished), ``objects`` (object_id,
    designation, observations, solution_id / _version / _status, fitted, assessment_id /
    _status, monitored) and ``links``."""
    s = m.Submission.__table__

    def run(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(sa.select(*(s.c[c] for c in _LIST_COLUMNS), s.c.receipt)
                           .where(s.c.id == submission_id)).first()
        if row is None:
            return None
        status, objects = _progress(conn, [row])[row.id]
        item = _submission_dict(row, status, objects)
        item["receipt"] = row.receipt
        for obj in objects:
            obj["links"] = {"object": f"/v1/objects/{obj['designation']}"}
        return item

    return _run(bind, run)


def list_submissions(bind: Bind, account_id: int | None = None, *, limit: int = 100,
                     before_id: int | None = None) -> list[dict[str, Any]]:
    """Submissions newest first, each with its progress status and objects (without the
    receipt); only those of ``account_id`` unless it is None (then all of them)."""
    s = m.Submission.__table__
    query = (sa.select(*(s.c[c] for c in _LIST_COLUMNS)).order_by(s.c.id.desc())
             .limit(max(1, min(int(limit), 1000))))
    if account_id is not None:
        query = query.where(s.c.account_id == account_id)
    if before_id is not None:
        query = query.where(s.c.id < before_id)

    def run(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(query).all()
        progress = _progress(conn, rows)
        return [_submission_dict(row, *progress[row.id]) for row in rows]

    return _run(bind, run)


# -- contributions -------------------------------------------------------------------------------

def contributions(bind: Bind) -> list[dict[str, Any]]:
    """What each observatory account, and each station code, brought to the catalog.

    One dict per account (``kind`` 'account': account_id, name, active, stations) and then one
    per station code that has observations or belongs to an account (``kind`` 'station': stn,
    observatory name), each with: ``submissions`` (API submissions of the account; for a station,
    submissions holding its observations), ``accepted`` (sum of the receipts' accepted counts;
    accounts only), ``observations`` (rows in the catalog now), ``objects`` (distinct objects
    those observations belong to), ``solutions`` (orbit solutions whose observation set included
    them, via ``orbit_residuals``) and ``assessments`` (impact assessments of those solutions).
    Reads the whole observation table: an admin report, not a per-request query."""
    from neodefense.observatories.codes import observatories

    obs, sub, r = m.observations_table, m.Submission.__table__, m.OrbitResidual.__table__
    ia = m.ImpactAssessmentRecord.__table__
    acct = sub.c.account_id

    def grouped(conn: Connection, key: sa.ColumnElement, join_submissions: bool
                ) -> dict[str, dict[Any, int]]:
        base = obs.join(sub, sub.c.id == obs.c.submission_id) if join_submissions else obs
        where = [acct.is_not(None)] if join_submissions else []
        counts: dict[str, dict[Any, int]] = defaultdict(dict)
        for k, n_obs, n_objects, n_subs in conn.execute(
                sa.select(key, sa.func.count(), sa.func.count(sa.distinct(obs.c.object_id)),
                          sa.func.count(sa.distinct(obs.c.submission_id)))
                .select_from(base).where(*where).group_by(key)):
            counts["observations"][k] = n_obs
            counts["objects"][k] = n_objects
            counts["obs_submissions"][k] = n_subs
        fitted = base.join(r, r.c.observation_id == obs.c.id)
        for k, n in conn.execute(sa.select(key, sa.func.count(sa.distinct(r.c.solution_id)))
                                 .select_from(fitted).where(*where).group_by(key)):
            counts["solutions"][k] = n
        for k, n in conn.execute(sa.select(key, sa.func.count(sa.distinct(ia.c.id)))
                                 .select_from(fitted.join(ia, ia.c.solution_id == r.c.solution_id))
                                 .where(*where).group_by(key)):
            counts["assessments"][k] = n
        return counts

    def run(conn: Connection) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        by_account = grouped(conn, acct, True)
        subs = {k: (n, int(acc or 0)) for k, n, acc in conn.execute(
            sa.select(acct, sa.func.count(), sa.func.sum(sub.c.n_accepted))
            .where(acct.is_not(None)).group_by(acct))}
        registered: set[str] = set()
        for item in accounts(conn):
            k = item["id"]
            registered.update(item["stations"])
            out.append({"kind": "account", "account_id": k, "name": item["name"],
                        "active": item["active"], "stations": item["stations"],
                        "submissions": subs.get(k, (0, 0))[0], "accepted": subs.get(k, (0, 0))[1],
                        **{f: by_account[f].get(k, 0)
                           for f in ("observations", "objects", "solutions", "assessments")}})
        by_station = grouped(conn, obs.c.stn, False)
        names = observatories()
        for stn in sorted(set(by_station["observations"]) | registered):
            out.append({"kind": "station", "stn": stn,
                        "name": names[stn].name if stn in names else "",
                        "submissions": by_station["obs_submissions"].get(stn, 0),
                        **{f: by_station[f].get(stn, 0)
                           for f in ("observations", "objects", "solutions", "assessments")}})
        return out

    return _run(bind, run)
