"""The dashboard: server-rendered HTML pages over the catalog (Jinja2, every asset local).

Pages
-----
* ``/``: the risk list — sortable (``?sort=<column>&order=asc|desc``) and filterable (``?q=``
  part of a designation, ``?min_torino=``, ``?min_ip=``, ``?imminent=1``) on the server, so it
  works without JavaScript (``/static/dashboard.js`` only sorts and filters the rows in place);
  rows coloured by their Torino zone; links to the object pages and to ``/v1/risk-list`` as
  JSON, CSV and VOTable; the latest removals below, all of them at ``/removed``.
* ``/objects/{designation}``: the orbit (elements ± 1σ), its versions, residuals, b-planes,
  impact-probability history, virtual impactors, close approaches, the impact corridor of an
  imminent impactor, the object's alerts, and — for a logged-in scientist or admin — a form to
  re-fit without chosen observations (:mod:`neodefense.refit`, run in the background; the new
  version appears in the versions table, the old ones stay).
* ``/observatories/{name}``: an observatory account's submissions, receipts and follow-up list
  (the account itself, scientists and admins).
* ``/contributions``: what every observatory's data went into (public).
* ``/login`` (GET form, POST token → cookie ``neodefense_token``, HttpOnly, SameSite=Strict) and
  ``/logout`` (POST).

Security: Jinja autoescaping on everything (plots are SVG strings the plot module escapes);
state-changing forms are POST only and carry a CSRF token — for a logged-in session
HMAC-SHA256 keyed by the session's secret token over its token id (:func:`csrf_token`: nothing
to store, and a page of another site can neither read nor compute it); the login form a random
value that must match a SameSite=Strict cookie set with the form. Pages send a
Content-Security-Policy allowing only this origin (no CDN, no external request).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import jinja2
import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy import Engine

from neodefense.api.app import TEMPLATES_DIR
from neodefense.catalog import queries

router = APIRouter(include_in_schema=False)
logger = logging.getLogger(__name__)

#: the session cookie (the API token itself; HttpOnly, SameSite=Strict)
SESSION_COOKIE = "neodefense_token"
#: the login form's CSRF cookie (random; must equal the form's hidden field)
LOGIN_CSRF_COOKIE = "neodefense_login_csrf"
SESSION_MAX_AGE_S = 12 * 3600
#: who may re-fit an orbit (admins pass every role check)
REFIT_ROLES = ("scientist",)
#: how many removals the risk-list page shows (all at /removed)
REMOVALS_ON_RISK_PAGE = 10
#: the longest free-text filter accepted
MAX_QUERY_CHARS = 64

#: Torino scale zones (Binzel 2000; the CNEOS chart): value range → colour name and CSS colour.
TORINO_ZONES: tuple[tuple[int, int, str, str], ...] = (
    (0, 0, "white", "#ffffff"),
    (1, 1, "green", "#00ff00"),
    (2, 4, "yellow", "#ffff00"),
    (5, 7, "orange", "#ffa500"),
    (8, 10, "red", "#ff0000"),
)
TORINO_MEANINGS = {
    "white": "no hazard", "green": "normal", "yellow": "meriting attention by astronomers",
    "orange": "threatening", "red": "certain collision",
}

#: risk-list columns: key → (header, sort key in the rows, numeric?)
RISK_COLUMNS: dict[str, tuple[str, str, bool]] = {
    "rank": ("rank", "rank", True),
    "designation": ("designation", "designation", False),
    "years": ("years", "first_year", True),
    "n_vi": ("VIs", "n_vi", True),
    "cumulative_ip": ("cum. IP", "cumulative_ip", True),
    "palermo_cum": ("PS cum", "palermo_cum", True),
    "palermo_max": ("PS max", "palermo_max", True),
    "torino_max": ("TS", "torino_max", True),
    "H": ("H", "H", True),
    "diameter_m": ("D (m)", "diameter_m", True),
    "v_inf_km_s": ("v∞ (km/s)", "v_inf_km_s", True),
    "last_obs_utc": ("last obs (UTC)", "last_obs_utc", False),
    "n_obs_used": ("obs used", "n_obs_used", True),
    "arc_days": ("arc (d)", "arc_days", True),
    "updated_utc": ("updated (UTC)", "updated_utc", False),
    "imminent": ("entry (UTC)", "entry_utc", False),
}

ELEMENT_LABELS = {"a_au": ("a", "au"), "e": ("e", ""), "i_deg": ("i", "deg"),
                  "node_deg": ("Ω", "deg"), "argperi_deg": ("ω", "deg"), "M_deg": ("M", "deg"),
                  "q_au": ("q", "au"), "tp_tdb_jd": ("tₚ", "TDB JD")}


# -- formatting ---------------------------------------------------------------------------------

def fmt(value: Any, spec: str = "") -> str:
    """``value`` formatted with ``spec``; '-' for None, NaN and infinities."""
    if value is None or value == "":
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def short_utc(value: Any, minutes: bool = True) -> str:
    """An ISO UTC time or datetime as '2008-10-07 02:45' (or the date alone); '-' if missing."""
    if not value:
        return "-"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d")
    text = str(value).replace("T", " ").rstrip("Z")
    return text[:16] if minutes else text[:10]


def torino_zone(value: Any) -> str:
    """The Torino zone name ('white', 'green', 'yellow', 'orange', 'red') of a rating."""
    try:
        rating = int(value or 0)
    except (TypeError, ValueError):
        rating = 0
    for low, high, name, _ in TORINO_ZONES:
        if low <= rating <= high:
            return name
    return "red" if rating > 10 else "white"


def tdb_jd_utc(value: Any) -> str:
    """A TDB Julian date as an ISO UTC string (seconds); '-' if missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    from neodefense import timescales

    return str(timescales.tdb_jd_to_utc_iso(float(value), precision=0)[0])


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=fmt, short_utc=short_utc, torino_zone=torino_zone,
                       tdb_jd_utc=tdb_jd_utc, quote=lambda v: urllib.parse.quote(str(v), safe=""))
    env.globals.update(TORINO_ZONES=TORINO_ZONES, TORINO_MEANINGS=TORINO_MEANINGS,
                       ELEMENT_LABELS=ELEMENT_LABELS)
    return env


