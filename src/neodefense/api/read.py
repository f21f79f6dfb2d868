"""The open read API: no authentication, the results the project exists to publish.

- ``GET /v1/risk-list``: the current risk list (JSON; ``?format=csv`` or ``votable``, or the
  ``Accept`` header ``text/csv`` / ``application/x-votable+xml``), ranked by cumulative Palermo.
- ``GET /v1/objects/{designation}``: everything about one object (any alias): the current orbit
  solution with covariance and residuals, its versions, the current impact assessment with its
  virtual impactors and target planes, the impact-probability history, close approaches, alerts.
- ``GET /v1/alerts`` (``?since=``, ``?designation=``, ``?limit=``), ``GET /v1/alerts/{alert_id}``
  (JSON, or the VOEvent document with ``?format=voevent`` or ``Accept: application/xml``) and
  ``GET /v1/alerts/{alert_id}.xml`` (the VOEvent document).
- ``GET /v1/removed``: removals from the risk list, newest first, with their reasons.

Every JSON answer is strict JSON: NaN and infinities become null, times are ISO 8601 UTC.
Reads are not logged; refused ones (404, 422, ...) leave an api_audit row like every refusal.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine

from neodefense import __version__
from neodefense.api.deps import AuditedRoute, get_engine
from neodefense.catalog import alerts as catalog_alerts
from neodefense.catalog import assessments, queries, solutions

router = APIRouter(tags=["open data"], route_class=AuditedRoute)

CSV_TYPE = "text/csv; charset=utf-8"
VOTABLE_TYPE = "application/x-votable+xml"
VOEVENT_TYPE = "application/xml"
FORMATS = ("json", "csv", "votable")
#: the longest designation accepted in a path (longer ones are not designations: 404 at once)
MAX_DESIGNATION_CHARS = 64

#: units of the risk-list columns in the VOTable (and the CSV header's documentation)
RISK_LIST_UNITS = {"H": "mag", "diameter_m": "m", "v_inf_km_s": "km/s", "arc_days": "d"}
RISK_LIST_DESCRIPTIONS = {
    "rank": "rank by cumulative Palermo scale, then cumulative impact probability",
    "designation": "the object's designation",
    "year_range": "years of the virtual impactors",
    "n_vi": "number of virtual impactors",
    "cumulative_ip": "cumulative impact probability (Earth and Moon)",
    "palermo_cum": "cumulative Palermo scale",
    "palermo_max": "largest Palermo scale of one virtual impactor",
    "torino_max": "largest Torino scale",
    "H": "absolute magnitude",
    "diameter_m": "estimated diameter",
    "v_inf_km_s": "hyperbolic excess speed of the most probable virtual impactor",
    "last_obs_utc": "time of the last observation used",
    "n_obs_used": "observations used in the orbit solution",
    "arc_days": "observed arc",
    "updated_utc": "when the assessment was made",
    "added_utc": "when the object joined the risk list",
}


# -- JSON --------------------------------------------------------------------------------------

def clean(value: Any) -> Any:
    """``value`` made strict JSON: NaN/inf → None, datetimes → ISO UTC, tuples → lists,
    numpy scalars → Python numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar
        return clean(value.item())
    return value


def json_response(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(clean(data), status_code=status_code)


def _wanted(request: Request, fmt: str | None, default: str = "json") -> str:
    """The format asked for: ``?format=`` first, then the Accept header."""
    if fmt:
        fmt = fmt.lower()
        if fmt not in FORMATS + ("voevent", "xml"):
            raise HTTPException(400, f"format must be one of {FORMATS}, got {fmt!r}")
        return fmt
    accept = request.headers.get("accept", "").lower()
    if "text/csv" in accept:
        return "csv"
    if "votable" in accept:
        return "votable"
    return default


# -- risk list ---------------------------------------------------------------------------------

def risk_list_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(catalog_alerts.RISK_LIST_COLUMNS),
                            extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(clean(rows))
    return out.getvalue()


def risk_list_votable(rows: list[dict[str, Any]]) -> bytes:
    """The risk list as a VOTable (astropy), one column per :data:`RISK_LIST_COLUMNS` entry with
    units and descriptions; missing values masked."""
    import numpy as np
    from astropy.io.votable import from_table
    from astropy.table import MaskedColumn, Table

    table = Table(meta={"description": "neodefense risk list (objects with virtual impactors)"})
    for name in catalog_alerts.RISK_LIST_COLUMNS:
        values = [r.get(name) for r in rows]
        present = [v for v in values if v is not None]
        if all(isinstance(v, bool) for v in present) and present:
            kind: Any = bool
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in present) and present:
            kind = np.int64
        elif all(isinstance(v, int | float) for v in present) and present:
            kind = np.float64
        else:
            kind = str
        mask = [v is None or (isinstance(v, float) and not math.isfinite(v)) for v in values]
        filler = "" if kind is str else 0
        data = [filler if m_ else v for v, m_ in zip(values, mask)]
        table[name] = MaskedColumn(np.array(data, dtype=object if kind is str else kind)
                                   .astype(str if kind is str else kind), mask=mask,
                                   unit=RISK_LIST_UNITS.get(name),
                                   description=RISK_LIST_DESCRIPTIONS.get(name, name))
    votable = from_table(table)
    out = io.BytesIO()
    votable.to_xml(out)
    return out.getvalue()


