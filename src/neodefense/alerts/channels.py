"""Delivery channels: signed webhook POSTs (httpx, asyncio) and e-mail (smtplib). No database.

The outbox flow claims ``deliveries`` rows, turns each into a :class:`Message`, calls :func:`send`
(or :func:`deliver_webhooks` / :func:`send_emails`) and records one :class:`Outcome` per message.
Senders never raise for a failed delivery: every message gets an Outcome, in input order.

Classification (:func:`is_transient`): webhook 2xx = delivered; 408, 429, 5xx, connection errors
and timeouts are transient; any other status is a failure (retried, counts toward pausing the
channel) and 410 Gone sets ``Outcome.gone`` (pause the channel at once). For e-mail the SMTP reply
code is the status: 4xx transient, 5xx failure. A target that can never work (malformed URL or
address, unknown channel kind) gives ``permanent=True``.

Delivery is at-least-once: a retry repeats the ``Idempotency-Key`` (``<alert_id>:<channel_id>``),
the ``X-Neodefense-Alert-Id`` and, for e-mail, the ``Message-ID``, so receivers can deduplicate.
Retries are scheduled by the caller with :func:`next_attempt_delay_s`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import random
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal

import httpx

from neodefense import __version__
from neodefense.alerts.signing import (
    ALERT_ID_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)

DEFAULT_USER_AGENT = f"neodefense/{__version__}"
#: Longest ``Outcome.error`` text, in characters.
MAX_ERROR_CHARS = 500
#: Response bytes read at most (the body is only used for the error text).
MAX_RESPONSE_BYTES = 64 * 1024
#: Characters of a failed response's body quoted in the error text.
RESPONSE_SNIPPET_CHARS = 200
#: Webhook statuses (besides 5xx) worth retrying soon.
TRANSIENT_HTTP_STATUSES = frozenset({408, 429})

Kind = Literal["webhook", "email"]
Format = Literal["json", "voevent"]
PayloadText = Callable[[Mapping[str, Any]], str]


@dataclass
class Message:
    """One delivery attempt to one channel: the outbox row joined with its alert and channel.

    ``target`` is the URL (webhook) or the address (email); ``attempt`` is the 1-based number of
    the attempt now being made.
    """

    delivery_id: int
    channel_id: int
    kind: Kind
    target: str
    secret: str
    format: Format
    alert_id: str
    payload: dict[str, Any]
    voevent: str
    attempt: int = 1

    def body(self) -> bytes:
        """The webhook body: canonical JSON of the payload (sorted keys, no spaces, ASCII) or the
        VOEvent XML as utf-8. Raises ValueError for an unknown format or a payload JSON cannot
        carry (NaN or infinity)."""
        if self.format == "json":
            return json.dumps(self.payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
        if self.format == "voevent":
            return self.voevent.encode("utf-8")
        raise ValueError(f"unknown message format {self.format!r}")

    def content_type(self) -> str:
        """MIME type of :meth:`body`."""
        if self.format == "voevent":
            return "application/xml"
        return "application/json"

    def idempotency_key(self) -> str:
        """``<alert_id>:<channel_id>``: identical on every retry of this delivery."""
        return f"{self.alert_id}:{self.channel_id}"


@dataclass
class Outcome:
    """The result of one attempt. ``status_code`` is the HTTP status (webhook) or SMTP reply code
    (email), None when no reply came; ``error`` is empty when ``ok``; ``duration_s`` is wall time of
    the attempt; ``attempted_at`` is an aware UTC datetime; ``gone`` (HTTP 410) asks the caller to
    pause the channel at once; ``permanent`` marks a failure no retry can fix (malformed target);
    ``retry_after_s`` is the receiver's Retry-After in seconds when it sent one."""

    delivery_id: int
    channel_id: int
    ok: bool
    status_code: int | None
    error: str
    duration_s: float
    attempted_at: datetime
    gone: bool = False
    kind: str = "webhook"
    permanent: bool = False
    retry_after_s: float | None = None


