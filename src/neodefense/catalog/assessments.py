"""Impact assessments in the catalog: store every monitoring run as a new version, read them back,
find the orbit solutions that still need monitoring.

Conventions
-----------
* Every monitoring run of an object is a new row of ``impact_assessments`` with ``version`` 1,
  2, … (per object), linked to the orbit solution it was computed from (``solution_id``).
  Nothing is overwritten. A run that did not finish with status 'ok' (failed, degenerate
  covariance, unbound samples, no solution) is stored with its status and message but leaves
  the object's *current* assessment alone: ``is_current`` marks the newest 'ok' one
  (:func:`latest_assessment`), so the risk list never loses an object to a crashed run.
* Columns hold the risk summary of :meth:`ImpactAssessment.as_json` (what the risk list sorts and
  filters on); ``result`` holds every other key of it (close approaches, cross check, assessed
  time, solution epoch, …) except the virtual impactors, which are rows of ``virtual_impactors``
  in their original order. :func:`assessment_from_dict` rebuilds the :class:`ImpactAssessment`.
  NaN and infinities are stored as null and come back as NaN where the dataclass default is a
  float (``horizon_tdb_jd``, a virtual impactor's ``palermo``, …), as None where it is optional.
* :func:`solutions_to_monitor` lists the objects whose current orbit (newest converged solution,
  as :func:`neodefense.catalog.solutions.latest_solution`) has no assessment yet: a new orbit
  solution makes the object due, a failed refit does not. Like a failed fit, a failed
  monitoring run is not retried on the same solution unless asked (``retry_failed``).
* :func:`stale_solutions` lists, for the nightly re-monitoring of the whole catalog, the objects
  whose current orbit was last assessed by another code version or with other monitor settings
  than the ones given (the ``settings`` an assessment records, :attr:`ImpactAssessment.settings`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from neodefense.catalog import models as m
from neodefense.catalog.db import write_transaction
from neodefense.catalog.queries import Bind, _run
from neodefense.catalog.solutions import (
    _designation,
    _float_or_none,
    _jsonable,
    _lock_object,
    _object_id,
    _utcnow,
)
from neodefense.impacts.assessment import FAILED, OK, ImpactAssessment, VirtualImpactor
from neodefense.orbits.solution import ARC_TOO_SHORT, CONVERGED

__all__ = [
    "assessment_by_id",
    "assessment_from_dict",
    "assessment_history",
    "latest_assessment",
    "solutions_to_monitor",
    "stale_solutions",
    "store_assessment",
    "virtual_impactors_of",
]

#: Keys of :meth:`ImpactAssessment.as_json` stored in columns of ``impact_assessments``.
_FLOAT_COLUMNS = ("horizon_tdb_jd", "cumulative_ip", "palermo_cum", "palermo_max", "H",
                  "diameter_m")
_TEXT_COLUMNS = ("status", "message", "method", "observation_set_hash", "code_version")
_COLUMN_KEYS = frozenset((*_FLOAT_COLUMNS, *_TEXT_COLUMNS, "n_samples", "seed", "years",
                          "bodies", "torino_max", "iawn_notify", "smpag", "runtime_s"))
#: Keys of the as_json dict that are not stored in ``result``: columns, the virtual-impactor rows,
#: and the designation (the object's, which may change when it is numbered).
_NOT_IN_RESULT = _COLUMN_KEYS | {"virtual_impactors", "designation"}
#: Keys of :meth:`VirtualImpactor.as_json` stored as floats (NaN → null).
_VI_FLOATS = ("time_tdb_jd", "ip", "ip_sigma", "palermo", "v_inf_km_s", "v_imp_km_s",
              "energy_mt", "diameter_m", "sigma_lov", "b_km", "b_impact_km")
_YEAR = re.compile(r"^\s*([+-]?\d{4,})-")


# -- storing ---------------------------------------------------------------------------------------

def _vi_year(vi: Mapping[str, Any]) -> int | None:
    """Calendar year (UTC) of a virtual impactor: from its ``date_utc`` ('2068-04-12.3', ISO),
    else from ``time_tdb_jd`` through :mod:`neodefense.timescales`; None if neither is usable."""
    found = _YEAR.match(vi.get("date_utc") or "")
    if found:
        return int(found.group(1))
    jd = vi.get("time_tdb_jd")
    if jd is None:
        return None
    from neodefense import timescales

    return int(str(timescales.tdb_jd_to_utc_iso(float(jd), precision=0)[0])[:4])


def _vi_rows(vis: list[dict[str, Any]], assessment_id: int) -> list[dict[str, Any]]:
    rows = []
    for vi in vis:
        row: dict[str, Any] = {
            "assessment_id": assessment_id,
            "body": vi["body"],
            "date_utc": vi.get("date_utc") or "",
            "torino": int(vi.get("torino") or 0),
            "method": vi.get("method") or "",
            # SQL NULL (not JSON null) when absent, so "entry IS NULL" finds them
            "entry": sa.null() if vi.get("entry") is None else vi["entry"],
            "corridor": sa.null() if vi.get("corridor") is None else vi["corridor"],
        }
        for key in _VI_FLOATS:
            row[key] = _float_or_none(vi.get(key))
        rows.append(row)
    return rows


def store_assessment(engine: Engine, solution_id: int, assessment: ImpactAssessment, *,
                     alert_config: Any = None, as_of: dt.datetime | None = None) -> int:
    """Store ``assessment`` of orbit solution ``solution_id`` as the next version of the
    solution's object; returns the assessment id.

    In the same transaction the alert rules run on it (transactional outbox:
    :func:`neodefense.catalog.alerts.raise_alerts` with ``alert_config``, an
    :class:`~neodefense.catalog.alerts.AlertConfig`; None: the defaults): the risk list, any
    removal, the alert and its deliveries are committed with the assessment or not at all.
    ``as_of``: the time the assessment counts as made (aware UTC; default now) — replays set it
    to the simulated time, which then also dates the alerts.

    An assessment with status 'ok' becomes the object's current one (``is_current``; the previous
    current one is cleared); any other status is stored but leaves the current one alone. The
    object is locked while the version is assigned (as :func:`solutions.store_solution`), and
    everything — row, current flag, virtual impactors — is one transaction: all or nothing.
    An empty ``observation_set_hash`` is taken from the solution. Raises LookupError when the
    solution is not in the catalog, ValueError when the assessment names another observation set
    than the solution's (it was computed from another orbit).
    """
    a, v = m.ImpactAssessmentRecord.__table__, m.VirtualImpactorRecord.__table__
    s = m.OrbitSolutionRecord.__table__
    data = _jsonable(assessment.as_json())
    vis = list(data.pop("virtual_impactors") or [])
    years = [y for y in (_vi_year(vi) for vi in vis) if y is not None]
    with write_transaction(engine) as conn:
        solution = conn.execute(sa.select(s.c.object_id, s.c.observation_set_hash)
                                .where(s.c.id == solution_id)).first()
        if solution is None:
            raise LookupError(f"no orbit solution {solution_id} in the catalog")
        object_id = solution.object_id
        set_hash = data.get("observation_set_hash") or solution.observation_set_hash
        if set_hash != solution.observation_set_hash:
            raise ValueError(
                f"the assessment was computed for observation set {set_hash[:12]}…, solution "
                f"{solution_id} was fitted to {solution.observation_set_hash[:12]}…")
        _lock_object(conn, object_id)
        previous = conn.execute(sa.select(sa.func.max(a.c.version))
                                .where(a.c.object_id == object_id)).scalar()
        current = data["status"] == OK
        if current:
            conn.execute(sa.update(a).where(a.c.object_id == object_id, a.c.is_current)
                         .values(is_current=False))
        values: dict[str, Any] = {
            "object_id": object_id,
            "solution_id": solution_id,
            "version": 1 if previous is None else previous + 1,
            "created_at": as_of or _utcnow(),
            "n_samples": int(data.get("n_samples") or 0),
            "seed": None if data.get("seed") is None else int(data["seed"]),
            "years": float(data["years"]),
            "bodies": ",".join(str(b) for b in data.get("bodies") or ()),
            "torino_max": int(data.get("torino_max") or 0),
            "iawn_notify": bool(data.get("iawn_notify")),
            "smpag": bool(data.get("smpag")),
            "runtime_s": float(data.get("runtime_s") or 0.0),
            "n_vi": len(vis),
            "first_year": min(years) if years else None,
            "last_year": max(years) if years else None,
            "is_current": current,
            "result": {k: val for k, val in data.items() if k not in _NOT_IN_RESULT},
        }
        for key in _FLOAT_COLUMNS:
            values[key] = _float_or_none(data.get(key))
        for key in _TEXT_COLUMNS:
            values[key] = data.get(key) or ""
        values["observation_set_hash"] = set_hash
        assessment_id = conn.execute(sa.insert(a).values(**values).returning(a.c.id)).scalar_one()
        if vis:
            conn.execute(sa.insert(v), _vi_rows(vis, assessment_id))
        if current:
            from neodefense.catalog.alerts import raise_alerts

            raise_alerts(conn, object_id, int(assessment_id), assessment.as_json(),
                         alert_config, as_of)
    return int(assessment_id)


# -- reading ---------------------------------------------------------------------------------------

def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value


def _summary(row: Mapping[str, Any], designation: str) -> dict[str, Any]:
    """The columns of a stored row (without ``result``), ``bodies`` as a list."""
    out = {k: row[k] for k in row.keys() if k != "result"}
    out["created_at"] = _aware(row["created_at"])
    out["bodies"] = [b for b in (row["bodies"] or "").split(",") if b]
    out["designation"] = designation
    return out


def virtual_impactors_of(bind: Bind, assessment_id: int) -> list[dict[str, Any]]:
    """An assessment's virtual impactors in stored order, each in the shape of
    :meth:`VirtualImpactor.as_json` plus its row ``id``."""
    v = m.VirtualImpactorRecord.__table__
    query = sa.select(v).where(v.c.assessment_id == assessment_id).order_by(v.c.id)

    def run(conn: Connection) -> list[dict[str, Any]]:
        return [{k: row[k] for k in row.keys() if k != "assessment_id"}
                for row in conn.execute(query).mappings()]

    return _run(bind, run)


def _full(conn: Connection, row: Mapping[str, Any], designation: str) -> dict[str, Any]:
    """A stored row in the shape of :meth:`ImpactAssessment.as_json` (``result`` merged in,
    ``virtual_impactors`` read), plus the row's id, object_id, solution_id, version,
    created_at (aware UTC), is_current, n_vi, first_year and last_year."""
    out = {**(row["result"] or {}), **_summary(row, designation)}
    out["virtual_impactors"] = virtual_impactors_of(conn, row["id"])
    return out


def latest_assessment(bind: Bind, designation: str | int) -> dict[str, Any] | None:
    """The object's current assessment (newest with status 'ok') with its ``virtual_impactors``
    and ``solution_id`` (see :func:`_full`); None if it has none. ``designation``: any alias, or
    the object id as an int. Raises :class:`~neodefense.catalog.queries.UnknownDesignation`."""
    a = m.ImpactAssessmentRecord.__table__

    def run(conn: Connection) -> dict[str, Any] | None:
        object_id = _object_id(conn, designation)
        row = conn.execute(sa.select(a).where(a.c.object_id == object_id, a.c.is_current)
                           .order_by(a.c.version.desc()).limit(1)).mappings().first()
        return None if row is None else _full(conn, row, _designation(conn, object_id))

    return _run(bind, run)


def assessment_by_id(bind: Bind, assessment_id: int) -> dict[str, Any]:
    """The stored assessment ``assessment_id`` (any status) as :func:`latest_assessment` returns
    it. Raises LookupError."""
    a = m.ImpactAssessmentRecord.__table__

    def run(conn: Connection) -> dict[str, Any]:
        row = conn.execute(sa.select(a).where(a.c.id == assessment_id)).mappings().first()
        if row is None:
            raise LookupError(f"no impact assessment {assessment_id}")
        return _full(conn, row, _designation(conn, row["object_id"]))

    return _run(bind, run)


def assessment_history(bind: Bind, designation: str | int) -> list[dict[str, Any]]:
    """Every stored assessment of the object, oldest version first: the columns only (id,
    version, created_at, solution_id, status, message, method, cumulative_ip, palermo_cum,
    palermo_max, torino_max, n_vi, first_year, last_year, is_current, …; no ``result``, no
    virtual impactors) — the impact-probability history of the object.
    Raises :class:`~neodefense.catalog.queries.UnknownDesignation`."""
    a = m.ImpactAssessmentRecord.__table__
    columns = [c for c in a.c if c.name != "result"]

    def run(conn: Connection) -> list[dict[str, Any]]:
        object_id = _object_id(conn, designation)
        name = _designation(conn, object_id)
        rows = conn.execute(sa.select(*columns).where(a.c.object_id == object_id)
                            .order_by(a.c.version)).mappings().all()
        return [_summary(row, name) for row in rows]

    return _run(bind, run)


def _from_fields(cls: type, data: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Constructor arguments of dataclass ``cls`` from the keys of ``data`` that name its fields:
    None → NaN where the field's default is a float; bools, ints and floats coerced."""
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in skip or field.name not in data:
            continue
        value = data[field.name]
        default = field.default
        if isinstance(default, bool):
            value = bool(value)
        elif isinstance(default, float):
            value = math.nan if value is None else float(value)
        elif isinstance(default, int) and value is not None:
            value = int(value)
        kwargs[field.name] = value
    return kwargs


