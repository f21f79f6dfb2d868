"""The demo's alert receivers: a local webhook endpoint and an SMTP mail sink, both on 127.0.0.1.

The embedded demo (:mod:`neodefense.demo`) subscribes to its own alerts so that the whole
delivery path runs for real: signed webhook POSTs over HTTP and e-mail over SMTP. These two
receivers stand in for a subscriber's server and mailbox. Both listen on an ephemeral port, run in
daemon threads, record what arrived and are context managers::

    with WebhookSink() as hook, MailSink() as mail:
        ...subscribe hook.url and an address; point [alerts.smtp] at mail.host:mail.port...
        for arrival in hook.take_new() + mail.take_new(): print(arrival.line())

:class:`WebhookSink` does what a subscriber's endpoint must: it answers the subscription's
verification challenge (``{"type": "neodefense.verification", "challenge": ...}``) by echoing the
challenge, checks each alert's ``X-Neodefense-Signature`` once it knows the channel secret
(:func:`neodefense.alerts.signing.verify`), and drops repeats of an ``Idempotency-Key``
(deliveries are at-least-once). :class:`MailSink` is an aiosmtpd server that accepts every
message. Neither is meant for anything but loopback demonstrations.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import http.server
import json
import threading
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller

from neodefense.alerts.signing import ALERT_ID_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify

__all__ = ["Arrival", "MailSink", "WebhookSink"]

#: the webhook path the demo subscribes
HOOK_PATH = "/hook"
#: the largest request body read (bytes); alerts are a few kB
MAX_BODY_BYTES = 4 * 1024 * 1024


def _now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%H:%M:%S")


@dataclasses.dataclass(frozen=True)
class Arrival:
    """One alert as a receiver got it: ``channel`` "webhook" or "email", ``alert_id``, ``text``
    (the webhook's one-line summary of the payload, or the e-mail subject), the receiver's wall
    clock ``received_utc`` (HH:MM:SS) and ``signature_ok`` (webhook; None when not checked)."""

    channel: str
    alert_id: str
    text: str
    received_utc: str
    signature_ok: bool | None = None

    def line(self) -> str:
        """'webhook received 12:01:02 UTC: 2008-10-07T07:23:05Z NDA-1-1 ... (signature ok)'."""
        sig = {True: " (signature ok)", False: " (BAD SIGNATURE)", None: ""}[self.signature_ok]
        return f"{self.channel} received {self.received_utc} UTC: {self.text}{sig}"


class _Inbox:
    """Thread-safe list of arrivals with a read mark (:meth:`take_new`) and a callback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Arrival] = []
        self._mark = 0
        self.on_arrival: Callable[[Arrival], None] | None = None

    def add(self, item: Arrival) -> None:
        with self._lock:
            self._items.append(item)
            callback = self.on_arrival
        if callback is not None:
            callback(item)

    @property
    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._items)

    def take_new(self) -> list[Arrival]:
        """The arrivals since the previous call."""
        with self._lock:
            new, self._mark = self._items[self._mark:], len(self._items)
            return new


class _HookServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    sink: WebhookSink


class _HookHandler(http.server.BaseHTTPRequestHandler):
    server: _HookServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints arrivals
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != HOOK_PATH or length > MAX_BODY_BYTES:
            self._answer(404 if self.path != HOOK_PATH else 413, b'{"ok":false}')
            return
        raw = self.rfile.read(length) if length else b""
        status, reply = self.server.sink._receive(dict(self.headers.items()), raw)
        self._answer(status, reply)