def is_transient(outcome: Outcome) -> bool:
    """True for a failure worth retrying soon that should not count against the receiver.

    Webhook: no reply (connection error, timeout), 408, 429 or 5xx. E-mail: no reply or an SMTP
    4xx reply. False for successes, 410 Gone, permanent failures and every other status.
    """
    if outcome.ok or outcome.gone or outcome.permanent:
        return False
    code = outcome.status_code
    if code is None:
        return True
    if outcome.kind == "email":
        return 400 <= code < 500
    return code in TRANSIENT_HTTP_STATUSES or 500 <= code < 600


def next_attempt_delay_s(attempt: int, *, base_s: float = 30.0, factor: float = 2.0, max_s: float = 3600.0,
                         jitter: float = 0.1, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next one.

    ``min(max_s, base_s * factor**(attempt - 1))`` scaled by a uniform factor in
    ``[1 - jitter, 1 + jitter]`` (so the result stays within ``jitter`` of the capped delay).
    Deterministic for a given ``rng`` state; the module's random generator when None.
    """
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    if base_s < 0 or max_s < 0 or factor < 1 or not 0 <= jitter < 1:
        raise ValueError("need base_s >= 0, max_s >= 0, factor >= 1 and 0 <= jitter < 1")
    try:
        raw_s = base_s * factor ** (attempt - 1)
    except OverflowError:
        raw_s = float("inf")
    delay_s = min(max_s, raw_s)
    if jitter:
        u = (rng or random).uniform(-1.0, 1.0)
        delay_s *= 1.0 + jitter * u
    return delay_s


def _truncate(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(exc: BaseException) -> str:
    """``ExceptionClass: message``, plus the underlying operating-system error when the exception
    wraps one (httpx turns ``[Errno 111] Connection refused`` into a generic ConnectError)."""
    def one(e: BaseException) -> str:
        detail = str(e).strip()
        return f"{type(e).__name__}: {detail}" if detail else type(e).__name__

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10 and all(current is not c for c in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = one(exc)
    root = next((e for e in reversed(chain[1:]) if isinstance(e, OSError) and e.errno is not None), None)
    if root is not None and str(root) not in text:
        text += f" (caused by {one(root)})"
    return _truncate(text)


def _now_utc() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------- webhooks


def webhook_headers(message: Message, body: bytes, *, user_agent: str = DEFAULT_USER_AGENT,
                    timestamp: int | None = None) -> dict[str, str]:
    """The request headers of a webhook POST of ``body``, signed at ``timestamp`` (unix s, default
    now)."""
    return {
        "Content-Type": message.content_type(),
        "User-Agent": user_agent,
        ALERT_ID_HEADER: message.alert_id,
        IDEMPOTENCY_HEADER: message.idempotency_key(),
        SIGNATURE_HEADER: signature_header(message.secret, body, timestamp),
    }


def _retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - _now_utc()).total_seconds())


async def _read_limited(response: httpx.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


async def _post_one(client: httpx.AsyncClient, message: Message, gate: asyncio.Semaphore, *,
                    timeout_s: float, user_agent: str) -> Outcome:
    async with gate:
        attempted_at = _now_utc()
        t0 = time.monotonic()

        def outcome(ok: bool, status: int | None, error: str = "", **extra: Any) -> Outcome:
            return Outcome(message.delivery_id, message.channel_id, ok, status, _truncate(error),
                           time.monotonic() - t0, attempted_at, kind="webhook", **extra)

        try:
            body = message.body()
            headers = webhook_headers(message, body, user_agent=user_agent)
            async with asyncio.timeout(timeout_s):
                async with client.stream("POST", message.target, content=body, headers=headers) as response:
                    reply = await _read_limited(response)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError, TypeError) as exc:
            return outcome(False, None, f"invalid webhook: {_describe(exc)}", permanent=True)
        except httpx.TimeoutException as exc:
            return outcome(False, None, f"{_describe(exc)} (timeout {timeout_s:g} s)")
        except TimeoutError:
            return outcome(False, None, f"TimeoutError: no complete response within {timeout_s:g} s")
        except Exception as exc:  # any transport failure is this message's outcome, not the batch's
            return outcome(False, None, _describe(exc))

        status = response.status_code
        if 200 <= status < 300:
            return outcome(True, status)
        error = f"HTTP {status} {response.reason_phrase}".rstrip()
        snippet = reply.decode("utf-8", errors="replace").strip()
        if snippet:
            error += f": {_truncate(snippet, RESPONSE_SNIPPET_CHARS)}"
        return outcome(False, status, error, gone=status == 410, retry_after_s=_retry_after_s(response))


async def send_webhooks(messages: Sequence[Message], *, timeout_s: float = 10.0, concurrency: int = 64,
                        client: httpx.AsyncClient | None = None,
                        user_agent: str = DEFAULT_USER_AGENT) -> list[Outcome]:
    """POST every webhook message; one Outcome per message, in input order. Never raises for a
    failed delivery.

    At most ``concurrency`` requests are in flight, over one shared connection pool (keep-alive).
    ``timeout_s`` bounds each attempt as a whole (connect, send and the reply), counted from when
    the request gets its slot; the signature timestamp is taken then too. Redirects are not
    followed (a 3xx is a failure). A caller-supplied ``client`` is used as is and left open; it must
    belong to the running event loop. Raises ValueError for a message that is not a webhook.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    wrong = [m.delivery_id for m in messages if m.kind != "webhook"]
    if wrong:
        raise ValueError(f"send_webhooks got non-webhook messages (delivery ids {wrong[:10]})")
    if not messages:
        return []
    gate = asyncio.Semaphore(concurrency)

    async def run(http: httpx.AsyncClient) -> list[Outcome]:
        tasks = [_post_one(http, m, gate, timeout_s=timeout_s, user_agent=user_agent) for m in messages]
        return list(await asyncio.gather(*tasks))

    if client is not None:
        return await run(client)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), limits=limits,
                                 follow_redirects=False) as own:
        return await run(own)


