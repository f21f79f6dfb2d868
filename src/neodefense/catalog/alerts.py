"""The risk list, alerts, subscribers and the delivery outbox in the catalog.

Conventions
-----------
* **Transactional outbox.** :func:`raise_alerts` runs inside the transaction that stores an
  impact assessment (:func:`neodefense.catalog.assessments.store_assessment`): the rules
  (:func:`neodefense.alerts.rules.evaluate`) compare the object's stored alert state with the new
  assessment; the risk-list row, a removal record, the alert (payload + VOEvent) and one
  ``deliveries`` row per matching subscriber channel are written with it. Either all of it is
  committed with the assessment or none of it.
* **Delivery.** A deliverer claims due deliveries (:func:`claim_deliveries`: a lease until
  ``claimed_until``, so two deliverers never send the same one at once; a crashed deliverer's
  lease runs out and the delivery is claimed again), sends them, and records every attempt
  (:func:`record_outcomes`). A success marks the delivery 'delivered' only if it still is
  'pending' (a conditional update): each (alert, channel) pair is recorded as delivered exactly
  once, however often it was sent. A failure schedules the next attempt with exponential backoff;
  after ``max_attempts`` failures in a row (or an HTTP 410) the channel is paused with a reason
  and its deliveries are held — :func:`resume_channel` releases them.
* **Risk list.** ``risk_list`` holds the objects whose current assessment has virtual impactors;
  leaving it writes a ``risk_list_removals`` row with the reason, the date and the last values.
  :func:`risk_list` ranks by cumulative Palermo and adds the Sentry columns; every row carries its
  provenance (assessment → orbit solution → observation set), :func:`provenance` follows it down
  to the submissions.
* Times are aware UTC datetimes; ``as_of`` (replays) stands in for "now" when the alert is issued.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from neodefense.catalog import models as m
from neodefense.catalog.assessments import _aware
from neodefense.catalog.db import is_postgres, write_transaction
from neodefense.catalog.queries import Bind, _run
from neodefense.catalog.solutions import (
    _designation,
    _jsonable,
    _lock_object,
    _object_id,
    _utcnow,
)

__all__ = [
    "AlertConfig",
    "DeliveryPolicy",
    "add_subscriber",
    "alert",
    "alerts",
    "claim_deliveries",
    "delivery_summary",
    "provenance",
    "raise_alerts",
    "record_outcomes",
    "remove_object",
    "remove_subscriber",
    "removals",
    "resume_channel",
    "risk_list",
    "set_criteria",
    "subscriber_token_hash",
    "subscribers",
    "verify_channel",
]

PENDING, DELIVERED, HELD, CANCELLED = "pending", "delivered", "held", "cancelled"
ACTIVE, PAUSED, REMOVED, UNVERIFIED = "active", "paused", "removed", "unverified"
CHANNEL_KINDS = ("webhook", "email")
FORMATS = ("json", "voevent")
#: columns of the risk list (``neodefense risk-list --csv``), in order
RISK_LIST_COLUMNS = (
    "rank", "designation", "year_range", "first_year", "last_year", "n_vi", "cumulative_ip",
    "palermo_cum", "palermo_max", "torino_max", "H", "diameter_m", "v_inf_km_s",
    "last_obs_utc", "n_obs_used", "arc_days", "updated_utc", "added_utc", "method",
    "n_samples", "assessment_id", "solution_id", "observation_set_hash", "code_version",
)


def _iso(value: dt.datetime | None) -> str | None:
    value = _aware(value)
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- settings --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AlertConfig:
    """How alerts are raised: the rules and the IVORN namespace of the VOEvents."""

    rules: Any = None  # neodefense.alerts.rules.AlertRules; None: its defaults
    ivorn_base: str = "ivo://neodefense/alert"

    @classmethod
    def from_settings(cls, section: Mapping[str, Any]) -> AlertConfig:
        from neodefense.alerts.rules import AlertRules

        return cls(rules=AlertRules.from_settings(section),
                   ivorn_base=str(section.get("ivorn_base", cls.ivorn_base)))

    def resolved_rules(self):  # noqa: ANN201 - AlertRules
        from neodefense.alerts.rules import AlertRules

        return self.rules if self.rules is not None else AlertRules()


@dataclasses.dataclass(frozen=True)
class DeliveryPolicy:
    """Retries and pausing: after a failed attempt number n the next one waits
    ``min(backoff_max_s, backoff_base_s * backoff_factor**(n-1))`` (± jitter); ``max_attempts``
    failures in a row pause the channel."""

    backoff_base_s: float = 30.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 3600.0
    jitter: float = 0.1
    max_attempts: int = 12
    lease_s: float = 120.0

    @classmethod
    def from_settings(cls, section: Mapping[str, Any]) -> DeliveryPolicy:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: type(getattr(cls, k))(v) for k, v in section.items() if k in names})


# -- raising alerts (inside the assessment's transaction) ------------------------------------------

def _load_state(conn: Connection, object_id: int):  # noqa: ANN202
    """(AlertState, last alert row id, whether a state row exists) of the object."""
    from neodefense.alerts.rules import AlertState

    st = m.AlertStateRecord.__table__
    row = conn.execute(sa.select(st.c.state, st.c.last_alert_id)
                       .where(st.c.object_id == object_id)).first()
    if row is None:
        return AlertState(), None, False
    return AlertState.from_json(row.state), row.last_alert_id, True


def _save_state(conn: Connection, object_id: int, state: Any, last_alert_id: int | None,
                existed: bool, now: dt.datetime) -> None:
    st = m.AlertStateRecord.__table__
    values = {"state": _jsonable(state.as_json()), "last_alert_id": last_alert_id,
              "updated_at": now}
    if existed:
        conn.execute(sa.update(st).where(st.c.object_id == object_id).values(**values))
    else:
        conn.execute(sa.insert(st).values(object_id=object_id, **values))


def _aliases(conn: Connection, object_id: int) -> list[str]:
    d = m.Designation.__table__
    return sorted(conn.execute(sa.select(d.c.alias).where(d.c.object_id == object_id)).scalars())


def _provenance_of(conn: Connection, assessment_id: int | None) -> dict[str, Any]:
    if assessment_id is None:
        return {}
    a, s = m.ImpactAssessmentRecord.__table__, m.OrbitSolutionRecord.__table__
    row = conn.execute(
        sa.select(a.c.id, a.c.version, a.c.solution_id, a.c.observation_set_hash,
                  a.c.code_version, s.c.code_version.label("solution_code_version"))
        .join(s, s.c.id == a.c.solution_id).where(a.c.id == assessment_id)).first()
    if row is None:
        return {}
    return {"assessment_id": row.id, "assessment_version": row.version,
            "solution_id": row.solution_id, "observation_set_hash": row.observation_set_hash,
            "code_version": row.code_version,
            "solution_code_version": row.solution_code_version}


def _insert_alert(conn: Connection, object_id: int, events: list[Any], state_before: Any,
                  last_alert_id: int | None, assessment: Mapping[str, Any] | None,
                  assessment_id: int | None, removal: dict[str, Any] | None,
                  config: AlertConfig, issued: dt.datetime, now: dt.datetime) -> tuple[int, str]:
    """Write one alert (payload, VOEvent) and its deliveries; returns its row id and public id."""
    from neodefense.alerts.rules import build_payload, risk_summary
    from neodefense.alerts.voevent import to_voevent

    al = m.AlertRecord.__table__
    prefix = f"NDA-{object_id}-"
    # counted by id prefix, not by object: an object id SQLite reuses never repeats an alert id
    sequence = 1 + conn.execute(sa.select(sa.func.count()).select_from(al)
                                .where(al.c.alert_id.like(prefix + "%"))).scalar_one()
    alert_id = f"{prefix}{sequence}"
    previous = None
    if last_alert_id is not None:
        previous = conn.execute(sa.select(al.c.alert_id, al.c.payload)
                                .where(al.c.id == last_alert_id)).first()
    designation = _designation(conn, object_id)
    base = config.ivorn_base
    payload = build_payload(
        alert_id=alert_id, ivorn=f"{base}#{alert_id}", sequence=sequence,
        supersedes=previous.alert_id if previous else None,
        supersedes_ivorn=f"{base}#{previous.alert_id}" if previous else None,
        issued_utc=_iso(issued), object_id=object_id, designation=designation,
        aliases=_aliases(conn, object_id), events=events,
        risk=risk_summary(assessment) if assessment is not None else None,
        previous=state_before.risk, assessment=assessment, removal=removal,
        provenance=_provenance_of(conn, assessment_id))
    payload = _jsonable(payload)
    row_id = conn.execute(sa.insert(al).values(
        alert_id=alert_id, object_id=object_id, designation=designation,
        assessment_id=assessment_id, sequence=sequence, supersedes_id=last_alert_id,
        issued_at=issued, created_at=now, kinds=",".join(payload.get("kinds") or []),
        payload=payload, voevent=to_voevent(payload)).returning(al.c.id)).scalar_one()
    _queue_deliveries(conn, row_id, payload, now)
    return int(row_id), alert_id


def _queue_deliveries(conn: Connection, alert_row: int, payload: Mapping[str, Any],
                      now: dt.datetime) -> int:
    """One delivery per channel of every active subscriber whose criteria match: 'pending' for an
    active channel, 'held' for a paused one (delivered when it is resumed)."""
    from neodefense.alerts.criteria import Criteria, matches

    sub, ch = m.Subscriber.__table__, m.SubscriberChannel.__table__
    rows = conn.execute(
        sa.select(sub.c.id, sub.c.criteria, ch.c.id.label("channel_id"), ch.c.status)
        .join(ch, ch.c.subscriber_id == sub.c.id)
        .where(sub.c.active, ch.c.status.in_((ACTIVE, PAUSED)))).all()
    cache: dict[int, bool] = {}
    deliveries = []
    for row in rows:
        if row.id not in cache:
            cache[row.id] = matches(Criteria.from_json(row.criteria), payload)
        if cache[row.id]:
            deliveries.append({"alert_id": alert_row, "channel_id": row.channel_id,
                               "subscriber_id": row.id,
                               "status": PENDING if row.status == ACTIVE else HELD,
                               "created_at": now, "next_attempt_at": now})
    if deliveries:
        conn.execute(sa.insert(m.Delivery.__table__), deliveries)
    return len(deliveries)


def _record_removal(conn: Connection, object_id: int, reason: str, note: str,
                    state_before: Any, removing_assessment_id: int | None, now: dt.datetime,
                    alert_row: int) -> None:
    """Take the object's row off the risk list and record why, with its removal alert."""
    r, rem = m.RiskListEntry.__table__, m.RiskListRemoval.__table__
    last = conn.execute(sa.select(r.c.assessment_id).where(r.c.object_id == object_id)).scalar()
    conn.execute(sa.delete(r).where(r.c.object_id == object_id))
    conn.execute(sa.insert(rem).values(
        object_id=object_id, designation=_designation(conn, object_id), removed_at=now,
        reason=reason, note=note, last_assessment_id=last,
        removing_assessment_id=removing_assessment_id,
        last_values=_jsonable(state_before.risk), alert_id=alert_row))


