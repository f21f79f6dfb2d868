"""FastAPI dependencies shared by the routers: the catalog engine and settings, who is calling
(:func:`current_principal`, :func:`require_roles`), and the audit log (:func:`audit`,
:class:`AuditedRoute`).

Tokens come from ``Authorization: Bearer <token>`` or the dashboard's ``neodefense_token``
cookie. No token: anonymous (``None``), fine for the open read API. A token that is present but
malformed, unknown, revoked or of a deactivated account: 401 — never silently anonymous.

The dependencies that touch the database are plain ``def`` functions: FastAPI runs them in its
thread pool, so the event loop never waits on the database.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from neodefense import config
from neodefense.catalog import access
from neodefense.catalog.access import Principal

log = logging.getLogger(__name__)

#: The dashboard's login cookie (HttpOnly, SameSite=Strict; set by POST /login).
TOKEN_COOKIE = "neodefense_token"
#: Largest JSON body an :class:`AuditedRoute` with a body model reads (the submissions route
#: reads its body itself, capped by ``api.max_submission_bytes``).
MAX_JSON_BODY_BYTES = 1 << 20
#: Methods that change nothing: audited only when refused.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Default of ``api.audit_body_bytes``.
DEFAULT_AUDIT_BODY_BYTES = 65536


def get_engine(request: Request) -> Engine:
    """The catalog engine of the application."""
    return request.app.state.engine


def get_settings(request: Request) -> config.Settings:
    """The application's settings."""
    return request.app.state.settings


def api_setting(request: Request, key: str, default: Any) -> Any:
    """``settings.raw["api"][key]``, or ``default`` when the settings do not have it."""
    settings = getattr(request.app.state, "settings", None)
    section = settings.raw.get("api", {}) if settings is not None else {}
    return section.get(key, default)


def request_token(request: Request) -> str | None:
    """The token the request carries (bearer header first, then the login cookie), or None."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""  # "": refused, not anonymous
    return request.cookies.get(TOKEN_COOKIE) or None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def current_principal(request: Request) -> Principal | None:
    """Who is calling: None without a token, the token's :class:`Principal` with a valid one,
    401 with one that is not (bad, unknown, revoked). Kept in ``request.state.principal``."""
    token = request_token(request)
    if token is None:
        return None
    principal = access.authenticate(get_engine(request), token)
    if principal is None:
        raise _unauthorized("invalid or revoked token")
    request.state.principal = principal
    return principal


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency returning the caller's :class:`Principal` if it has one of ``roles``
    (admins pass every check): 401 without a token, 403 with the wrong role."""
    unknown = set(roles) - set(access.ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal is None:
            raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")
        if not principal.has_role(*roles):
            raise HTTPException(status_code=403,
                                detail=f"this needs the role {' or '.join(roles)}; the token's "
                                       f"role is {principal.role}")
        return principal

    dependency.__name__ = f"require_{'_or_'.join(roles)}"
    return dependency


def audit(request: Request, status_code: int, reason: str, body: bytes = b"",
          principal: Principal | None = None, submission_id: int | None = None, *,
          body_size: int | None = None, body_sha256: str | None = None,
          keep_body: bool = False) -> int:
    """Write an api_audit row for this request (blocking: call from a thread, or through
    :func:`audit_async`). ``body``: the request body or its first part; its first
    ``api.audit_body_bytes`` are stored when ``keep_body`` (refused submissions).
    ``principal``: default ``request.state.principal``. Returns the row id."""
    principal = principal or getattr(request.state, "principal", None)
    return access.record_audit(
        get_engine(request), method=request.method, path=request.url.path,
        status_code=status_code, reason=reason,
        remote=request.client.host if request.client else "",
        actor=principal.actor if principal is not None else "",
        body=body, body_size=body_size, body_sha256=body_sha256,
        max_body_bytes=int(api_setting(request, "audit_body_bytes", DEFAULT_AUDIT_BODY_BYTES))
        if keep_body else 0,
        submission_id=submission_id)


async def audit_async(request: Request, status_code: int, reason: str, **kwargs: Any) -> None:
    """:func:`audit` from the event loop (in the thread pool); a failure is logged, not raised,
    so it never hides the answer the client is owed."""
    try:
        await run_in_threadpool(audit, request, status_code, reason, **kwargs)
    except Exception:
        log.exception("could not write the audit row for %s %s (%d)", request.method,
                      request.url.path, status_code)


def note_audit(request: Request, **fields: Any) -> None:
    """Let a handler add to its request's audit row: ``reason``, ``body`` (bytes), ``body_size``,
    ``body_sha256``, ``keep_body``, ``submission_id``."""
    pending = getattr(request.state, "audit", None) or {}
    pending.update(fields)
    request.state.audit = pending


def _reason(detail: Any) -> str:
    if isinstance(detail, dict):
        return str(detail.get("reason") or detail.get("error") or detail)
    return str(detail)


async def _read_capped_body(request: Request, limit: int) -> None:
    """Read a small (JSON) body with a cap, leaving it where FastAPI looks for it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=f"request body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail=f"request body larger than {limit} bytes")
        chunks.append(chunk)
    request._body = b"".join(chunks)  # Request.body() returns this instead of reading again


class AuditedRoute(APIRoute):
    """A route that writes exactly one api_audit row for every request that changes something
    (not GET/HEAD/OPTIONS) and for every refused one (status ≥ 400, including the 401/403 of the
    role checks and the 422 of parameter validation), whatever raised it. A handler adds details
    with :func:`note_audit`. Routes with a JSON body model read it capped at
    :data:`MAX_JSON_BODY_BYTES` (413 beyond)."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        original = super().get_route_handler()
        reads_body = self.body_field is not None

        async def handler(request: Request) -> Response:
            try:
                if reads_body:
                    await _read_capped_body(request, MAX_JSON_BODY_BYTES)
                response = await original(request)
            except HTTPException as exc:
                await _audit_pending(request, exc.status_code, _reason(exc.detail))
                raise
            except RequestValidationError as exc:
                where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                                  for e in exc.errors()[:5])
                await _audit_pending(request, 422, f"invalid request: {where}")
                raise
            except Exception as exc:
                await _audit_pending(request, 500, f"{type(exc).__name__}: {exc}")
                raise
            if request.method not in SAFE_METHODS or response.status_code >= 400:
                await _audit_pending(request, response.status_code, "")
            return response

        return handler


async def _audit_pending(request: Request, status_code: int, reason: str) -> None:
    fields = dict(getattr(request.state, "audit", None) or {})
    reason = fields.pop("reason", "") or reason
    body = fields.pop("body", b"")
    if "body_sha256" not in fields and body and fields.get("body_size") in (None, len(body)):
        fields["body_sha256"] = hashlib.sha256(body).hexdigest()
    await audit_async(request, status_code, reason, body=body, **fields)