def deliver_webhooks(messages: Sequence[Message], **kw: Any) -> list[Outcome]:
    """Synchronous :func:`send_webhooks` (same keywords).

    Uses ``asyncio.run``; when this thread already runs an event loop (a Prefect task may), the
    sends run on a fresh loop in a helper thread and this call blocks until they finish.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(send_webhooks(messages, **kw))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="neodefense-webhooks") as pool:
        return pool.submit(asyncio.run, send_webhooks(messages, **kw)).result()


# ------------------------------------------------------------------------------------------- email


@dataclass
class SmtpSettings:
    """The outgoing mail server (config section ``[alerts.smtp]``). ``timeout_s`` bounds each
    socket operation; ``user`` empty = no login; ``starttls`` upgrades the connection before
    login (certificate verified against the system trust store)."""

    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "neodefense@localhost"
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, section: Any) -> SmtpSettings:
        """From the ``[alerts.smtp]`` mapping, or from a :class:`neodefense.config.Settings`
        (its ``alerts.smtp`` table). Missing keys take the defaults; unknown keys raise ValueError."""
        raw = getattr(section, "raw", None)
        if raw is not None:
            section = raw.get("alerts", {}).get("smtp", {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown [alerts.smtp] keys: {', '.join(unknown)}")
        values = dict(section)
        if "port" in values:
            values["port"] = int(values["port"])
        if "timeout_s" in values:
            values["timeout_s"] = float(values["timeout_s"])
        if "starttls" in values:
            values["starttls"] = bool(values["starttls"])
        return cls(**values)


def default_subject(payload: Mapping[str, Any]) -> str:
    """``[neodefense] <designation>: <kinds>`` (fallback when no subject function is given)."""
    name = payload.get("designation") or payload.get("object_id") or "unknown object"
    kinds = ", ".join(str(k) for k in payload.get("kinds") or []) or "alert"
    return f"[neodefense] {name}: {kinds}"


def default_text(payload: Mapping[str, Any]) -> str:
    """A plain-text summary: identifiers, event sentences, the risk figures (fallback text)."""
    risk = payload.get("risk") or {}
    lines = [
        f"neodefense alert {payload.get('alert_id', '?')} issued {payload.get('issued_utc', '?')}",
        f"Object: {payload.get('designation', '?')}",
        "",
    ]
    lines += [f"- {event.get('message') or event.get('kind')}" for event in payload.get("events") or []]
    if risk:
        lines += ["", "Risk: " + ", ".join(f"{key}={risk[key]}" for key in
                                            ("cumulative_ip", "palermo_cum", "torino_max", "n_vi")
                                            if key in risk)]
    if payload.get("supersedes"):
        lines.append(f"Supersedes {payload['supersedes']}.")
    lines += ["", "The VOEvent 2.0 document is attached."]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def build_email(message: Message, sender: str, *, subject_fn: PayloadText | None = None,
                text_fn: PayloadText | None = None) -> EmailMessage:
    """The e-mail for ``message``: text/plain summary, VOEvent attached as ``<alert_id>.xml``
    (application/xml), Message-ID ``<alert_id.channel_id@neodefense>``, alert-id and idempotency
    headers. Raises ValueError for a malformed address or header."""
    subject = _one_line((subject_fn or default_subject)(message.payload))
    text = (text_fn or default_text)(message.payload)
    target = message.target.strip()
    if not target or "@" not in target or any(c in target for c in "\r\n,;<>"):
        raise ValueError(f"not a single e-mail address: {message.target!r}")
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = target
    mail["Subject"] = subject
    mail["Date"] = email.utils.format_datetime(_now_utc())
    mail["Message-ID"] = f"<{message.alert_id}.{message.channel_id}@neodefense>"
    mail[ALERT_ID_HEADER] = message.alert_id
    mail[IDEMPOTENCY_HEADER] = message.idempotency_key()
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(text)
    if message.voevent:
        mail.add_attachment(message.voevent.encode("utf-8"), maintype="application", subtype="xml",
                            filename=f"{message.alert_id}.xml")
    return mail


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    conn = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
    try:
        conn.ehlo_or_helo_if_needed()
        if smtp.starttls:
            conn.starttls(context=ssl.create_default_context())
            conn.ehlo()
        if smtp.user:
            conn.login(smtp.user, smtp.password)
    except BaseException:
        conn.close()
        raise
    return conn


def _quit(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _smtp_reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else str(reply)
    return f"SMTP {code} {text}"


def send_emails(messages: Sequence[Message], smtp: SmtpSettings, *, subject_fn: PayloadText | None = None,
                text_fn: PayloadText | None = None) -> list[Outcome]:
    """Send every e-mail message over one SMTP connection; one Outcome per message, in input order.

    A refused recipient or message (SMTP reply) fails that message only, with the reply code as
    ``status_code``; a refused sender (our configuration, e.g. a login required) fails it with no
    code, so it counts as transient. When the
    connection drops mid-message it is reopened and that message tried once more; a message that
    fails so twice, or a connection that cannot be (re)opened, fails it and every remaining
    message with the same error (transient: the server is unreachable). Never raises for a failed
    delivery; raises ValueError for a message that is not e-mail.
    """
    wrong = [m.delivery_id for m in messages if m.kind != "email"]
    if wrong:
        raise ValueError(f"send_emails got non-email messages (delivery ids {wrong[:10]})")
    outcomes: list[Outcome] = []
    conn: smtplib.SMTP | None = None
    fatal = ""  # set once the server is unreachable: the remaining messages fail with it
    try:
        for message in messages:
            attempted_at = _now_utc()
            t0 = time.monotonic()

            def outcome(ok: bool, code: int | None, error: str = "", permanent: bool = False,
                        message: Message = message, attempted_at: datetime = attempted_at,
                        t0: float = t0) -> Outcome:
                return Outcome(message.delivery_id, message.channel_id, ok, code, _truncate(error),
                               time.monotonic() - t0, attempted_at, kind="email", permanent=permanent)

            if fatal:
                outcomes.append(outcome(False, None, fatal))
                continue
            try:
                mail = build_email(message, smtp.sender, subject_fn=subject_fn, text_fn=text_fn)
                target = message.target.strip()
            except Exception as exc:  # a bad address or header: only this message can never go
                outcomes.append(outcome(False, None, f"invalid e-mail: {_describe(exc)}", permanent=True))
                continue

            result: Outcome | None = None
            for try_number in (1, 2):
                if conn is None:
                    try:
                        conn = _connect(smtp)
                    except Exception as exc:  # our server, not the subscriber's fault: transient
                        fatal = f"cannot connect to SMTP {smtp.host}:{smtp.port}: {_describe(exc)}"
                        result = outcome(False, None, fatal)
                        break
                dropped: BaseException | None = None
                try:
                    refused = conn.send_message(mail, from_addr=smtp.sender, to_addrs=[target])
                except smtplib.SMTPRecipientsRefused as exc:
                    code, reply = next(iter(exc.recipients.values()), (None, b"recipient refused"))
                    result = outcome(False, code, _smtp_reply(code, reply) if code else str(reply))
                except smtplib.SMTPSenderRefused as exc:  # about our sender or login, not the subscriber
                    reason = _smtp_reply(exc.smtp_code, exc.smtp_error)
                    result = outcome(False, None, f"sender refused: {reason}")
                except smtplib.SMTPResponseException as exc:  # message refused at DATA, ...
                    result = outcome(False, exc.smtp_code, _smtp_reply(exc.smtp_code, exc.smtp_error))
                except smtplib.SMTPServerDisconnected as exc:
                    dropped = exc
                except smtplib.SMTPException as exc:  # e.g. the server lacks SMTPUTF8
                    result = outcome(False, None, _describe(exc), permanent=True)
                except OSError as exc:  # reset, broken pipe, socket timeout
                    dropped = exc
                else:
                    if refused:
                        code, reply = next(iter(refused.values()))
                        result = outcome(False, code, _smtp_reply(code, reply))
                    else:
                        result = outcome(True, 250)
                if dropped is not None:
                    conn.close()
                    conn = None
                    if try_number == 1:
                        continue  # dropped: reconnect once and resend this message
                    fatal = f"SMTP connection lost twice: {_describe(dropped)}"
                    result = outcome(False, None, fatal)
                break
            assert result is not None
            outcomes.append(result)
            if conn is not None and conn.sock is None:  # smtplib closes it after a 421 reply
                conn = None
    finally:
        _quit(conn)
    return outcomes


# ---------------------------------------------------------------------------------------- dispatch


def send(messages: Sequence[Message], *, timeout_s: float = 10.0, concurrency: int = 64,
         user_agent: str = DEFAULT_USER_AGENT, smtp: SmtpSettings | None = None,
         subject_fn: PayloadText | None = None, text_fn: PayloadText | None = None) -> list[Outcome]:
    """Deliver a mixed batch: webhooks concurrently (:func:`deliver_webhooks`) while e-mails go
    out over one SMTP connection (:func:`send_emails`) in a helper thread. One Outcome per message,
    in input order; never raises for a failed delivery. E-mail without ``smtp`` settings fails
    (transient: a configuration problem, not the subscriber's); an unknown kind fails permanently.
    """
    results: list[Outcome | None] = [None] * len(messages)
    hooks = [i for i, m in enumerate(messages) if m.kind == "webhook"]
    mails = [i for i, m in enumerate(messages) if m.kind == "email"]
    for i, m in enumerate(messages):
        if m.kind not in ("webhook", "email"):
            results[i] = Outcome(m.delivery_id, m.channel_id, False, None, f"unknown channel kind {m.kind!r}",
                                 0.0, _now_utc(), kind=str(m.kind), permanent=True)

    def mail_batch() -> list[Outcome]:
        batch = [messages[i] for i in mails]
        if smtp is None:
            now = _now_utc()
            return [Outcome(m.delivery_id, m.channel_id, False, None, "no SMTP settings configured",
                            0.0, now, kind="email") for m in batch]
        return send_emails(batch, smtp, subject_fn=subject_fn, text_fn=text_fn)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="neodefense-email") as pool:
        mail_future = pool.submit(mail_batch) if mails else None
        if hooks:
            hook_outcomes = deliver_webhooks([messages[i] for i in hooks], timeout_s=timeout_s,
                                             concurrency=concurrency, user_agent=user_agent)
            for i, result in zip(hooks, hook_outcomes):
                results[i] = result
        if mail_future is not None:
            for i, result in zip(mails, mail_future.result()):
                results[i] = result
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]