def raise_alerts(conn: Connection, object_id: int, assessment_id: int,
                 assessment: Mapping[str, Any], config: AlertConfig | None = None,
                 as_of: dt.datetime | None = None) -> list[str]:
    """Evaluate the alert rules on a newly stored assessment of ``object_id`` (its ``as_json``
    dict) within the caller's transaction (the object already locked); update the risk list,
    record a removal, write the alert and queue its deliveries. Returns the public ids of the
    alerts raised (zero or one). Assessments whose status is not 'ok' change nothing."""
    from neodefense.alerts.rules import evaluate

    if assessment.get("status") != "ok":
        return []
    config = config or AlertConfig()
    now = _utcnow()
    issued = as_of or now
    state, last_alert_id, existed = _load_state(conn, object_id)
    events, new_state = evaluate(state, assessment, config.resolved_rules())
    leaving = state.on_risk_list and not new_state.on_risk_list  # evaluate said 'removed'
    removal = None
    if leaving:
        removed = next((e for e in events if e.kind == "removed"), None)
        removal = dict(removed.details) if removed else {"reason": "no_vi"}
    raised: list[str] = []
    if events:
        last_alert_id, public_id = _insert_alert(conn, object_id, events, state, last_alert_id,
                                                 assessment, assessment_id, removal, config,
                                                 issued, now)
        raised.append(public_id)
    r = m.RiskListEntry.__table__
    if new_state.on_risk_list:
        updated = conn.execute(sa.update(r).where(r.c.object_id == object_id)
                               .values(assessment_id=assessment_id, updated_at=issued)).rowcount
        if not updated:
            conn.execute(sa.insert(r).values(object_id=object_id, assessment_id=assessment_id,
                                             added_at=issued, updated_at=issued))
    elif leaving:
        _record_removal(conn, object_id, removal.get("reason", "no_vi"), "", state,
                        assessment_id, issued, last_alert_id)
    if events or existed or new_state.on_risk_list:
        _save_state(conn, object_id, new_state, last_alert_id, existed, now)
    return raised


