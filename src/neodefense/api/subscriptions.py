"""Self-service alert subscriptions: ``/v1/subscriptions``.

Anyone may subscribe (the alerts are public): ``POST /v1/subscriptions`` with an e-mail address
and/or a webhook URL and the criteria (:class:`neodefense.alerts.criteria.Criteria` JSON). The
answer holds, once, the subscription's management token (kept only as its sha256 hash) and each
webhook's signing secret. Manage it with the header ``X-Subscription-Token`` (an admin's API token
works too): ``GET``, ``PATCH`` (new criteria), ``DELETE`` ``/v1/subscriptions/{id}``.

Webhook verification: a webhook channel starts ``unverified`` and gets no alerts until its URL
answers a challenge: we POST ``{"type": "neodefense.verification", "challenge": "<random>",
"subscription_id": N, "channel_id": M}`` signed like every alert (``X-Neodefense-Signature``, the
channel's secret) and the endpoint must answer 2xx with the challenge in its body (plain, or JSON
``{"challenge": ...}``). This proves the subscriber controls the URL, so nobody can point alert
traffic at somebody else's server. The challenge is sent at creation and again on
``POST /v1/subscriptions/{id}/verify``. With ``[api] webhook_allow_private = false`` (shared
deployments) URLs that resolve to loopback, private or link-local addresses are refused.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import urllib.parse
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from neodefense.api.deps import AuditedRoute, current_principal, get_engine, get_settings
from neodefense.api.read import json_response
from neodefense.catalog import alerts as catalog_alerts

router = APIRouter(tags=["subscriptions"], route_class=AuditedRoute)

TOKEN_HEADER = "X-Subscription-Token"
#: the longest answer to a challenge that is read
MAX_CHALLENGE_ANSWER_BYTES = 65536


class WebhookIn(BaseModel):
    url: str = Field(..., max_length=2048, description="http(s) URL that receives signed POSTs")
    format: Literal["json", "voevent"] = "json"


class SubscriptionIn(BaseModel):
    name: str | None = Field(None, max_length=200, description="a label; generated when absent")
    email: str | None = Field(None, max_length=320)
    webhook: WebhookIn | None = None
    criteria: dict[str, Any] = Field(default_factory=dict, description=(
        "torino_min, ip_min, palermo_min, iawn_only, imminent_only, objects; {} = every alert"))


class CriteriaIn(BaseModel):
    criteria: dict[str, Any]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _is_private(host: str) -> bool:
    """True when ``host`` is, or resolves to, a loopback, private, link-local or reserved
    address (or does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return True
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (address.is_private or address.is_loopback or address.is_link_local
                or address.is_reserved or address.is_multicast or address.is_unspecified):
            return True
    return False


def check_webhook_url(url: str, allow_private: bool) -> None:
    """Raise HTTPException(422) for a URL we will not POST to."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HTTPException(422, f"webhook URL must be http(s)://host/...: {url!r}")
    if not allow_private and _is_private(parts.hostname):
        raise HTTPException(422, f"webhook host {parts.hostname!r} is not a public address")


def send_challenge(channel: dict[str, Any], subscription_id: int, timeout_s: float) -> tuple[bool, str]:
    """POST a fresh challenge to a webhook channel; (verified, what happened)."""
    from neodefense.alerts.signing import SIGNATURE_HEADER, signature_header

    challenge = secrets.token_urlsafe(24)
    body = json.dumps({"type": "neodefense.verification", "challenge": challenge,
                       "subscription_id": subscription_id,
                       "channel_id": channel["id"]}).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "neodefense-verification",
               SIGNATURE_HEADER: signature_header(channel["secret"], body)}
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
            with client.stream("POST", channel["target"], content=body, headers=headers) as resp:
                answer = b""
                for chunk in resp.iter_bytes():
                    answer += chunk
                    if len(answer) > MAX_CHALLENGE_ANSWER_BYTES:
                        break
                status = resp.status_code
    except httpx.HTTPError as exc:
        return False, f"challenge POST failed: {type(exc).__name__}: {exc}"
    if not 200 <= status < 300:
        return False, f"challenge POST answered HTTP {status}"
    if challenge.encode() not in answer:
        return False, "the answer did not contain the challenge"
    return True, "verified"


def _verify_unverified(engine: Engine, sub: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]:
    results = []
    for ch in sub["channels"]:
        if ch["kind"] != "webhook" or ch["status"] != catalog_alerts.UNVERIFIED:
            continue
        ok, detail = send_challenge(ch, sub["id"], timeout_s)
        if ok:
            catalog_alerts.verify_channel(engine, ch["id"])
        results.append({"channel_id": ch["id"], "verified": ok, "detail": detail})
    return results


def _public(sub: dict[str, Any], with_secrets: bool = False) -> dict[str, Any]:
    out = {k: sub[k] for k in ("id", "name", "active", "created_utc", "removed_utc", "criteria")}
    out["channels"] = [
        {k: ch[k] for k in ("id", "kind", "target", "format", "status", "paused_reason",
                            "verified_utc", "delivered", "pending", "held")
         if k in ch} | ({"secret": ch["secret"]} if with_secrets and ch.get("secret") else {})
        for ch in sub["channels"]]
    out["links"] = {"self": f"/v1/subscriptions/{sub['id']}",
                    "verify": f"/v1/subscriptions/{sub['id']}/verify"}
    return out


def _load(engine: Engine, subscription_id: int, with_secrets: bool = False) -> dict[str, Any]:
    found = catalog_alerts.subscribers(engine, with_secrets=with_secrets,
                                       subscriber_id=subscription_id)
    if not found:
        raise HTTPException(404, "no such subscription")
    return found[0]


def _authorize(request: Request, engine: Engine, subscription_id: int, token: str | None) -> None:
    """The subscription's own token, or an admin's API token; 404 otherwise (existence is not
    revealed to strangers)."""
    principal = current_principal(request)
    if principal is not None and principal.role == "admin":
        return
    stored = catalog_alerts.subscriber_token_hash(engine, subscription_id)
    if not stored or not token or not hmac.compare_digest(stored, _hash(token)):
        raise HTTPException(404, "no such subscription (or a wrong X-Subscription-Token)")


@router.post("/v1/subscriptions", status_code=201, summary="Subscribe to alerts")
def create_subscription(body: SubscriptionIn, engine: Engine = Depends(get_engine),
                        settings: Any = Depends(get_settings)) -> JSONResponse:
    api = settings.raw.get("api", {})
    channels: list[dict[str, Any]] = []
    if body.email:
        channels.append({"kind": "email", "target": body.email})
    if body.webhook is not None:
        check_webhook_url(body.webhook.url, bool(api.get("webhook_allow_private", True)))
        channels.append({"kind": "webhook", "target": body.webhook.url,
                         "format": body.webhook.format, "status": catalog_alerts.UNVERIFIED})
    if not channels:
        raise HTTPException(422, "give an email address or a webhook (or both)")
    token = "nds_" + secrets.token_urlsafe(32)
    name = (body.name or "").strip() or f"subscriber-{secrets.token_hex(6)}"
    try:
        sub = catalog_alerts.add_subscriber(engine, name, body.criteria, channels,
                                            token_hash=_hash(token))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    verification = _verify_unverified(engine, sub, float(api.get("webhook_verify_timeout_s", 5.0)))
    sub_now = _load(engine, sub["id"])
    out = _public(sub_now)
    secrets_by_id = {ch["id"]: ch.get("secret") for ch in sub["channels"]}
    for ch in out["channels"]:
        if ch["kind"] == "webhook":
            ch["secret"] = secrets_by_id.get(ch["id"])
    out["token"] = token
    out["verification"] = verification
    out["note"] = ("keep the token: it is shown only now and manages this subscription "
                   f"(header {TOKEN_HEADER}); webhook POSTs are signed with the channel secret")
    return json_response(out, status_code=201)


@router.get("/v1/subscriptions/{subscription_id}", summary="A subscription (its token needed)")
def get_subscription(subscription_id: int, request: Request,
                     x_subscription_token: str | None = Header(None),
                     engine: Engine = Depends(get_engine)) -> JSONResponse:
    _authorize(request, engine, subscription_id, x_subscription_token)
    return json_response(_public(_load(engine, subscription_id)))


@router.patch("/v1/subscriptions/{subscription_id}", summary="Change a subscription's criteria")
def patch_subscription(subscription_id: int, body: CriteriaIn, request: Request,
                       x_subscription_token: str | None = Header(None),
                       engine: Engine = Depends(get_engine)) -> JSONResponse:
    _authorize(request, engine, subscription_id, x_subscription_token)
    try:
        catalog_alerts.set_criteria(engine, subscription_id, body.criteria)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    except LookupError:
        raise HTTPException(404, "no such subscription") from None
    return json_response(_public(_load(engine, subscription_id)))


@router.delete("/v1/subscriptions/{subscription_id}", summary="Unsubscribe")
def delete_subscription(subscription_id: int, request: Request,
                        x_subscription_token: str | None = Header(None),
                        engine: Engine = Depends(get_engine)) -> JSONResponse:
    _authorize(request, engine, subscription_id, x_subscription_token)
    try:
        cancelled = catalog_alerts.remove_subscriber(engine, subscription_id)
    except LookupError:
        raise HTTPException(404, "no such subscription") from None
    return json_response({"id": subscription_id, "removed": True,
                          "deliveries_cancelled": cancelled})


@router.post("/v1/subscriptions/{subscription_id}/verify",
             summary="Send the webhook verification challenge again")
def verify_subscription(subscription_id: int, request: Request,
                        x_subscription_token: str | None = Header(None),
                        engine: Engine = Depends(get_engine),
                        settings: Any = Depends(get_settings)) -> JSONResponse:
    _authorize(request, engine, subscription_id, x_subscription_token)
    sub = _load(engine, subscription_id, with_secrets=True)
    timeout_s = float(settings.raw.get("api", {}).get("webhook_verify_timeout_s", 5.0))
    results = _verify_unverified(engine, sub, timeout_s)
    return json_response({"id": subscription_id, "verification": results,
                          "subscription": _public(_load(engine, subscription_id))})


@router.get("/v1/subscriptions", summary="Every subscription (admin)")
def list_subscriptions(request: Request, engine: Engine = Depends(get_engine)) -> JSONResponse:
    principal = current_principal(request)
    if principal is None:
        raise HTTPException(401, "an admin API token is needed",
                            headers={"WWW-Authenticate": "Bearer"})
    if principal.role != "admin":
        raise HTTPException(403, "admins only")
    rows = [_public(s) for s in catalog_alerts.subscribers(engine)]
    return json_response({"count": len(rows), "data": rows})