class WebhookSink:
    """A webhook endpoint on ``http://127.0.0.1:<port>/hook`` (module docstring).

    ``secret``: the channel's signing secret once the subscription returned it (None: signatures
    are not checked); a wrong signature is answered 401, as a real endpoint should. ``alerts``:
    every distinct alert received (:class:`Arrival`), ``payloads``: their JSON payloads,
    ``challenges``: verification challenges answered, ``duplicates``: repeats dropped.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.secret: str | None = None
        self.payloads: list[dict[str, Any]] = []
        self.challenges = 0
        self.duplicates = 0
        self._inbox = _Inbox()
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self._server: _HookServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{HOOK_PATH}"

    @property
    def alerts(self) -> list[Arrival]:
        return self._inbox.arrivals

    @property
    def on_arrival(self) -> Callable[[Arrival], None] | None:
        """Called with each :class:`Arrival` as it comes in (in the receiver's thread)."""
        return self._inbox.on_arrival

    @on_arrival.setter
    def on_arrival(self, callback: Callable[[Arrival], None] | None) -> None:
        self._inbox.on_arrival = callback

    def take_new(self) -> list[Arrival]:
        """Alerts received since the previous call."""
        return self._inbox.take_new()

    def _receive(self, headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
        """Status and body answering one POST (called in the server's handler threads)."""
        from neodefense.alerts.messages import summary_line

        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("type") == "neodefense.verification":
            with self._lock:
                self.challenges += 1
            return 200, json.dumps({"challenge": data.get("challenge")}).encode()
        lower = {k.lower(): v for k, v in headers.items()}
        signature_ok = None
        if self.secret is not None:
            signature_ok = verify(self.secret, lower.get(SIGNATURE_HEADER.lower(), ""), raw)
            if not signature_ok:
                return 401, b'{"ok":false,"error":"bad signature"}'
        key = lower.get(IDEMPOTENCY_HEADER.lower()) or ""
        with self._lock:
            if key and key in self._keys:
                self.duplicates += 1
                return 200, b'{"ok":true,"duplicate":true}'
            self._keys.add(key)
            if isinstance(data, dict):
                self.payloads.append(data)
        alert_id = lower.get(ALERT_ID_HEADER.lower()) or (data or {}).get("alert_id", "?")
        text = summary_line(data) if isinstance(data, dict) else f"{alert_id} ({len(raw)} bytes)"
        self._inbox.add(Arrival("webhook", str(alert_id), text, _now_utc(), signature_ok))
        return 200, b'{"ok":true}'

    def start(self) -> WebhookSink:
        if self._server is None:
            server = _HookServer((self.host, self.port), _HookHandler)
            server.sink = self
            self.port = int(server.server_address[1])
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"demo-webhook-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _MailHandler:
    """aiosmtpd handler: every message is accepted and recorded."""

    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        self.sink._record(list(envelope.rcpt_tos), message)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to bind an ephemeral port (port 0)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class MailSink:
    """An SMTP server (aiosmtpd) on ``host:port`` (port chosen at start) recording every message.

    ``messages``: the parsed :class:`email.message.EmailMessage` objects; ``recipients``: the
    envelope recipients of each; :meth:`take_new`: the arrivals since the previous call (the
    subject as text, the ``X-Neodefense-Alert-Id`` header as alert id).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._inbox = _Inbox()
        self._lock = threading.Lock()
        self._controller = _Controller(_MailHandler(self), hostname=host, port=0)
        self._running = False

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def alerts(self) -> list[Arrival]:
        return self._inbox.arrivals

    @property
    def on_arrival(self) -> Callable[[Arrival], None] | None:
        """Called with each :class:`Arrival` as it comes in (in the receiver's thread)."""
        return self._inbox.on_arrival

    @on_arrival.setter
    def on_arrival(self, callback: Callable[[Arrival], None] | None) -> None:
        self._inbox.on_arrival = callback

    def take_new(self) -> list[Arrival]:
        """E-mails received since the previous call."""
        return self._inbox.take_new()

    def _record(self, rcpt_tos: list[str], message: email.message.EmailMessage) -> None:
        with self._lock:
            self.messages.append(message)
            self.recipients.append(rcpt_tos)
        alert_id = str(message.get(ALERT_ID_HEADER, "") or "?")
        subject = " ".join(str(message.get("Subject", "")).split())
        self._inbox.add(Arrival("e-mail", alert_id, f"to {', '.join(rcpt_tos)}: {subject}",
                                _now_utc()))

    def start(self) -> MailSink:
        if not self._running:
            self._controller.start()
            self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