def _remove_in(conn: Connection, object_id: int, reason: str, note: str,
               config: AlertConfig | None, as_of: dt.datetime | None) -> str | None:
    from neodefense.alerts.rules import removal

    config = config or AlertConfig()
    now = _utcnow()
    issued = as_of or now
    state, last_alert_id, existed = _load_state(conn, object_id)
    events, new_state = removal(state, reason, note, designation=_designation(conn, object_id))
    alert_id = None
    if state.on_risk_list:
        details = next((dict(e.details) for e in events if e.kind == "removed"),
                       {"reason": reason, "note": note})
        last_alert_id, alert_id = _insert_alert(conn, object_id, events, state, last_alert_id,
                                                None, None, details, config, issued, now)
        _record_removal(conn, object_id, reason, note, state, None, issued, last_alert_id)
    _save_state(conn, object_id, new_state, last_alert_id, existed, now)
    return alert_id


def remove_object(engine: Engine, designation: str | int, reason: str, note: str = "",
                  config: AlertConfig | None = None, as_of: dt.datetime | None = None) -> str | None:
    """Take an object off the risk list by hand (``reason``: 'artificial', 'reassigned',
    'manual'); records the removal and raises the removal alert, in one transaction. An
    'artificial' or 'reassigned' object is kept off: later assessments raise no alerts for it.
    Returns the alert id (None when the object was not on the list; the exclusion is recorded
    anyway). Raises UnknownDesignation, ValueError for an unknown reason."""
    from neodefense.alerts.rules import REMOVAL_REASONS

    if reason not in REMOVAL_REASONS or reason == "no_vi":
        choices = ", ".join(k for k in REMOVAL_REASONS if k != "no_vi")
        raise ValueError(f"unknown removal reason {reason!r} (one of: {choices})")
    with write_transaction(engine) as conn:
        object_id = _object_id(conn, designation)
        _lock_object(conn, object_id)
        return _remove_in(conn, object_id, reason, note, config, as_of)


def object_merged(conn: Connection, loser: int, survivor: int) -> str | None:
    """Called by the ingest inside its transaction before object ``loser`` is merged into
    ``survivor``: an object on the risk list leaves it with reason 'reassigned' (its observations
    now belong to the survivor, which is refitted and monitored in turn)."""
    st = m.AlertStateRecord.__table__
    found = conn.execute(sa.select(st.c.object_id).where(st.c.object_id == loser)).first()
    if found is None:
        return None
    note = f"observations merged into {_designation(conn, survivor)} (object {survivor})"
    return _remove_in(conn, loser, "reassigned", note, None, None)


# -- reading: risk list, removals, alerts, provenance ----------------------------------------------

def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _observation_spans(conn: Connection, solution_ids: list[int]) -> dict[int, tuple[float, float]]:
    """solution id → (first, last) UTC MJD of the observations it used (of all it was given
    when it used none: a short-arc ranging solution)."""
    res, obs = m.OrbitResidual.__table__, m.observations_table
    spans: dict[int, tuple[float, float]] = {}
    for used_only in (True, False):
        todo = [i for i in solution_ids if i not in spans]
        for start in range(0, len(todo), 1000):
            query = (sa.select(res.c.solution_id, sa.func.min(obs.c.obsTime_mjd),
                               sa.func.max(obs.c.obsTime_mjd))
                     .join(obs, obs.c.id == res.c.observation_id)
                     .where(res.c.solution_id.in_(todo[start:start + 1000]))
                     .group_by(res.c.solution_id))
            if used_only:
                query = query.where(res.c.used)
            for sid, first, last in conn.execute(query):
                if last is not None:
                    spans[sid] = (float(first), float(last))
    return spans