templates = Jinja2Templates(env=_environment())

#: headers of every page: nothing but this origin, no framing, no sniffing
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# -- sessions, roles, CSRF ----------------------------------------------------------------------

def principal_of(request: Request) -> Any:
    """The logged-in principal (:class:`neodefense.catalog.access.Principal`) or None: the
    Authorization header or the session cookie, through :func:`neodefense.api.deps.
    current_principal`. An invalid or revoked cookie counts as logged out."""
    if "principal" in request.scope.get("state", {}):
        return request.state.principal
    from neodefense.api import deps

    try:
        principal = deps.current_principal(request)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        principal = None
    request.state.principal = principal
    return principal


def _session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def csrf_token(session_token: str, token_id: int) -> str:
    """The session's CSRF token: HMAC-SHA256 keyed by the secret session token, over its id."""
    return hmac.new(session_token.encode(), f"neodefense-csrf:{int(token_id)}".encode(),
                    hashlib.sha256).hexdigest()


def _csrf_for(request: Request, principal: Any) -> str:
    token = _session_token(request)
    if principal is None or token is None:
        return ""
    return csrf_token(token, principal.token_id)


def _check_csrf(request: Request, principal: Any, submitted: str) -> None:
    """403 unless ``submitted`` is the session's CSRF token. Requests authenticated by an
    Authorization header carry no ambient credential and need none."""
    if request.headers.get("authorization"):
        return
    expected = _csrf_for(request, principal)
    if not expected or not hmac.compare_digest(expected, submitted or ""):
        raise HTTPException(403, "the form has expired or did not come from this site: "
                                 "reload the page and try again")


