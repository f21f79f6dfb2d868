"""The FastAPI application over one catalog: :func:`create_app`.

Routers (one module each): :mod:`.read` (open read API), :mod:`.submissions` (observatories),
:mod:`.followup`, :mod:`.subscriptions`, :mod:`.admin`, :mod:`.dashboard` (HTML pages). Static
assets are served from ``api/static`` (nothing from a CDN: Swagger UI for /docs is vendored in
``static/swagger-ui`` from the npm package swagger-ui-dist). OpenAPI at /docs and /openapi.json.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from neodefense import __version__, config
from neodefense.catalog import db
from neodefense.dynamics import ephemeris

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"


def create_app(settings: config.Settings | None = None, catalog_url: str | None = None, *,
               engine: Engine | None = None) -> FastAPI:
    """The application over the catalog at ``catalog_url`` (default: the settings' catalog), or
    over an already connected ``engine`` (tests). The schema is brought up to date on start."""
    from neodefense.api import admin, dashboard, followup, read, submissions, subscriptions

    settings = settings or config.load()
    if engine is None:
        engine = db.connect(catalog_url or settings.catalog_url)
    app = FastAPI(title="neodefense", version=__version__, docs_url=None, redoc_url=None,
                  description="Open planetary-defence pipeline: observations in, impact risk "
                              "and alerts out. The read API needs no authentication.")
    ephemeris.preload()  # before any request thread touches DE440 (lazy loads are not thread-safe)
    app.state.engine = engine
    app.state.settings = settings
    for module in (read, submissions, followup, subscriptions, admin, dashboard):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        """The OpenAPI explorer with Swagger UI served from /static (no CDN)."""
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json",
                                   title="neodefense API",
                                   swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger-ui/favicon-32x32.png")

    return app