def assessment_from_dict(data: Mapping[str, Any]) -> ImpactAssessment:
    """An :class:`ImpactAssessment` from a stored assessment dict (:func:`latest_assessment`,
    :func:`assessment_by_id`) or an ``as_json`` dict: ``assessment_from_dict(d).as_json()``
    equals the stored assessment's ``as_json()`` (NaN where it had NaN)."""
    kwargs = _from_fields(ImpactAssessment, data, skip=("virtual_impactors", "bodies"))
    if "bodies" in data:
        kwargs["bodies"] = tuple(data["bodies"] or ())
    kwargs["virtual_impactors"] = [VirtualImpactor(**_from_fields(VirtualImpactor, vi))
                                   for vi in data.get("virtual_impactors") or []]
    return ImpactAssessment(**kwargs)


# -- finding work ----------------------------------------------------------------------------------

def _current_solutions() -> sa.Subquery:
    """(object_id, solution_id) of every object's current orbit solution: its newest converged
    or short-arc one (what :func:`solutions_to_monitor` monitors)."""
    s = m.OrbitSolutionRecord.__table__
    newest = (sa.select(s.c.object_id, sa.func.max(s.c.version).label("version"))
              .where(s.c.status.in_((CONVERGED, ARC_TOO_SHORT)))
              .group_by(s.c.object_id).subquery())
    return (sa.select(s.c.object_id, s.c.id.label("solution_id"))
            .join(newest, sa.and_(newest.c.object_id == s.c.object_id,
                                  newest.c.version == s.c.version))
            .subquery())


