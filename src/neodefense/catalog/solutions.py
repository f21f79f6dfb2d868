"""Orbit solutions in the catalog: store every fit as a new version, read them back, find work.

Conventions
-----------
* Every fit of an object is a new row of ``orbit_solutions`` with ``version`` 1, 2, … (per
  object) and ``supersedes`` = the object's previous solution. Nothing is overwritten: a failed
  fit (status ≠ 'converged') is stored with its status and message, and the object's *current*
  orbit stays its newest converged one (:func:`latest_solution` with ``ok_only=True``).
* The **fit set** of an object is its non-deprecated observations (deprecated obs80 records are
  stored but never fitted). :func:`observations_with_ids` loads it with the observation row ids;
  a stored solution has one ``orbit_residuals`` row per observation id it was given, so the
  observation set (and, through the observations, the submissions) behind every solution is a
  join away (:func:`residuals_of`, :func:`solution_submissions`).
* ``observation_set_hash`` of a stored solution is
  :func:`neodefense.orbits.solution.observation_set_hash` of the rows it was given, computed here
  from the catalog. :func:`objects_to_fit` compares it with the hash of each object's current fit
  set: an object is due when they differ (new observations, a merge, a deprecation) or when it
  has no solution. A fit that failed on an unchanged set is not retried.
* Stored numbers are those of :class:`~neodefense.orbits.solution.OrbitSolution` (barycentric
  ICRF state at ``epoch_tdb_jd`` in au, au/day; covariance in the same units, then non-grav
  parameters; heliocentric ecliptic J2000 elements). JSON keeps floats exactly (shortest repr);
  NaN and infinities become null.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from neodefense.catalog import models as m
from neodefense.catalog.db import write_transaction
from neodefense.catalog.queries import Bind, UnknownDesignation, _batch_from_rows, _run, resolve
from neodefense.observations.batch import COLUMNS, ObservationBatch
from neodefense.orbits.solution import (
    CONVERGED,
    ELEMENT_KEYS,
    OrbitSolution,
    Residuals,
    observation_set_hash,
)

__all__ = [
    "HASH_COLUMNS",
    "batch_with_id_lines",
    "current_hashes",
    "exclusions_to_carry",
    "load_solution",
    "latest_solution",
    "objects_to_fit",
    "observations_with_ids",
    "residuals_of",
    "solution_from_dict",
    "solution_history",
    "solution_submissions",
    "store_solution",
]

#: Observation columns :func:`observation_set_hash` reads.
HASH_COLUMNS = ("stn", "trx", "rcv", "deprecated", "obsTime_mjd", "ra", "dec", "delay", "doppler")
#: Arrays that :meth:`OrbitSolution.as_json` carries and the row stores as JSON.
_JSON_FIELDS = ("state_icrf_au", "covariance", "nongrav", "nongrav_sigmas", "elements", "sigmas",
                "close_approaches")
_FLOAT_FIELDS = ("epoch_tdb_jd", "rms_arcsec", "rms_normalized", "chi2", "H", "moid_au")
_INT_FIELDS = ("n_obs", "n_used", "n_rejected", "iterations")
#: Residual times must agree with the observation rows to this (days; float noise only).
_TIME_MATCH_DAY = 1e-9


# -- reading observations --------------------------------------------------------------------------

def _object_id(conn: Connection, designation: str | int) -> int:
    """The object id of a designation (any alias), or of an object id given as an int."""
    if isinstance(designation, int | np.integer):
        o = m.Object.__table__
        found = conn.execute(sa.select(o.c.id).where(o.c.id == int(designation))).scalar()
        if found is None:
            raise UnknownDesignation(f"object id {designation}")
        return found
    object_id = resolve(conn, designation)
    if object_id is None:
        raise UnknownDesignation(designation)
    return object_id


def observations_with_ids(bind: Bind, designation: str | int, *,
                          include_deprecated: bool = False) -> tuple[ObservationBatch, np.ndarray]:
    """An object's fit set as a batch ordered by time (as :func:`queries.observations_for`), and
    the observation row ids (int64) in the same order. ``designation``: any alias, or the
    object id as an int. Deprecated observations are left out unless ``include_deprecated``.
    Raises :class:`UnknownDesignation`."""
    names = list(COLUMNS)
    obs = m.observations_table

    def run(conn: Connection) -> tuple[ObservationBatch, np.ndarray]:
        object_id = _object_id(conn, designation)
        query = sa.select(obs.c.id, *(obs.c[n] for n in names)).where(
            obs.c.object_id == object_id)
        if not include_deprecated:
            query = query.where(sa.not_(obs.c.deprecated))
        rows = conn.execute(query.order_by(obs.c.obsTime_mjd, obs.c.id)).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return _batch_from_rows(names, [r[1:] for r in rows]), ids

    return _run(bind, run)


def solution_observations(bind: Bind, solution_id: int) -> tuple[ObservationBatch, np.ndarray]:
    """The exact observation set orbit solution ``solution_id`` was fitted to (its residual
    rows), as :func:`observations_with_ids` returns an object's: batch in time order and ids —
    whatever arrived since. Raises LookupError for an unknown solution."""
    names = list(COLUMNS)
    obs, r, s = m.observations_table, m.OrbitResidual.__table__, m.OrbitSolutionRecord.__table__

    def run(conn: Connection) -> tuple[ObservationBatch, np.ndarray]:
        if conn.execute(sa.select(s.c.id).where(s.c.id == solution_id)).first() is None:
            raise LookupError(f"no orbit solution {solution_id} in the catalog")
        rows = conn.execute(sa.select(obs.c.id, *(obs.c[n] for n in names))
                            .join(r, r.c.observation_id == obs.c.id)
                            .where(r.c.solution_id == solution_id)
                            .order_by(obs.c.obsTime_mjd, obs.c.id)).all()
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        return _batch_from_rows(names, [row[1:] for row in rows]), ids

    return _run(bind, run)


def _hash_rows(rows: Sequence[Sequence[Any]]) -> str:
    """observation_set_hash of rows holding :data:`HASH_COLUMNS` (in that order)."""
    if not rows:
        return observation_set_hash(ObservationBatch.empty())
    cols = list(zip(*rows, strict=True))
    columns: dict[str, np.ndarray] = {}
    for name, values in zip(HASH_COLUMNS, cols, strict=True):
        kind = COLUMNS[name]
        if kind == "f":
            columns[name] = np.array(values, dtype=np.float64)
        elif kind == "b":
            columns[name] = np.array(values, dtype=bool)
        else:
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            columns[name] = arr
    return observation_set_hash(ObservationBatch(columns))


def current_hashes(bind: Bind) -> dict[int, str]:
    """object id → observation_set_hash of its current fit set (objects with at least one
    non-deprecated observation). Reads the hash columns of every observation once."""
    obs = m.observations_table

    def run(conn: Connection) -> dict[int, str]:
        result = conn.execute(sa.select(obs.c.object_id, *(obs.c[n] for n in HASH_COLUMNS))
                              .where(sa.not_(obs.c.deprecated)).order_by(obs.c.object_id))
        hashes: dict[int, str] = {}
        group: list[Any] = []
        current: int | None = None
        for row in result:
            if row[0] != current:
                if current is not None:
                    hashes[current] = _hash_rows(group)
                current, group = row[0], []
            group.append(row[1:])
        if current is not None:
            hashes[current] = _hash_rows(group)
        return hashes

    return _run(bind, run)


def objects_to_fit(bind: Bind) -> list[tuple[int, str]]:
    """(object id, designation) of every object whose current fit set differs from the one its
    newest solution (of any status) was fitted to, or that has observations but no solution;
    ordered by object id."""
    o, s = m.Object.__table__, m.OrbitSolutionRecord.__table__

    def run(conn: Connection) -> list[tuple[int, str]]:
        hashes = current_hashes(conn)
        newest = (sa.select(s.c.object_id, sa.func.max(s.c.version).label("version"))
                  .group_by(s.c.object_id).subquery())
        fitted = dict(conn.execute(
            sa.select(s.c.object_id, s.c.observation_set_hash)
            .join(newest, sa.and_(newest.c.object_id == s.c.object_id,
                                  newest.c.version == s.c.version))).all())
        due = sorted(oid for oid, h in hashes.items() if fitted.get(oid) != h)
        if not due:
            return []
        names = dict(conn.execute(sa.select(o.c.id, o.c.designation)
                                  .where(o.c.id.in_(due))).all())
        return [(oid, names[oid]) for oid in due if oid in names]

    return _run(bind, run)


# -- exclusions (re-fits that keep chosen observations out) ---------------------------------------

def batch_with_id_lines(batch: ObservationBatch, observation_ids: Sequence[int] | np.ndarray
                        ) -> ObservationBatch:
    """``batch`` with its ``line`` column replaced by the catalog observation ids (same order):
    what :func:`neodefense.orbits.fit.fit_orbit`'s ``exclude`` matches, since file line numbers
    repeat across submissions. The residuals then carry the ids in ``line``."""
    ids = np.asarray(observation_ids, dtype=np.int64).ravel()
    if len(ids) != len(batch):
        raise ValueError(f"{len(ids)} observation ids for {len(batch)} observations")
    return ObservationBatch({**batch.columns, "line": ids})


def exclusions_to_carry(bind: Bind, object_id: int,
                        observation_ids: Sequence[int] | np.ndarray) -> list[int]:
    """The observation ids the object's newest solution (any status) was asked to exclude
    (``settings["exclude"]``) that are still among ``observation_ids`` (its current fit set),
    sorted: what a refit on new observations keeps excluding. Empty when the object has no
    solution or its newest excluded nothing; ids of observations gone since (a deprecation, a
    merge) are dropped."""
    s = m.OrbitSolutionRecord.__table__
    query = (sa.select(s.c.settings).where(s.c.object_id == object_id)
             .order_by(s.c.version.desc()).limit(1))
    settings = _run(bind, lambda conn: conn.execute(query).scalar())
    wanted = {int(v) for v in ((settings or {}).get("exclude") or [])}
    present = {int(v) for v in np.asarray(observation_ids, dtype=np.int64).ravel()}
    return sorted(wanted & present)


# -- storing ---------------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN/±inf → None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _residual_rows(solution: OrbitSolution, ids: np.ndarray, times_mjd: np.ndarray,
                   stations: np.ndarray) -> list[dict[str, Any]]:
    """One residual row per observation id; values from ``solution.residuals`` where it has them.

    Residuals are matched to ids by position when there is one per id (the fitted batch's order;
    checked against the stored times and stations), else by ``Residuals.line`` holding the
    observation id."""
    n = len(ids)
    values = {k: np.full(n, np.nan) for k in ("ra_arcsec", "dec_arcsec", "sigma_ra_arcsec",
                                              "sigma_dec_arcsec", "chi2")}
    rejected = np.zeros(n, dtype=bool)
    used = np.zeros(n, dtype=bool)
    res: Residuals | None = solution.residuals
    if res is not None and len(res.line):
        if len(res.line) == n:
            where = np.arange(n)
            bad = ~np.isclose(np.asarray(res.obs_time_mjd_utc, dtype=float), times_mjd,
                              rtol=0.0, atol=_TIME_MATCH_DAY)
            bad |= np.asarray(res.stn, dtype=object) != stations
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"residual {i} ({res.stn[i]} at MJD {res.obs_time_mjd_utc[i]}) is not "
                    f"observation {ids[i]} ({stations[i]} at MJD {times_mjd[i]}): residuals "
                    "must be in the order of observation_ids")
        else:
            position = {int(v): i for i, v in enumerate(ids)}
            missing = [int(v) for v in res.line if int(v) not in position]
            if missing:
                raise ValueError(
                    f"{len(res.line)} residuals for {n} observation ids, and residual lines "
                    f"{missing[:5]} are not among the ids: pass one residual per id in order, or "
                    "put the observation ids in the batch's 'line' column")
            where = np.array([position[int(v)] for v in res.line], dtype=np.int64)
        for key in values:
            values[key][where] = np.asarray(getattr(res, key), dtype=float)
        rejected[where] = np.asarray(res.rejected, dtype=bool)
        if res.used is not None:
            used[where] = np.asarray(res.used, dtype=bool)
        else:  # older producers: in the fit unless rejected or not modelled
            used[where] = ~np.asarray(res.rejected, dtype=bool) & np.isfinite(
                np.asarray(res.chi2, dtype=float))
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"observation_id": int(ids[i]), "rejected": bool(rejected[i]),
                               "used": bool(used[i])}
        for key, arr in values.items():
            row[key] = _float_or_none(arr[i])
        rows.append(row)
    return rows


def _lock_object(conn: Connection, object_id: int) -> None:
    """Serialize writers of one object's versions (PostgreSQL row lock; SQLite writers already
    hold the database lock from BEGIN IMMEDIATE)."""
    o = m.Object.__table__
    found = conn.execute(sa.select(o.c.id).where(o.c.id == object_id).with_for_update()).scalar()
    if found is None:
        raise LookupError(f"no object with id {object_id} in the catalog")


def store_solution(engine: Engine, object_id: int, solution: OrbitSolution,
                   observation_ids: Sequence[int] | np.ndarray,
                   settings: Mapping[str, Any] | None = None) -> int:
    """Store ``solution`` of object ``object_id`` as its next version; returns the solution id.

    ``observation_ids``: the catalog ids of the observations the fit was given, in the order of
    the fitted batch (as :func:`observations_with_ids` returns them); each becomes a residual row
    (null values where the fit produced none, e.g. a failed fit). ``settings``: what the fit was
    asked to do (non-grav model, excluded observation ids, requested epoch, ...), stored as JSON.
    The stored ``observation_set_hash`` is that of the non-deprecated ones among those rows (the
    definition :func:`objects_to_fit` compares with). One transaction: all or
    nothing. Raises LookupError when the object or one of the observations is not in the catalog,
    ValueError when the residuals do not match the ids.
    """
    ids = np.asarray(observation_ids, dtype=np.int64).ravel()
    if len(np.unique(ids)) != len(ids):
        raise ValueError("observation_ids repeat an id")
    s, r, obs = m.OrbitSolutionRecord.__table__, m.OrbitResidual.__table__, m.observations_table
    data = solution.as_json()
    with write_transaction(engine) as conn:
        _lock_object(conn, object_id)
        # the object's rows, filtered here (an IN list of 10^4+ ids is slow or too long)
        rows = conn.execute(sa.select(obs.c.id, *(obs.c[n] for n in HASH_COLUMNS))
                            .where(obs.c.object_id == object_id)).all()
        by_id = {row[0]: row[1:] for row in rows}
        missing = [int(i) for i in ids if int(i) not in by_id]
        if missing:
            raise LookupError(f"observations {missing[:5]} ({len(missing)} in all) are not "
                              f"observations of object {object_id} in the catalog")
        fitted = [by_id[int(i)] for i in ids]
        t_idx, s_idx = HASH_COLUMNS.index("obsTime_mjd"), HASH_COLUMNS.index("stn")
        d_idx = HASH_COLUMNS.index("deprecated")
        set_hash = _hash_rows([row for row in fitted if not row[d_idx]])
        times = np.array([row[t_idx] for row in fitted], dtype=float)
        stations = np.array([row[s_idx] for row in fitted], dtype=object)
        residual_rows = _residual_rows(solution, ids, times, stations)

        previous = conn.execute(sa.select(s.c.id, s.c.version).where(s.c.object_id == object_id)
                                .order_by(s.c.version.desc()).limit(1)).first()
        values: dict[str, Any] = {
            "object_id": object_id,
            "version": 1 if previous is None else previous.version + 1,
            "created_at": _utcnow(),
            "status": solution.status,
            "message": solution.message or "",
            "observation_set_hash": set_hash,
            "code_version": solution.code_version or "",
            "settings": _jsonable(dict(settings or {})),
            "iterations": int(solution.iterations),
            "runtime_s": float(solution.runtime_s),
            "ranging": None if solution.ranging is None else _jsonable(solution.ranging),
            "supersedes": None if previous is None else previous.id,
        }
        for key in _JSON_FIELDS:
            values[key] = _jsonable(data[key])
        for key in _FLOAT_FIELDS:
            values[key] = _float_or_none(data[key])
        for key in _INT_FIELDS:
            values[key] = int(data[key])
        solution_id = conn.execute(sa.insert(s).values(**values).returning(s.c.id)).scalar_one()
        if residual_rows:
            for row in residual_rows:
                row["solution_id"] = solution_id
            conn.execute(sa.insert(r), residual_rows)
    return int(solution_id)


# -- reading solutions -----------------------------------------------------------------------------

def _as_dict(row: Mapping[str, Any], designation: str) -> dict[str, Any]:
    """A stored row in the shape of :meth:`OrbitSolution.as_json`, plus id, object_id, version,
    created_at (aware UTC), settings and supersedes."""
    created = row["created_at"]
    if created is not None and created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=dt.UTC)
    out: dict[str, Any] = {
        "id": row["id"],
        "object_id": row["object_id"],
        "version": row["version"],
        "created_at": created,
        "designation": designation,
        "status": row["status"],
        "message": row["message"],
        "epoch_tdb_jd": row["epoch_tdb_jd"],
        "state_icrf_au": row["state_icrf_au"],
        "covariance": row["covariance"],
        "elements": row["elements"] or {},
        "sigmas": row["sigmas"] or {},
        "nongrav": row["nongrav"] or {},
        "nongrav_sigmas": row["nongrav_sigmas"] or {},
        "rms_arcsec": row["rms_arcsec"],
        "rms_normalized": row["rms_normalized"],
        "chi2": row["chi2"],
        "n_obs": row["n_obs"],
        "n_used": row["n_used"],
        "n_rejected": row["n_rejected"],
        "H": row["H"],
        "moid_au": row["moid_au"],
        "close_approaches": row["close_approaches"] or [],
        "iterations": row["iterations"],
        "runtime_s": row["runtime_s"],
        "observation_set_hash": row["observation_set_hash"],
        "code_version": row["code_version"],
        "settings": row["settings"] or {},
        "supersedes": row["supersedes"],
    }
    if row["ranging"] is not None:
        out["ranging"] = row["ranging"]
    return out


def residuals_of(bind: Bind, solution_id: int) -> list[dict[str, Any]]:
    """A solution's residual rows in time order, with their observations' provenance:
    observation_id, submission_id, line (in the submitted file), obs_time_mjd_utc, stn, then
    ra_arcsec, dec_arcsec, sigma_ra_arcsec, sigma_dec_arcsec, chi2, rejected, used."""
    r, obs = m.OrbitResidual.__table__, m.observations_table
    query = (sa.select(r.c.observation_id, obs.c.submission_id, obs.c.line,
                       obs.c.obsTime_mjd.label("obs_time_mjd_utc"), obs.c.stn, r.c.ra_arcsec,
                       r.c.dec_arcsec, r.c.sigma_ra_arcsec, r.c.sigma_dec_arcsec, r.c.chi2,
                       r.c.rejected, r.c.used)
             .join(obs, obs.c.id == r.c.observation_id)
             .where(r.c.solution_id == solution_id)
             .order_by(obs.c.obsTime_mjd, obs.c.id))
    return _run(bind, lambda conn: [dict(x) for x in conn.execute(query).mappings()])


def solution_submissions(bind: Bind, solution_id: int) -> dict[int, int]:
    """submission id → how many of the solution's observations came from it (the observation
    set → submissions chain)."""
    r, obs = m.OrbitResidual.__table__, m.observations_table
    query = (sa.select(obs.c.submission_id, sa.func.count())
             .join(obs, obs.c.id == r.c.observation_id)
             .where(r.c.solution_id == solution_id)
             .group_by(obs.c.submission_id).order_by(obs.c.submission_id))
    return _run(bind, lambda conn: dict(conn.execute(query).all()))


def _designation(conn: Connection, object_id: int) -> str:
    o = m.Object.__table__
    return conn.execute(sa.select(o.c.designation).where(o.c.id == object_id)).scalar_one()


def latest_solution(bind: Bind, designation: str, ok_only: bool = True,
                    residuals: bool = False) -> dict[str, Any] | None:
    """The object's newest solution (``ok_only``: newest *converged* one — a failed refit leaves
    the previous good solution current) as a dict (see :func:`_as_dict`), with ``residuals``
    (:func:`residuals_of`) if asked; None if it has none. Raises :class:`UnknownDesignation`."""
    s = m.OrbitSolutionRecord.__table__

    def run(conn: Connection) -> dict[str, Any] | None:
        object_id = _object_id(conn, designation)
        query = sa.select(s).where(s.c.object_id == object_id)
        if ok_only:
            query = query.where(s.c.status == CONVERGED)
        row = conn.execute(query.order_by(s.c.version.desc()).limit(1)).mappings().first()
        if row is None:
            return None
        out = _as_dict(row, _designation(conn, object_id))
        if residuals:
            out["residuals"] = residuals_of(conn, row["id"])
        return out

    return _run(bind, run)


def solution_history(bind: Bind, designation: str) -> list[dict[str, Any]]:
    """Every stored solution of the object, oldest version first (without residuals).
    Raises :class:`UnknownDesignation`."""
    s = m.OrbitSolutionRecord.__table__

    def run(conn: Connection) -> list[dict[str, Any]]:
        object_id = _object_id(conn, designation)
        name = _designation(conn, object_id)
        rows = conn.execute(sa.select(s).where(s.c.object_id == object_id)
                            .order_by(s.c.version)).mappings().all()
        return [_as_dict(row, name) for row in rows]

    return _run(bind, run)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def solution_from_dict(data: Mapping[str, Any]) -> OrbitSolution:
    """An :class:`OrbitSolution` from a stored solution dict (or an ``as_json`` dict), e.g. to
    propagate it or start a refit from it. Residuals are not rebuilt."""
    covariance = data.get("covariance")
    return OrbitSolution(
        designation=data["designation"],
        status=data["status"],
        message=data.get("message") or "",
        epoch_tdb_jd=_nan(data.get("epoch_tdb_jd")),
        state_icrf_au=np.array([_nan(v) for v in (data.get("state_icrf_au") or [None] * 6)]),
        covariance=(None if covariance is None
                    else np.array([[_nan(v) for v in row] for row in covariance])),
        nongrav={k: float(v) for k, v in (data.get("nongrav") or {}).items()},
        nongrav_sigmas={k: float(v) for k, v in (data.get("nongrav_sigmas") or {}).items()},
        elements={k: _nan(v) for k, v in (data.get("elements") or {}).items()
                  if k in ELEMENT_KEYS},
        sigmas={k: _nan(v) for k, v in (data.get("sigmas") or {}).items() if k in ELEMENT_KEYS},
        rms_arcsec=_nan(data.get("rms_arcsec")),
        rms_normalized=_nan(data.get("rms_normalized")),
        chi2=_nan(data.get("chi2")),
        n_obs=int(data.get("n_obs") or 0),
        n_used=int(data.get("n_used") or 0),
        n_rejected=int(data.get("n_rejected") or 0),
        H=data.get("H"),
        moid_au=data.get("moid_au"),
        close_approaches=list(data.get("close_approaches") or []),
        iterations=int(data.get("iterations") or 0),
        runtime_s=float(data.get("runtime_s") or 0.0),
        observation_set_hash=data.get("observation_set_hash") or "",
        code_version=data.get("code_version") or "",
        ranging=data.get("ranging"),
    )


def load_solution(bind: Bind, solution_id: int) -> OrbitSolution:
    """The stored solution ``solution_id`` as an :class:`OrbitSolution` (without residuals)."""
    s = m.OrbitSolutionRecord.__table__

    def run(conn: Connection) -> OrbitSolution:
        row = conn.execute(sa.select(s).where(s.c.id == solution_id)).mappings().first()
        if row is None:
            raise LookupError(f"no orbit solution {solution_id}")
        return solution_from_dict(_as_dict(row, _designation(conn, row["object_id"])))

    return _run(bind, run)
