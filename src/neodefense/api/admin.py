"""Administration over HTTP (admin tokens only): observatory accounts and their station codes,
API tokens, the audit log, and each observatory's contributions.

Every request that changes something, and every refused one, leaves an api_audit row
(:class:`~neodefense.api.deps.AuditedRoute`). A token's plaintext is in the answer that creates
it and nowhere else (only its SHA-256 is stored). The same operations are plain functions of
:mod:`neodefense.catalog.access` for the command line.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from neodefense.api.deps import AuditedRoute, get_engine, note_audit, require_roles
from neodefense.api.submissions import MAX_ID, jsonable
from neodefense.catalog import access

router = APIRouter(route_class=AuditedRoute, prefix="/v1/admin", tags=["admin"],
                   dependencies=[Depends(require_roles(access.ADMIN))])

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Station = Annotated[str, Path(min_length=1, max_length=8, pattern=r"^[A-Za-z0-9]+$")]


class ObservatoryIn(BaseModel):
    """A new observatory account."""

    name: str = Field(min_length=1, max_length=access.MAX_NAME_CHARS)
    contact: str = Field(default="", max_length=1000)
    stations: list[Annotated[str, Field(max_length=8)]] = Field(default_factory=list,
                                                                max_length=1000)


class TokenIn(BaseModel):
    """A new token: observatory tokens name their account, scientist and admin tokens none."""

    name: str = Field(min_length=1, max_length=access.MAX_NAME_CHARS)
    role: Literal["observatory", "scientist", "admin"]
    account_id: int | None = Field(default=None, ge=1, le=MAX_ID)


def _call(fn, *args: Any) -> Any:  # noqa: ANN001 - an access function
    """Run an access function, turning its errors into HTTP answers."""
    try:
        return fn(*args)
    except access.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except access.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except access.AccessError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/observatories", status_code=201, summary="Create an observatory account")
def create_observatory(request: Request, body: ObservatoryIn) -> dict[str, Any]:
    item = _call(access.create_account, get_engine(request), body.name, body.contact,
                 body.stations)
    note_audit(request, reason=f"account {item['id']} {item['name']} "
                               f"stations {','.join(item['stations'])}")
    return jsonable(item)


@router.get("/observatories", summary="Every observatory account")
def list_observatories(request: Request) -> dict[str, Any]:
    return {"observatories": jsonable(access.accounts(get_engine(request)))}


@router.get("/observatories/{account_id}", summary="One observatory account")
def get_observatory(request: Request, account_id: Id) -> dict[str, Any]:
    item = access.account(get_engine(request), account_id)
    if item is None:
        raise HTTPException(404, f"no observatory account {account_id}")
    return jsonable(item)


@router.delete("/observatories/{account_id}", summary="Deactivate an account (its tokens stop)")
def deactivate_observatory(request: Request, account_id: Id) -> dict[str, Any]:
    item = _call(access.deactivate_account, get_engine(request), account_id)
    note_audit(request, reason=f"account {account_id} deactivated")
    return jsonable(item)


@router.post("/observatories/{account_id}/stations/{stn}", status_code=201,
             summary="Let an account submit for one more station code")
def add_station(request: Request, account_id: Id, stn: Station) -> dict[str, Any]:
    item = _call(access.add_station, get_engine(request), account_id, stn)
    note_audit(request, reason=f"account {account_id} + station {stn.upper()}")
    return jsonable(item)


@router.delete("/observatories/{account_id}/stations/{stn}",
               summary="Stop an account submitting for a station code")
def remove_station(request: Request, account_id: Id, stn: Station) -> dict[str, Any]:
    item = _call(access.remove_station, get_engine(request), account_id, stn)
    note_audit(request, reason=f"account {account_id} - station {stn.upper()}")
    return jsonable(item)


@router.post("/tokens", status_code=201, summary="Create a token (its plaintext is shown once)")
def create_token(request: Request, body: TokenIn) -> dict[str, Any]:
    token_id, token = _call(access.create_token, get_engine(request), body.name, body.role,
                            body.account_id)
    note_audit(request, reason=f"token {token_id} {body.name} role {body.role}"
                               + (f" account {body.account_id}" if body.account_id else ""))
    item = next(t for t in access.tokens(get_engine(request)) if t["id"] == token_id)
    return {**jsonable(item), "token": token,
            "note": "store this token now: it is not kept and cannot be shown again"}


@router.get("/tokens", summary="Every token (never its secret)")
def list_tokens(request: Request) -> dict[str, Any]:
    return {"tokens": jsonable(access.tokens(get_engine(request)))}


@router.delete("/tokens/{token_id}", summary="Revoke a token")
def revoke_token(request: Request, token_id: Id) -> dict[str, Any]:
    item = _call(access.revoke_token, get_engine(request), token_id)
    note_audit(request, reason=f"token {token_id} revoked")
    return jsonable(item)


@router.get("/audit", summary="The API audit log, newest first")
def audit_log(request: Request,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
              before_id: Annotated[int | None, Query(ge=1)] = None,
              status_code: Annotated[int | None, Query(ge=100, le=599)] = None,
              min_status: Annotated[int | None, Query(ge=100, le=599)] = None,
              actor: Annotated[str | None, Query(max_length=300)] = None,
              path: Annotated[str | None, Query(max_length=300)] = None,
              submission_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
              with_body: bool = False) -> dict[str, Any]:
    """Rows: id, at, method, path, remote, actor, status_code, reason, body_sha256, body_size,
    submission_id, and with ``with_body`` the stored body bytes as ``body_base64``."""
    rows = access.audit_log(get_engine(request), limit, before_id=before_id,
                            status_code=status_code, min_status=min_status, actor=actor,
                            path_prefix=path, submission_id=submission_id, with_body=with_body)
    for row in rows:
        if with_body:
            body = row.pop("body")
            row["body_base64"] = base64.b64encode(body).decode() if body else ""
    return {"audit": jsonable(rows)}


@router.get("/contributions", summary="What each observatory account and station contributed")
def contributions(request: Request) -> dict[str, Any]:
    return {"contributions": jsonable(access.contributions(get_engine(request)))}