@router.get("/v1/risk-list", summary="The risk list (JSON, CSV or VOTable)")
def get_risk_list(request: Request, format: str | None = Query(None, description=  # noqa: A002
                  "json (default), csv or votable; or use the Accept header"),
                  engine: Engine = Depends(get_engine)) -> Response:
    rows = catalog_alerts.risk_list(engine)
    fmt = _wanted(request, format)
    if fmt == "csv":
        return Response(risk_list_csv(rows), media_type=CSV_TYPE,
                        headers={"Content-Disposition": 'inline; filename="risk-list.csv"'})
    if fmt == "votable":
        return Response(risk_list_votable(rows), media_type=VOTABLE_TYPE,
                        headers={"Content-Disposition": 'inline; filename="risk-list.vot"'})
    return json_response({
        "signature": {"source": "neodefense", "version": __version__},
        "generated_utc": dt.datetime.now(dt.UTC), "count": len(rows),
        "columns": list(catalog_alerts.RISK_LIST_COLUMNS), "data": rows})


# -- objects -----------------------------------------------------------------------------------

def _residual_row(row: Mapping[str, Any]) -> dict[str, Any]:
    from neodefense import timescales

    mjd = row["obs_time_mjd_utc"]
    out = dict(row)
    out["obs_time_mjd"] = mjd
    out["obs_time_utc"] = (str(timescales.utc_mjd_to_iso(float(mjd), 2)[0])
                           if mjd is not None else None)
    return out


def _history_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"assessment_id": row["id"], "version": row["version"],
            "created_utc": row["created_at"], "status": row["status"],
            "solution_id": row["solution_id"], "method": row["method"],
            "cumulative_ip": row["cumulative_ip"], "palermo_cum": row["palermo_cum"],
            "palermo_max": row["palermo_max"], "torino_max": row["torino_max"],
            "n_vi": row["n_vi"], "is_current": row["is_current"]}


def _solution_version(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "version", "created_at", "status", "message", "rms_arcsec", "n_obs", "n_used",
            "n_rejected", "epoch_tdb_jd", "observation_set_hash", "code_version", "settings",
            "supersedes")
    return {("created_utc" if k == "created_at" else k): row.get(k) for k in keys}


def _alert_summary(payload: Mapping[str, Any]) -> str:
    """What an alert said, in one line: its events' messages."""
    return " ".join(str(e.get("message", "")) for e in payload.get("events") or []
                     if e.get("message"))