def _may_refit(principal: Any) -> bool:
    return principal is not None and principal.has_role(*REFIT_ROLES)


def _local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site ('/x', not '//host' or 'http://…'), else
    ``default``: no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


# -- rendering ----------------------------------------------------------------------------------

def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Template ``name`` with the common context (principal, CSRF token, path)."""
    principal = principal_of(request)
    context.setdefault("title", "neodefense")
    response = templates.TemplateResponse(
        request, name, {"principal": principal, "csrf": _csrf_for(request, principal),
                        "path": request.url.path, **context}, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status_code: int, message: str, **context: Any) -> HTMLResponse:
    titles = {400: "Bad request", 401: "Not logged in", 403: "Forbidden", 404: "Not found",
              409: "Conflict"}
    return render(request, "error.html", status_code=status_code,
                  title=titles.get(status_code, "Error"), status=status_code, message=message,
                  **context)


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _empty_plot(name: str, message: str) -> Markup:
    """The plot module's 'nothing to draw' figure saying ``message``."""
    from neodefense.api import plots

    return Markup(plots.empty_svg(name, message))


def _plot(name: str, *args: Any) -> Markup:
    """An inline SVG from :mod:`neodefense.api.plots` (``name`` + '_svg'), trusted markup (the
    plot module escapes its text). A plot that fails is logged and replaced by a note: one
    broken figure must not take the page down."""
    from neodefense.api import plots

    try:
        return Markup(getattr(plots, f"{name}_svg")(*args))
    except Exception as exc:  # noqa: BLE001
        logger.exception("%s plot", name)
        return _empty_plot(name, f"the plot could not be drawn ({type(exc).__name__})")


# -- risk list ----------------------------------------------------------------------------------

def imminent_entries(engine: Engine, assessment_ids: Sequence[int]) -> dict[int, str]:
    """assessment id → earliest predicted atmospheric entry time (ISO UTC) of its virtual
    impactors that have one (imminent impactors); assessments without one are absent."""
    from neodefense.catalog import models as m

    v = m.VirtualImpactorRecord.__table__
    out: dict[int, str] = {}
    ids = [int(i) for i in assessment_ids]
    with engine.connect() as conn:
        for start in range(0, len(ids), 1000):
            query = (sa.select(v.c.assessment_id, v.c.entry, v.c.date_utc)
                     .where(v.c.assessment_id.in_(ids[start:start + 1000]),
                            v.c.entry.is_not(None)))
            for assessment_id, entry, date_utc in conn.execute(query):
                when = str((entry or {}).get("time_utc") or date_utc or "")
                if assessment_id not in out or when < out[assessment_id]:
                    out[assessment_id] = when
    return out