def stale_solutions(bind: Bind, code_version: str, settings: Mapping[str, Any]
                    ) -> list[tuple[int, str, int]]:
    """(object id, designation, solution id) of every object whose current orbit solution (as
    :func:`solutions_to_monitor`) was last assessed — its newest assessment of that solution,
    whatever the status — by another ``code_version`` or with other monitor ``settings`` than
    the given ones (compared as JSON values: the dict an assessment records in ``settings``;
    an assessment stored before settings were recorded is stale), ordered by object id.

    The nightly re-monitoring runs these beside :func:`solutions_to_monitor`. The current
    assessment of an object goes stale when the code or the settings change; comparing the
    newest run of the current solution (not the current 'ok' assessment) means a run that failed
    with this code and these settings is not repeated every night, while an upgrade retries it
    once. Objects whose current solution has no assessment at all are
    :func:`solutions_to_monitor`'s, not listed here."""
    a, o = m.ImpactAssessmentRecord.__table__, m.Object.__table__
    current = _current_solutions()
    newest = (sa.select(a.c.solution_id, sa.func.max(a.c.version).label("version"))
              .group_by(a.c.solution_id).subquery())
    query = (sa.select(current.c.object_id, o.c.designation, current.c.solution_id,
                       a.c.code_version, a.c.result["settings"].label("settings"))
             .join(newest, newest.c.solution_id == current.c.solution_id)
             .join(a, sa.and_(a.c.solution_id == newest.c.solution_id,
                              a.c.version == newest.c.version))
             .join(o, o.c.id == current.c.object_id)
             .order_by(current.c.object_id))
    wanted = _jsonable(dict(settings))

    def run(conn: Connection) -> list[tuple[int, str, int]]:
        return [(int(r.object_id), r.designation, int(r.solution_id)) for r in conn.execute(query)
                if r.code_version != code_version or (r.settings or {}) != wanted]

    return _run(bind, run)