def risk_list(bind: Bind) -> list[dict[str, Any]]:
    """The current risk list, ranked by cumulative Palermo (then cumulative IP): one dict per
    object with the keys of :data:`RISK_LIST_COLUMNS` (``year_range`` '2068-2084'; ``v_inf_km_s``
    of the most probable virtual impactor; last observation, observations used and arc of the
    orbit solution the assessment was computed from) plus ``object_id``."""
    r, a = m.RiskListEntry.__table__, m.ImpactAssessmentRecord.__table__
    s, o = m.OrbitSolutionRecord.__table__, m.Object.__table__
    v = m.VirtualImpactorRecord.__table__

    def run(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(
            sa.select(r.c.object_id, r.c.added_at, o.c.designation, a.c.id.label("assessment_id"),
                      a.c.created_at, a.c.first_year, a.c.last_year, a.c.n_vi,
                      a.c.cumulative_ip, a.c.palermo_cum, a.c.palermo_max, a.c.torino_max,
                      a.c.H, a.c.diameter_m, a.c.method, a.c.n_samples, a.c.solution_id,
                      a.c.observation_set_hash, a.c.code_version, s.c.n_used)
            .join(a, a.c.id == r.c.assessment_id).join(o, o.c.id == r.c.object_id)
            .join(s, s.c.id == a.c.solution_id)).mappings().all()
        solution_ids = [row["solution_id"] for row in rows]
        spans = _observation_spans(conn, solution_ids)
        v_inf: dict[int, float | None] = {}
        for start in range(0, len(rows), 1000):  # the most probable VI's v∞, per assessment
            chunk = [row["assessment_id"] for row in rows[start:start + 1000]]
            for vi in conn.execute(sa.select(v.c.assessment_id, v.c.v_inf_km_s)
                                   .where(v.c.assessment_id.in_(chunk))
                                   .order_by(v.c.assessment_id, v.c.ip.desc(), v.c.id)):
                v_inf.setdefault(vi.assessment_id, vi.v_inf_km_s)
        out = []
        for row in rows:
            times = spans.get(row["solution_id"])
            v_inf_km_s = v_inf.get(row["assessment_id"])
            first, last = row["first_year"], row["last_year"]
            entry = {
                "object_id": row["object_id"], "designation": row["designation"],
                "year_range": "" if first is None else (f"{first}" if first == last
                                                        else f"{first}-{last}"),
                "first_year": first, "last_year": last, "n_vi": row["n_vi"],
                "cumulative_ip": _finite(row["cumulative_ip"]),
                "palermo_cum": _finite(row["palermo_cum"]),
                "palermo_max": _finite(row["palermo_max"]),
                "torino_max": int(row["torino_max"]), "H": _finite(row["H"]),
                "diameter_m": _finite(row["diameter_m"]), "v_inf_km_s": _finite(v_inf_km_s),
                "last_obs_utc": None, "n_obs_used": int(row["n_used"]), "arc_days": None,
                "updated_utc": _iso(row["created_at"]), "added_utc": _iso(row["added_at"]),
                "method": row["method"], "n_samples": int(row["n_samples"]),
                "assessment_id": row["assessment_id"], "solution_id": row["solution_id"],
                "observation_set_hash": row["observation_set_hash"],
                "code_version": row["code_version"],
            }
            if times is not None:
                from neodefense import timescales

                entry["last_obs_utc"] = str(timescales.utc_mjd_to_iso(float(times[1]), 0)[0])
                entry["arc_days"] = float(times[1] - times[0])
            out.append(entry)
        out.sort(key=lambda e: (-(e["palermo_cum"] if e["palermo_cum"] is not None else -np.inf),
                                -(e["cumulative_ip"] or 0.0), e["designation"]))
        for rank, entry in enumerate(out, start=1):
            entry["rank"] = rank
        return out

    return _run(bind, run)


def removals(bind: Bind, since: dt.datetime | None = None,
             designation: str | None = None) -> list[dict[str, Any]]:
    """Removals from the risk list, newest first: designation, removed_utc, reason, reason_text,
    note, last_values, last_assessment_id, removing_assessment_id, alert_id (public id)."""
    from neodefense.alerts.rules import REMOVAL_REASONS

    rem, al = m.RiskListRemoval.__table__, m.AlertRecord.__table__

    def run(conn: Connection) -> list[dict[str, Any]]:
        query = (sa.select(rem, al.c.alert_id.label("public_alert_id"))
                 .outerjoin(al, al.c.id == rem.c.alert_id)
                 .order_by(rem.c.removed_at.desc(), rem.c.id.desc()))
        if since is not None:
            query = query.where(rem.c.removed_at >= since)
        if designation is not None:
            query = query.where(rem.c.object_id == _object_id(conn, designation))
        return [{"id": row["id"], "object_id": row["object_id"],
                 "designation": row["designation"], "removed_utc": _iso(row["removed_at"]),
                 "reason": row["reason"], "reason_text": REMOVAL_REASONS.get(row["reason"], ""),
                 "note": row["note"], "last_values": row["last_values"],
                 "last_assessment_id": row["last_assessment_id"],
                 "removing_assessment_id": row["removing_assessment_id"],
                 "alert_id": row["public_alert_id"]}
                for row in conn.execute(query).mappings()]

    return _run(bind, run)


def _alert_dict(row: Mapping[str, Any], with_voevent: bool = False) -> dict[str, Any]:
    out = {"id": row["id"], "alert_id": row["alert_id"], "object_id": row["object_id"],
           "designation": row["designation"], "sequence": row["sequence"],
           "issued_utc": _iso(row["issued_at"]), "created_utc": _iso(row["created_at"]),
           "kinds": [k for k in (row["kinds"] or "").split(",") if k],
           "payload": row["payload"]}
    if with_voevent:
        out["voevent"] = row["voevent"]
    return out


def alerts(bind: Bind, since: dt.datetime | None = None, designation: str | None = None,
           limit: int | None = None) -> list[dict[str, Any]]:
    """Alerts in the order they were issued (oldest first): id, alert_id, designation,
    sequence, issued_utc, created_utc, kinds and payload. ``since``: issued at or after."""
    al = m.AlertRecord.__table__
    columns = [c for c in al.c if c.name != "voevent"]

    def run(conn: Connection) -> list[dict[str, Any]]:
        query = sa.select(*columns).order_by(al.c.issued_at, al.c.id)
        if since is not None:
            query = query.where(al.c.issued_at >= since)
        if designation is not None:
            query = query.where(al.c.object_id == _object_id(conn, designation))
        if limit is not None:
            query = query.limit(limit)
        return [_alert_dict(row) for row in conn.execute(query).mappings()]

    return _run(bind, run)


def alert(bind: Bind, alert_id: str) -> dict[str, Any]:
    """One alert by its public id, with its VOEvent document and delivery counts by status.
    Raises LookupError."""
    al, dl = m.AlertRecord.__table__, m.Delivery.__table__

    def run(conn: Connection) -> dict[str, Any]:
        row = conn.execute(sa.select(al).where(al.c.alert_id == alert_id)).mappings().first()
        if row is None:
            raise LookupError(f"no alert {alert_id!r}")
        out = _alert_dict(row, with_voevent=True)
        out["deliveries"] = dict(conn.execute(
            sa.select(dl.c.status, sa.func.count()).where(dl.c.alert_id == row["id"])
            .group_by(dl.c.status)).all())
        return out

    return _run(bind, run)


def provenance(bind: Bind, designation: str | int) -> dict[str, Any]:
    """Where the object's current risk assessment comes from: the assessment (id, version,
    settings, code version), the orbit solution (id, version, observation-set hash, code version,
    observations used), and the submissions whose observations went into it (id, sha256, file,
    submitter, received, observations used from it). Raises UnknownDesignation, LookupError when
    the object has no current assessment."""
    from neodefense.catalog.solutions import solution_submissions

    a, s, sb = (m.ImpactAssessmentRecord.__table__, m.OrbitSolutionRecord.__table__,
                m.Submission.__table__)

    def run(conn: Connection) -> dict[str, Any]:
        object_id = _object_id(conn, designation)
        row = conn.execute(sa.select(a).where(a.c.object_id == object_id, a.c.is_current)
                           .order_by(a.c.version.desc()).limit(1)).mappings().first()
        if row is None:
            raise LookupError(f"{designation}: no current impact assessment")
        sol = conn.execute(sa.select(s).where(s.c.id == row["solution_id"])).mappings().one()
        counts = solution_submissions(conn, sol["id"])
        subs = conn.execute(sa.select(sb.c.id, sb.c.sha256, sb.c.filename, sb.c.submitter,
                                      sb.c.received_at, sb.c.format)
                            .where(sb.c.id.in_(list(counts))).order_by(sb.c.id)).mappings().all()
        return {
            "designation": _designation(conn, object_id),
            "assessment": {"id": row["id"], "version": row["version"],
                           "created_utc": _iso(row["created_at"]), "method": row["method"],
                           "n_samples": row["n_samples"], "seed": row["seed"],
                           "years": row["years"], "bodies": row["bodies"],
                           "code_version": row["code_version"],
                           "cumulative_ip": _finite(row["cumulative_ip"])},
            "solution": {"id": sol["id"], "version": sol["version"],
                         "created_utc": _iso(sol["created_at"]),
                         "observation_set_hash": sol["observation_set_hash"],
                         "code_version": sol["code_version"], "settings": sol["settings"],
                         "n_obs": sol["n_obs"], "n_used": sol["n_used"]},
            "submissions": [{"id": sub["id"], "sha256": sub["sha256"],
                             "filename": sub["filename"], "submitter": sub["submitter"],
                             "received_utc": _iso(sub["received_at"]), "format": sub["format"],
                             "n_observations": counts[sub["id"]]} for sub in subs],
        }

    return _run(bind, run)


# -- subscribers -----------------------------------------------------------------------------------

def _channel_rows(channels: Sequence[Mapping[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    from neodefense.alerts.signing import new_secret

    rows = []
    for ch in channels:
        kind = str(ch.get("kind", ""))
        target = str(ch.get("target", "")).strip()
        fmt = str(ch.get("format") or "json")
        if kind not in CHANNEL_KINDS:
            raise ValueError(f"channel kind must be one of {CHANNEL_KINDS}, got {kind!r}")
        if fmt not in FORMATS:
            raise ValueError(f"channel format must be one of {FORMATS}, got {fmt!r}")
        if kind == "webhook" and not target.lower().startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must start with http:// or https://: {target!r}")
        if kind == "email" and ("@" not in target or any(c.isspace() for c in target)):
            raise ValueError(f"not an e-mail address: {target!r}")
        secret = str(ch.get("secret") or (new_secret() if kind == "webhook" else ""))
        status = str(ch.get("status") or ACTIVE)
        if status not in (ACTIVE, UNVERIFIED):
            raise ValueError(f"a new channel is {ACTIVE!r} or {UNVERIFIED!r}, not {status!r}")
        rows.append({"kind": kind, "target": target, "format": fmt, "secret": secret,
                     "status": status, "created_at": now})
    return rows


def add_subscriber(engine: Engine, name: str, criteria: Any,
                   channels: Sequence[Mapping[str, Any]], token_hash: str = "") -> dict[str, Any]:
    """Add a subscriber (``criteria``: a :class:`~neodefense.alerts.criteria.Criteria` or its
    JSON) with its channels (``{"kind": "webhook"|"email", "target": URL or address,
    "format": "json"|"voevent", "secret": optional HMAC key — generated for webhooks when
    absent, "status": "active" (default) or "unverified" (a webhook that has not answered its
    verification challenge yet: it gets no deliveries until :func:`verify_channel`)}``).
    ``token_hash``: sha256 of the subscriber's management token (self-service subscriptions).
    Returns it as :func:`subscribers` lists it, secrets included. It receives the alerts raised
    from now on. Raises ValueError (bad channel, criteria, or a name in use)."""
    from neodefense.alerts.criteria import Criteria

    name = " ".join(str(name).split())
    if not name:
        raise ValueError("a subscriber needs a name")
    if not channels:
        raise ValueError("a subscriber needs at least one channel (webhook or e-mail)")
    crit = criteria if isinstance(criteria, Criteria) else Criteria.from_json(criteria)
    now = _utcnow()
    rows = _channel_rows(channels, now)
    sub, ch = m.Subscriber.__table__, m.SubscriberChannel.__table__
    with write_transaction(engine) as conn:
        taken = conn.execute(sa.select(sub.c.id).where(sub.c.name == name)).scalar()
        if taken is not None:
            raise ValueError(f"a subscriber named {name!r} exists (id {taken})")
        sid = conn.execute(sa.insert(sub).values(name=name, criteria=crit.as_json(),
                                                 active=True, created_at=now,
                                                 token_hash=token_hash)
                           .returning(sub.c.id)).scalar_one()
        conn.execute(sa.insert(ch), [{**row, "subscriber_id": sid} for row in rows])
    return next(s for s in subscribers(engine, include_removed=True, with_secrets=True,
                                       subscriber_id=sid))


def subscribers(bind: Bind, include_removed: bool = False, with_secrets: bool = False,
                subscriber_id: int | None = None) -> list[dict[str, Any]]:
    """Subscribers by id: id, name, active, created_utc, removed_utc, criteria, and channels
    (id, kind, target, format, status, paused_reason, paused_utc, delivered/pending/held counts;
    ``secret`` only ``with_secrets``)."""
    sub, ch, dl = m.Subscriber.__table__, m.SubscriberChannel.__table__, m.Delivery.__table__

    def run(conn: Connection) -> list[dict[str, Any]]:
        query = sa.select(sub).order_by(sub.c.id)
        counted = sa.select(dl.c.channel_id, dl.c.status, sa.func.count())
        if not include_removed:
            query = query.where(sub.c.active)
        if subscriber_id is not None:  # one subscriber (just added): no scan of the others
            query = query.where(sub.c.id == subscriber_id)
            counted = counted.where(dl.c.subscriber_id == subscriber_id)
        out = []
        counts: dict[tuple[int, str], int] = {
            (row[0], row[1]): row[2] for row in conn.execute(
                counted.group_by(dl.c.channel_id, dl.c.status))}
        for row in conn.execute(query).mappings().all():
            chans = []
            for c in conn.execute(sa.select(ch).where(ch.c.subscriber_id == row["id"])
                                  .order_by(ch.c.id)).mappings():
                entry = {"id": c["id"], "kind": c["kind"], "target": c["target"],
                         "format": c["format"], "status": c["status"],
                         "paused_reason": c["paused_reason"], "paused_utc": _iso(c["paused_at"]),
                         "verified_utc": _iso(c["verified_at"])}
                for status in (DELIVERED, PENDING, HELD, CANCELLED):
                    entry[status] = counts.get((c["id"], status), 0)
                if with_secrets:
                    entry["secret"] = c["secret"]
                chans.append(entry)
            out.append({"id": row["id"], "name": row["name"], "active": bool(row["active"]),
                        "created_utc": _iso(row["created_at"]),
                        "removed_utc": _iso(row["removed_at"]), "criteria": row["criteria"],
                        "channels": chans})
        return out

    return _run(bind, run)


def _subscriber_id(conn: Connection, name_or_id: str | int) -> int:
    sub = m.Subscriber.__table__
    text = str(name_or_id).strip()
    found = conn.execute(sa.select(sub.c.id).where(sub.c.name == text)).scalar()
    if found is None and text.isdigit():
        found = conn.execute(sa.select(sub.c.id).where(sub.c.id == int(text))).scalar()
    if found is None:
        raise LookupError(f"no subscriber {name_or_id!r}")
    return int(found)


def remove_subscriber(engine: Engine, name_or_id: str | int) -> int:
    """Remove a subscriber (by name or id): it stops receiving alerts, its channels are marked
    removed and its undelivered deliveries cancelled; the record of what it was sent stays.
    Returns the number of deliveries cancelled. Raises LookupError."""
    sub, ch, dl = m.Subscriber.__table__, m.SubscriberChannel.__table__, m.Delivery.__table__
    with write_transaction(engine) as conn:
        sid = _subscriber_id(conn, name_or_id)
        conn.execute(sa.update(sub).where(sub.c.id == sid).values(active=False,
                                                                   removed_at=_utcnow()))
        conn.execute(sa.update(ch).where(ch.c.subscriber_id == sid).values(status=REMOVED))
        return conn.execute(sa.update(dl).where(dl.c.subscriber_id == sid,
                                                dl.c.status.in_((PENDING, HELD)))
                            .values(status=CANCELLED, claimed_until=None)).rowcount


def verify_channel(engine: Engine, channel_id: int) -> bool:
    """Mark an unverified webhook channel verified (it answered its challenge): it receives the
    alerts raised from now on. Returns False if it was not waiting for verification."""
    ch = m.SubscriberChannel.__table__
    with write_transaction(engine) as conn:
        return conn.execute(sa.update(ch).where(ch.c.id == channel_id, ch.c.status == UNVERIFIED)
                            .values(status=ACTIVE, verified_at=_utcnow())).rowcount == 1


def set_criteria(engine: Engine, subscriber_id: int, criteria: Any) -> dict[str, Any]:
    """Replace an active subscriber's criteria (for alerts raised from now on). Returns the
    criteria as stored. Raises LookupError, ValueError (bad criteria)."""
    from neodefense.alerts.criteria import Criteria

    crit = criteria if isinstance(criteria, Criteria) else Criteria.from_json(criteria)
    sub = m.Subscriber.__table__
    with write_transaction(engine) as conn:
        done = conn.execute(sa.update(sub).where(sub.c.id == subscriber_id, sub.c.active)
                            .values(criteria=crit.as_json())).rowcount
    if not done:
        raise LookupError(f"no subscriber {subscriber_id}")
    return crit.as_json()


def subscriber_token_hash(bind: Bind, subscriber_id: int) -> str | None:
    """The stored management-token hash of an active subscriber ('' if it has none), or None if
    there is no such active subscriber."""
    sub = m.Subscriber.__table__
    query = sa.select(sub.c.token_hash).where(sub.c.id == subscriber_id, sub.c.active)
    return _run(bind, lambda conn: conn.execute(query).scalar())


def resume_channel(engine: Engine, channel_id: int) -> int:
    """Resume a paused channel: its held deliveries become due now (their failure count reset).
    Returns how many were released. Raises LookupError."""
    ch, dl = m.SubscriberChannel.__table__, m.Delivery.__table__
    with write_transaction(engine) as conn:
        status = conn.execute(sa.select(ch.c.status).where(ch.c.id == channel_id)).scalar()
        if status is None or status == REMOVED:
            raise LookupError(f"no channel {channel_id}")
        if status == UNVERIFIED:
            raise ValueError(f"channel {channel_id} has not answered its verification challenge")
        conn.execute(sa.update(ch).where(ch.c.id == channel_id)
                     .values(status=ACTIVE, paused_reason="", paused_at=None))
        return conn.execute(sa.update(dl).where(dl.c.channel_id == channel_id,
                                                dl.c.status == HELD)
                            .values(status=PENDING, failures=0, next_attempt_at=_utcnow(),
                                    claimed_until=None)).rowcount


# -- the outbox: claim, send (elsewhere), record ---------------------------------------------------

def claim_deliveries(engine: Engine, limit: int = 500, lease_s: float = 120.0,
                     now: dt.datetime | None = None) -> list[Any]:
    """Claim up to ``limit`` due deliveries (pending, next attempt due, no live lease), oldest
    first, for ``lease_s`` seconds; returns them as :class:`neodefense.alerts.channels.Message`
    (``attempt`` = the attempt about to be made). On PostgreSQL concurrent deliverers skip each
    other's rows (FOR UPDATE SKIP LOCKED); on SQLite the write lock serializes them."""
    from neodefense.alerts.channels import Message

    now = now or _utcnow()
    dl, ch, al = m.Delivery.__table__, m.SubscriberChannel.__table__, m.AlertRecord.__table__
    token = secrets.token_hex(8)
    with write_transaction(engine) as conn:
        due = (sa.select(dl.c.id).where(
            dl.c.status == PENDING, dl.c.next_attempt_at <= now,
            sa.or_(dl.c.claimed_until.is_(None), dl.c.claimed_until < now))
            .order_by(dl.c.next_attempt_at, dl.c.id).limit(limit))
        if is_postgres(conn):
            due = due.with_for_update(skip_locked=True)
        ids = list(conn.execute(due).scalars())
        if not ids:
            return []
        until = now + dt.timedelta(seconds=lease_s)
        for start in range(0, len(ids), 1000):
            conn.execute(sa.update(dl).where(dl.c.id.in_(ids[start:start + 1000]))
                         .values(claimed_until=until, claim_token=token))
        rows = conn.execute(
            sa.select(dl.c.id, dl.c.attempts, dl.c.channel_id, ch.c.kind, ch.c.target,
                      ch.c.secret, ch.c.format, al.c.alert_id, al.c.payload, al.c.voevent)
            .join(ch, ch.c.id == dl.c.channel_id).join(al, al.c.id == dl.c.alert_id)
            .where(dl.c.claim_token == token, dl.c.status == PENDING)
            .order_by(dl.c.next_attempt_at, dl.c.id)).all()
    return [Message(delivery_id=int(r.id), channel_id=int(r.channel_id), kind=r.kind,
                    target=r.target, secret=r.secret, format=r.format, alert_id=r.alert_id,
                    payload=r.payload, voevent=r.voevent, attempt=int(r.attempts) + 1)
            for r in rows]


def record_outcomes(engine: Engine, outcomes: Sequence[Any], policy: DeliveryPolicy | None = None,
                    now: dt.datetime | None = None, rng: Any = None) -> dict[str, int]:
    """Record the outcomes (:class:`neodefense.alerts.channels.Outcome`) of claimed deliveries,
    all in one transaction: every attempt is a ``delivery_attempts`` row; a success marks the
    delivery delivered if it was still pending (``already`` counts the repeats that were not);
    a failure schedules the next attempt with backoff (never sooner than the receiver's
    Retry-After), and pauses the channel after ``policy.max_attempts`` failures in a row, or at
    once on HTTP 410 or a target that can never work (its pending deliveries are then held).
    Returns counts: delivered, already, failed, paused (channels).

    The updates are applied in the order of ``outcomes``, each run of consecutive successes
    (failures) as one batched statement (executemany; ``delivered`` is its row count)."""
    from neodefense.alerts.channels import next_attempt_delay_s

    policy = policy or DeliveryPolicy()
    now = now or _utcnow()
    dl, att, ch = m.Delivery.__table__, m.DeliveryAttempt.__table__, m.SubscriberChannel.__table__
    counts = {"delivered": 0, "already": 0, "failed": 0, "paused": 0}
    if not outcomes:
        return counts
    pending_row = (dl.c.id == sa.bindparam("b_id"), dl.c.status == PENDING)
    delivered = sa.update(dl).where(*pending_row).values(
        status=DELIVERED, delivered_at=sa.bindparam("b_at"), attempts=sa.bindparam("b_n"),
        failures=0, claimed_until=None, last_error="")
    repeated = sa.update(dl).where(dl.c.id == sa.bindparam("b_id")).values(
        attempts=sa.bindparam("b_n"))
    failed = sa.update(dl).where(*pending_row).values(
        attempts=sa.bindparam("b_n"), failures=sa.bindparam("b_failures"), claimed_until=None,
        last_error=sa.bindparam("b_error"), next_attempt_at=sa.bindparam("b_next"))
    with write_transaction(engine) as conn:
        state = {row.id: row for row in conn.execute(
            sa.select(dl.c.id, dl.c.attempts, dl.c.failures, dl.c.channel_id)
            .where(dl.c.id.in_([o.delivery_id for o in outcomes])))}
        attempts, pause = [], {}
        runs: list[tuple[bool, list[dict[str, Any]]]] = []  # consecutive successes / failures
        for o in outcomes:
            row = state.get(o.delivery_id)
            if row is None:
                continue
            n = int(row.attempts) + 1
            attempts.append({"delivery_id": o.delivery_id, "attempt": n,
                             "attempted_at": o.attempted_at, "ok": bool(o.ok),
                             "status_code": o.status_code, "error": (o.error or "")[:2000],
                             "duration_s": float(o.duration_s)})
            if not runs or runs[-1][0] != bool(o.ok):
                runs.append((bool(o.ok), []))
            if o.ok:
                runs[-1][1].append({"b_id": o.delivery_id, "b_at": o.attempted_at, "b_n": n})
                continue
            counts["failed"] += 1
            failures = int(row.failures) + 1
            delay = next_attempt_delay_s(n, base_s=policy.backoff_base_s,
                                         factor=policy.backoff_factor,
                                         max_s=policy.backoff_max_s, jitter=policy.jitter,
                                         rng=rng)
            retry_after = getattr(o, "retry_after_s", None)
            if retry_after is not None:  # the receiver asked: no sooner, no later than the cap
                delay = min(max(delay, float(retry_after)), policy.backoff_max_s)
            runs[-1][1].append({"b_id": o.delivery_id, "b_n": n, "b_failures": failures,
                                "b_error": (o.error or "")[:2000],
                                "b_next": now + dt.timedelta(seconds=delay)})
            if getattr(o, "gone", False):
                pause[row.channel_id] = f"the endpoint answered 410 Gone ({_iso(now)})"
            elif getattr(o, "permanent", False):
                pause[row.channel_id] = f"the channel cannot work: {(o.error or '')[:300]}"
            elif failures >= policy.max_attempts:
                pause.setdefault(row.channel_id, (
                    f"{failures} failed attempts in a row, last at {_iso(o.attempted_at)}: "
                    f"{(o.error or '')[:300]}"))
        for ok, params in runs:
            if not ok:
                conn.execute(failed, params)
                continue
            # the conditional update: only a delivery still pending becomes delivered, once
            done = conn.execute(delivered, params).rowcount
            counts["delivered"] += done
            counts["already"] += len(params) - done
            if done < len(params):  # repeats count their attempt (a no-op for the rows just done)
                conn.execute(repeated, params)
        if attempts:
            conn.execute(sa.insert(att), attempts)
        for channel_id, reason in pause.items():
            paused = conn.execute(sa.update(ch).where(ch.c.id == channel_id,
                                                      ch.c.status == ACTIVE)
                                  .values(status=PAUSED, paused_reason=reason,
                                          paused_at=now)).rowcount
            counts["paused"] += paused
            conn.execute(sa.update(dl).where(dl.c.channel_id == channel_id,
                                             dl.c.status == PENDING)
                         .values(status=HELD, claimed_until=None))
    return counts


def delivery_summary(bind: Bind) -> dict[str, Any]:
    """Deliveries by status, attempts made, channels paused, and the next due time."""
    dl, att, ch = m.Delivery.__table__, m.DeliveryAttempt.__table__, m.SubscriberChannel.__table__

    def run(conn: Connection) -> dict[str, Any]:
        by_status = dict(conn.execute(sa.select(dl.c.status, sa.func.count())
                                      .group_by(dl.c.status)).all())
        next_due = conn.execute(sa.select(sa.func.min(dl.c.next_attempt_at))
                                .where(dl.c.status == PENDING)).scalar()
        return {"deliveries": {k: int(v) for k, v in by_status.items()},
                "attempts": int(conn.execute(sa.select(sa.func.count()).select_from(att))
                                .scalar_one()),
                "paused_channels": int(conn.execute(sa.select(sa.func.count()).select_from(ch)
                                                    .where(ch.c.status == PAUSED)).scalar_one()),
                "next_due_utc": _iso(next_due)}

    return _run(bind, run)
