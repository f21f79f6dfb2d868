"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact body bytes.

Every webhook POST carries the header::

    X-Neodefense-Signature: t=<unix seconds>,v1=<hex>

with ``v1 = HMAC-SHA256(key=secret.encode("utf-8"), msg=f"{t}.".encode() + body).hexdigest()``,
where ``body`` is the raw request body exactly as received (do not re-serialise the JSON) and
``secret`` is the channel's shared secret (utf-8 text). A receiver must
recompute the HMAC, compare it in constant time, and reject a timestamp more than a few minutes
away from its own clock (replay protection). Deliveries are at-least-once: deduplicate on the
``Idempotency-Key`` header (``<alert_id>:<channel_id>``), which is the same on every retry.
One ``v1`` is sent today; :func:`verify` accepts several (any one matching), for secret rotation.

Receiver check in plain Python (``raw`` is the undecoded request body; answer 401 when False,
2xx once the alert is stored; anything else is retried). With this package installed,
:func:`verify` does the same::

    import hashlib, hmac, time
    def is_authentic(secret: str, header: str, raw: bytes, tolerance_s: float = 300) -> bool:
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        t, given = fields.get("t", ""), fields.get("v1", "")
        mac = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
        return t.isdigit() and abs(time.time() - int(t)) <= tolerance_s and hmac.compare_digest(mac, given)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Neodefense-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ALERT_ID_HEADER = "X-Neodefense-Alert-Id"

#: Scheme tag of the signature value in the header (bumped if the construction ever changes).
SCHEME = "v1"
#: Upper bound on a header worth parsing (a few signatures; guards against junk input).
_MAX_HEADER_CHARS = 4096


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` keyed by ``secret`` (utf-8)."""
    message = f"{int(timestamp)}.".encode() + bytes(body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Neodefense-Signature`` value ``"t=<int>,v1=<hex>"``; ``timestamp`` in unix seconds
    (default: now)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},{SCHEME}={sign(secret, t, body)}"


def parse_signature_header(header: str) -> tuple[int, list[str]] | None:
    """``(timestamp, [v1 signatures])`` from a header value, or None when malformed.

    Malformed: empty or oversized, an element without ``=``, no or several ``t``, a ``t`` that is
    not a non-negative decimal integer, or no ``v1`` of 64 hex digits. Unknown keys are ignored
    (forward compatibility).
    """
    if not header or len(header) > _MAX_HEADER_CHARS:
        return None
    timestamps: list[str] = []
    signatures: list[str] = []
    for element in header.split(","):
        key, sep, value = element.strip().partition("=")
        if not sep:
            return None
        key, value = key.strip(), value.strip()
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
                signatures.append(value.lower())
    if len(timestamps) != 1 or not signatures:
        return None
    t = timestamps[0]
    if not (t.isascii() and t.isdigit()) or len(t) > 12:
        return None
    return int(t), signatures


def verify(secret: str, header: str, body: bytes, *, now: float | None = None,
           tolerance_s: float = 300.0) -> bool:
    """True when ``header`` carries a valid signature of ``body`` under ``secret``.

    False for a malformed header, a timestamp more than ``tolerance_s`` seconds before ``now``
    (stale, a replay) or after it (clock skew), or no matching ``v1`` (constant-time comparison).
    ``now`` is unix seconds (default: the current time).
    """
    parsed = parse_signature_header(header)
    if parsed is None or not secret:
        return False
    timestamp, candidates = parsed
    current = time.time() if now is None else float(now)
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    matched = False
    for candidate in candidates:  # no early exit: the time taken does not depend on which matched
        matched |= hmac.compare_digest(expected, candidate)
    return matched


def new_secret() -> str:
    """A fresh channel secret: 64 hex characters (256 random bits)."""
    return secrets.token_hex(32)