def solutions_to_monitor(bind: Bind, retry_failed: bool = False) -> list[tuple[int, str, int]]:
    """(object id, designation, solution id) of every object whose current orbit solution (its
    newest converged one, or its newest short-arc one — a ranging region, which the monitor
    samples — when that is newer) has no impact assessment yet, ordered by object id. ``retry_failed``:
    also list those whose only assessments of that solution have status 'failed'."""
    o, s = m.Object.__table__, m.OrbitSolutionRecord.__table__
    a = m.ImpactAssessmentRecord.__table__
    newest = (sa.select(s.c.object_id, sa.func.max(s.c.version).label("version"))
              .where(s.c.status.in_((CONVERGED, ARC_TOO_SHORT)))
              .group_by(s.c.object_id).subquery())
    assessed = sa.select(a.c.id).where(a.c.solution_id == s.c.id)
    if retry_failed:
        assessed = assessed.where(a.c.status != FAILED)
    query = (sa.select(s.c.object_id, o.c.designation, s.c.id)
             .join(newest, sa.and_(newest.c.object_id == s.c.object_id,
                                   newest.c.version == s.c.version))
             .join(o, o.c.id == s.c.object_id)
             .where(~sa.exists(assessed))
             .order_by(s.c.object_id))
    return _run(bind, lambda conn: [(int(r[0]), r[1], int(r[2])) for r in conn.execute(query)])