def object_document(engine: Engine, designation: str) -> dict[str, Any]:
    """Everything public about one object (any of its designations), as plain data (the
    ``/v1/objects/{designation}`` answer before :func:`clean`). Raises
    :class:`~neodefense.catalog.queries.UnknownDesignation`."""
    if len(designation) > MAX_DESIGNATION_CHARS:
        raise queries.UnknownDesignation(designation)
    info = queries.object_info(engine, designation)
    name = info["designation"]
    solution = solutions.latest_solution(engine, name, residuals=True)
    residuals = [_residual_row(r) for r in (solution or {}).pop("residuals", [])] \
        if solution else []
    history = solutions.solution_history(engine, name)
    assessment = assessments.latest_assessment(engine, name)
    ip_history = [_history_row(r) for r in assessments.assessment_history(engine, name)]
    risk = next((r for r in catalog_alerts.risk_list(engine) if r["object_id"] == info["id"]),
                None)
    removed = catalog_alerts.removals(engine, designation=name)
    alerts = [{"alert_id": a["alert_id"], "issued_utc": a["issued_utc"], "kinds": a["kinds"],
               "sequence": a["sequence"], "summary": _alert_summary(a["payload"] or {})}
              for a in catalog_alerts.alerts(engine, designation=name)]
    close = (assessment or {}).get("close_approaches") or (solution or {}).get(
        "close_approaches") or []
    return {
        "designation": name, "object_id": info["id"], "name": info.get("name"),
        "permid": info.get("permid"), "provid": info.get("provid"),
        "aliases": info["aliases"], "observations": info["observations"],
        "solution": solution, "solutions": [_solution_version(s) for s in history],
        "residuals": residuals, "assessment": assessment, "ip_history": ip_history,
        "close_approaches": close, "risk": risk,
        "removed": removed[0] if removed else None, "alerts": alerts,
        "links": {"self": f"/v1/objects/{name}", "page": f"/objects/{name}",
                  "alerts": f"/v1/alerts?designation={name}"},
    }


@router.get("/v1/objects/{designation:path}", summary="One object: orbit, residuals, risk, history")
def get_object(designation: str, engine: Engine = Depends(get_engine)) -> JSONResponse:
    try:
        return json_response(object_document(engine, designation))
    except queries.UnknownDesignation:
        raise HTTPException(404, "no object goes by this designation") from None


# -- alerts and removals -----------------------------------------------------------------------

def _since(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    from neodefense.cli import since_utc

    try:
        return since_utc(text)
    except Exception as exc:  # argparse.ArgumentTypeError
        raise HTTPException(400, str(exc)) from None


@router.get("/v1/alerts", summary="Alerts in the order they were issued")
def get_alerts(since: str | None = Query(None, description="ISO UTC time or 24h, 7d, ..."),
               designation: str | None = Query(None, max_length=MAX_DESIGNATION_CHARS),
               limit: int = Query(1000, ge=1, le=10000),
               engine: Engine = Depends(get_engine)) -> JSONResponse:
    try:
        rows = catalog_alerts.alerts(engine, since=_since(since), designation=designation,
                                     limit=limit)
    except queries.UnknownDesignation:
        raise HTTPException(404, "no object goes by this designation") from None
    for row in rows:
        row["links"] = {"self": f"/v1/alerts/{row['alert_id']}",
                        "voevent": f"/v1/alerts/{row['alert_id']}.xml"}
    return json_response({"count": len(rows), "data": rows})


def _one_alert(engine: Engine, alert_id: str) -> dict[str, Any]:
    if len(alert_id) > MAX_DESIGNATION_CHARS:
        raise HTTPException(404, "no such alert")
    try:
        return catalog_alerts.alert(engine, alert_id)
    except LookupError:
        raise HTTPException(404, "no such alert") from None


@router.get("/v1/alerts/{alert_id}.xml", summary="One alert as a VOEvent 2.0 document",
            response_class=Response)
def get_alert_voevent(alert_id: str, engine: Engine = Depends(get_engine)) -> Response:
    return Response(_one_alert(engine, alert_id)["voevent"], media_type=VOEVENT_TYPE)


@router.get("/v1/alerts/{alert_id}", summary="One alert (JSON, or VOEvent XML)")
def get_alert(alert_id: str, request: Request, format: str | None = Query(  # noqa: A002
              None, description="json (default) or voevent; or Accept: application/xml"),
              engine: Engine = Depends(get_engine)) -> Response:
    record = _one_alert(engine, alert_id)
    accept = request.headers.get("accept", "").lower()
    if (format or "").lower() in ("voevent", "xml") or (
            format is None and "xml" in accept and "json" not in accept):
        return Response(record["voevent"], media_type=VOEVENT_TYPE)
    record.pop("deliveries", None)  # private: who subscribes is not public
    record["links"] = {"voevent": f"/v1/alerts/{alert_id}.xml"}
    return json_response(record)


@router.get("/v1/removed", summary="Removals from the risk list, newest first")
def get_removed(since: str | None = Query(None, description="ISO UTC time or 24h, 7d, ..."),
                engine: Engine = Depends(get_engine)) -> JSONResponse:
    rows = catalog_alerts.removals(engine, since=_since(since))
    return json_response({"count": len(rows), "data": rows})