def _parse_filters(params: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The risk-list filters from query parameters, and the errors of the malformed ones."""
    errors: list[str] = []
    filters: dict[str, Any] = {"q": (params.get("q") or "").strip()[:MAX_QUERY_CHARS],
                               "min_torino": None, "min_ip": None,
                               "imminent": (params.get("imminent") or "") in ("1", "true", "on")}
    text = (params.get("min_torino") or "").strip()
    if text:
        try:
            filters["min_torino"] = int(text)
            if not 0 <= filters["min_torino"] <= 10:
                raise ValueError
        except ValueError:
            filters["min_torino"] = None
            errors.append("min_torino must be a whole number from 0 to 10")
    text = (params.get("min_ip") or "").strip()
    if text:
        try:
            filters["min_ip"] = float(text)
            if not 0.0 <= filters["min_ip"] <= 1.0:
                raise ValueError
        except ValueError:
            filters["min_ip"] = None
            errors.append("min_ip must be a probability from 0 to 1 (e.g. 1e-6)")
    return filters, errors


def _matches(row: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    q = filters["q"].lower().replace(" ", "")
    if q and q not in str(row["designation"]).lower().replace(" ", ""):
        return False
    if filters["min_torino"] is not None and (row["torino_max"] or 0) < filters["min_torino"]:
        return False
    if filters["min_ip"] is not None and (row["cumulative_ip"] or 0.0) < filters["min_ip"]:
        return False
    return not (filters["imminent"] and not row.get("entry_utc"))


def sort_rows(rows: list[dict[str, Any]], column: str, descending: bool) -> list[dict[str, Any]]:
    """Rows sorted by risk-list ``column`` (a key of :data:`RISK_COLUMNS`), ties by rank; missing
    values last in either order."""
    key = RISK_COLUMNS[column][1]
    present = [r for r in rows if r.get(key) not in (None, "")]
    missing = [r for r in rows if r.get(key) in (None, "")]
    present.sort(key=lambda r: r["rank"])  # ties keep the rank order in either direction
    present.sort(key=lambda r: r[key].lower() if isinstance(r[key], str) else r[key],
                 reverse=descending)
    return present + missing


def _risk_rows(engine: Engine) -> list[dict[str, Any]]:
    from neodefense.catalog import alerts as catalog_alerts

    rows = catalog_alerts.risk_list(engine)
    entries = imminent_entries(engine, [r["assessment_id"] for r in rows])
    for row in rows:
        row["zone"] = torino_zone(row["torino_max"])
        row["entry_utc"] = entries.get(row["assessment_id"])
    return rows


def _sort_links(params: Mapping[str, str], column: str, descending: bool) -> dict[str, str]:
    """column → URL of the risk list sorted by it (the current column's order flipped), the
    filters kept."""
    kept = {k: params[k] for k in ("q", "min_torino", "min_ip", "imminent") if params.get(k)}
    links = {}
    for key in RISK_COLUMNS:
        order = ("asc" if descending else "desc") if key == column else "asc"
        links[key] = "/?" + urllib.parse.urlencode({**kept, "sort": key, "order": order})
    return links


@router.get("/", response_class=HTMLResponse)
def risk_list_page(request: Request) -> HTMLResponse:
    from neodefense.catalog import alerts as catalog_alerts

    params = request.query_params
    filters, errors = _parse_filters(params)
    column = params.get("sort") or "rank"
    if column not in RISK_COLUMNS:
        errors.append(f"cannot sort by that column; choose one of {', '.join(RISK_COLUMNS)}")
        column = "rank"
    order = (params.get("order") or "asc").lower()
    if order not in ("asc", "desc"):
        errors.append("order must be asc or desc")
        order = "asc"
    engine = _engine(request)
    everything = _risk_rows(engine)
    rows = sort_rows([r for r in everything if _matches(r, filters)], column, order == "desc")
    removed = catalog_alerts.removals(engine)
    return render(request, "risk_list.html", status_code=400 if errors else 200,
                  title="Risk list", rows=rows, n_total=len(everything), filters=filters,
                  errors=errors, sort=column, order=order, columns=RISK_COLUMNS,
                  sort_links=_sort_links(params, column, order == "desc"),
                  removed=removed[:REMOVALS_ON_RISK_PAGE], n_removed=len(removed))


@router.get("/removed", response_class=HTMLResponse)
def removed_page(request: Request) -> HTMLResponse:
    from neodefense.catalog import alerts as catalog_alerts

    return render(request, "removed.html", title="Removed from the risk list",
                  removed=catalog_alerts.removals(_engine(request)))


# -- object page ----------------------------------------------------------------------------------

class RefitRegistry:
    """The dashboard's re-fits: at most one running per object; the last outcome of each kept
    for the object page (in memory: a restart forgets them, the catalog keeps the versions)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, dict[str, Any]] = {}

    def start(self, object_id: int, job: dict[str, Any]) -> bool:
        """Record ``job`` as running; False if one is already running for the object."""
        with self._lock:
            if self._jobs.get(object_id, {}).get("state") == "running":
                return False
            self._jobs[object_id] = {**job, "state": "running", "started": time.time()}
            return True

    def finish(self, object_id: int, **outcome: Any) -> None:
        with self._lock:
            self._jobs[object_id] = {**self._jobs.get(object_id, {}), **outcome,
                                     "finished": time.time()}

    def get(self, object_id: int) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(object_id)
            return None if job is None else dict(job)


_REGISTRY_LOCK = threading.Lock()


def refits(request: Request) -> RefitRegistry:
    """The application's :class:`RefitRegistry` (created on first use)."""
    state = request.app.state
    with _REGISTRY_LOCK:
        if not hasattr(state, "dashboard_refits"):
            state.dashboard_refits = RefitRegistry()
        return state.dashboard_refits


def _residual_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The residual table: each row with its state ('used', 'rejected', 'excluded', 'unused')."""
    solution = doc.get("solution") or {}
    excluded = {int(v) for v in ((solution.get("settings") or {}).get("exclude") or [])}
    rows = []
    for r in doc.get("residuals") or []:
        row = dict(r)
        oid = int(r["observation_id"])
        row["excluded"] = oid in excluded
        row["state"] = ("excluded" if oid in excluded else "rejected" if r.get("rejected")
                        else "used" if r.get("used") else "unused")
        rows.append(row)
    return rows


def _imminent_vis(assessment: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Virtual impactors with a predicted atmospheric entry, each with its corridor map."""
    out = []
    for vi in (assessment or {}).get("virtual_impactors") or []:
        if vi.get("entry"):
            out.append({**vi, "map": _plot("corridor_map", vi["entry"], vi.get("corridor"))})
    return out


def _object_plots(doc: Mapping[str, Any]) -> dict[str, Any]:
    assessment = doc.get("assessment") or {}
    residuals = doc.get("residuals") or []
    planes = assessment.get("target_planes") or []
    return {
        "residuals": (_plot("residuals", residuals) if residuals
                      else _empty_plot("residuals", "no orbit solution with residuals")),
        "bplanes": [{"plane": p, "svg": _plot("bplane", p)} for p in planes],
        "bplane_empty": (None if planes else _empty_plot(
            "bplane", "no target plane: no virtual impactor or close approach was assessed")),
        "ip_history": (_plot("ip_history", doc["ip_history"]) if doc.get("ip_history")
                       else _empty_plot("ip_history", "no impact assessment yet")),
    }


def _versions(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    current = (doc.get("solution") or {}).get("id")
    out = []
    for version in reversed(doc.get("solutions") or []):
        settings = version.get("settings") or {}
        out.append({**version, "current": version["id"] == current,
                    "n_excluded": len(settings.get("exclude") or []),
                    "requested_by": settings.get("requested_by") or "",
                    "nongrav": settings.get("nongrav") or ""})
    return out


def _object_document(engine: Engine, designation: str) -> dict[str, Any]:
    from neodefense.api.read import object_document

    return object_document(engine, designation)


@router.get("/objects/{designation:path}", response_class=HTMLResponse)
def object_page(designation: str, request: Request) -> HTMLResponse:
    try:
        doc = _object_document(_engine(request), designation)
    except queries.UnknownDesignation:
        return error_page(request, 404, "No object in the catalog goes by this designation.",
                          designation=designation)
    principal = principal_of(request)
    from neodefense.orbits.fit import NONGRAV_MODELS

    solution = doc.get("solution") or {}
    return render(
        request, "object.html", title=doc["designation"], doc=doc, solution=solution,
        assessment=doc.get("assessment"), plots=_object_plots(doc),
        residual_rows=_residual_rows(doc), versions=_versions(doc),
        imminent=_imminent_vis(doc.get("assessment")), may_refit=_may_refit(principal),
        refit=refits(request).get(int(doc["object_id"])), nongrav_models=list(NONGRAV_MODELS),
        current_nongrav=(solution.get("settings") or {}).get("nongrav") or "none",
        zone=torino_zone((doc.get("risk") or {}).get("torino_max")),
        notice=request.query_params.get("refit"))


def _run_refit(registry: RefitRegistry, engine: Engine, object_id: int, designation: str,
               exclude: list[int], requested_by: str, nongrav: str | None,
               time_limit_s: float) -> None:
    """The background job: :func:`neodefense.refit.refit`, its outcome kept in ``registry``."""
    from neodefense.refit import refit

    try:
        result = refit(engine, designation, exclude, requested_by, nongrav=nongrav,
                       time_limit_s=time_limit_s)
    except Exception as exc:  # noqa: BLE001 - reported on the object page
        registry.finish(object_id, state="failed", message=f"{type(exc).__name__}: {exc}")
        return
    registry.finish(object_id, state="done", result=result,
                    message=f"version {result['version']}: {result['status']}")


def _requested_by(principal: Any) -> str:
    who = getattr(principal, "token_name", "") or f"token {principal.token_id}"
    return f"{principal.role}:{who}"


@router.post("/objects/{designation:path}/refit", response_class=HTMLResponse)
def refit_form(designation: str, request: Request, background: BackgroundTasks,
               exclude: Annotated[list[int], Form()] = [],  # noqa: B006 - FastAPI's default
               nongrav: Annotated[str, Form()] = "",
               csrf: Annotated[str, Form()] = "") -> Response:
    """Start a re-fit of the object without the observations checked in the residual table."""
    principal = principal_of(request)
    page = f"/objects/{urllib.parse.quote(designation, safe='')}"
    if principal is None:
        return RedirectResponse("/login?" + urllib.parse.urlencode({"next": page}), 303)
    if not _may_refit(principal):
        return error_page(request, 403, "Only scientists and admins may re-fit an orbit.",
                          login_link=page)
    try:
        _check_csrf(request, principal, csrf)
    except HTTPException as exc:
        return error_page(request, exc.status_code, exc.detail, login_link=page)
    engine = _engine(request)
    try:
        info = queries.object_info(engine, designation)
    except queries.UnknownDesignation:
        return error_page(request, 404, "No object in the catalog goes by this designation.")
    from neodefense.catalog import solutions
    from neodefense.orbits.fit import NONGRAV_MODELS

    if nongrav and nongrav not in NONGRAV_MODELS:
        return error_page(request, 400, f"unknown non-gravitational model {nongrav!r}")
    _, ids = solutions.observations_with_ids(engine, info["id"])
    unknown = sorted(set(exclude) - {int(i) for i in ids})
    if unknown:
        return error_page(request, 400, f"observations {unknown[:10]} are not current "
                                        f"observations of {info['designation']}")
    registry = refits(request)
    job = {"exclude": sorted(set(exclude)), "requested_by": _requested_by(principal)}
    if not registry.start(int(info["id"]), job):
        return error_page(request, 409, "A re-fit of this object is already running.")
    time_limit_s = float(request.app.state.settings.raw.get("orbits", {}).get("time_limit_s",
                                                                             120.0))
    background.add_task(_run_refit, registry, engine, int(info["id"]), info["designation"],
                        job["exclude"], job["requested_by"], nongrav or None, time_limit_s)
    page = f"/objects/{urllib.parse.quote(info['designation'], safe='')}"
    return RedirectResponse(f"{page}?refit=started#versions", 303)


# -- observatories and contributions ---------------------------------------------------------------

#: submissions listed on an observatory page, and how many of them show their receipt
SUBMISSIONS_ON_PAGE = 100
RECEIPTS_ON_PAGE = 20
#: objects of a station's follow-up list shown on its observatory page
FOLLOWUP_ON_PAGE = 10


def _followup_for(request: Request, stations: Sequence[str]) -> list[dict[str, Any]]:
    """Per station: the link to ``/v1/followup?stn=`` and the list itself
    (:func:`neodefense.followup.followup_plan`, the first :data:`FOLLOWUP_ON_PAGE` objects), or
    why it could not be made (a station without a fixed site, …)."""
    from neodefense import followup

    options = followup.FollowupSettings.from_mapping(
        request.app.state.settings.raw.get("followup"))
    out = []
    for stn in sorted(stations):
        entry: dict[str, Any] = {"stn": stn, "url": "/v1/followup?" + urllib.parse.urlencode(
            {"stn": stn}), "plan": None, "error": ""}
        try:
            entry["plan"] = followup.followup_plan(_engine(request), stn, None, options,
                                                   limit=FOLLOWUP_ON_PAGE)
        except (LookupError, ValueError, RuntimeError) as exc:  # the link still works
            entry["error"] = str(exc)
        out.append(entry)
    return out


@router.get("/observatories/{name}", response_class=HTMLResponse)
def observatory_page(name: str, request: Request) -> Response:
    from neodefense.catalog import access

    principal = principal_of(request)
    here = f"/observatories/{urllib.parse.quote(name, safe='')}"
    if principal is None:
        return RedirectResponse("/login?" + urllib.parse.urlencode({"next": here}), 303)
    if principal.observatory != name and not principal.sees_everything:
        return error_page(request, 403, "An observatory account sees only its own page: log in "
                                        "with this observatory's token, or as a scientist.",
                          login_link=here)
    engine = _engine(request)
    account = access.account(engine, name)
    if account is None:
        return error_page(request, 404, "No observatory account has this name.")
    submissions = access.list_submissions(engine, account["id"], limit=SUBMISSIONS_ON_PAGE)
    for item in submissions[:RECEIPTS_ON_PAGE]:
        item["receipt"] = (access.submission_progress(engine, item["id"]) or {}).get("receipt")
    return render(request, "observatory.html", title=f"Observatory {name}", account=account,
                  submissions=submissions, followup=_followup_for(request, account["stations"]))


@router.get("/contributions", response_class=HTMLResponse)
def contributions_page(request: Request) -> HTMLResponse:
    from neodefense.catalog import access

    rows = access.contributions(_engine(request))
    return render(request, "contributions.html", title="Contributions",
                  accounts=[r for r in rows if r["kind"] == "account"],
                  stations=[r for r in rows if r["kind"] == "station"])


# -- login ------------------------------------------------------------------------------------------

def _set_cookie(response: Response, request: Request, name: str, value: str,
                max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    response = render(request, "login.html", title="Log in", login_csrf=nonce,
                      next=_local_path(request.query_params.get("next")))
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, nonce, 3600)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form()] = "",
          login_csrf: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:  # noqa: A002
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not expected or not hmac.compare_digest(expected, login_csrf):
        return error_page(request, 403, "The login form has expired or did not come from this "
                                        "site: open the login page again.")
    from neodefense.catalog import access

    principal = access.authenticate(_engine(request), token.strip())
    if principal is None:
        nonce = secrets.token_urlsafe(24)
        response = render(request, "login.html", status_code=401, title="Log in",
                          login_csrf=nonce, next=_local_path(next),
                          error="Unknown or revoked token.")
        _set_cookie(response, request, LOGIN_CSRF_COOKIE, nonce, 3600)
        return response
    response = RedirectResponse(_local_path(next), 303)
    _set_cookie(response, request, SESSION_COOKIE, token.strip(), SESSION_MAX_AGE_S)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    principal = principal_of(request)
    if principal is not None:
        try:
            _check_csrf(request, principal, csrf)
        except HTTPException as exc:
            return error_page(request, exc.status_code, exc.detail)
    response = RedirectResponse("/", 303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
