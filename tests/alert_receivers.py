"""Real loopback receivers for alert deliveries: an HTTP webhook endpoint and an SMTP sink.

Both listen on 127.0.0.1 on an ephemeral port, run in daemon threads and record what they got;
use them as context managers. Shared by the channel tests, the end-to-end alert tests and the
delivery benchmark.

    with WebhookReceiver() as hook, MailSink() as mail:
        ...deliver to hook.url and SmtpSettings(host=mail.host, port=mail.port)...
        hook.wait_for(3); assert hook.requests[0].headers["Idempotency-Key"] == ...
"""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage, Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["MailSink", "ReceivedMail", "RecordedRequest", "WebhookReceiver", "free_port"]


@dataclass
class RecordedRequest:
    """One request as the receiver saw it; ``headers`` is case-insensitive (``headers["x-a"]``)."""

    method: str
    path: str
    headers: Message
    body: bytes
    status: int  # what the receiver answered
    received_monotonic: float


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many concurrent connects must not overflow the backlog
    receiver: WebhookReceiver


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint would
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        status, delay_s = receiver._decide()
        try:
            if delay_s > 0 and receiver._release.wait(delay_s):
                self.close_connection = True
                return  # the receiver is stopping: drop the connection unanswered
            receiver._record(RecordedRequest(self.command, self.path, self.headers, body, status,
                                             time.monotonic()))
            reply = b'{"ok":true}' if 200 <= status < 300 else f"status {status}".encode()
            if 200 <= status < 300 and receiver.answer_challenges:
                reply = _challenge_answer(body) or reply
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status < 300 else "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                if status in (429, 503) and receiver.retry_after is not None:
                    self.send_header("Retry-After", str(receiver.retry_after))
                self.end_headers()
                self.wfile.write(reply)
            except OSError:
                self.close_connection = True  # the client gave up (timeout): nothing to answer
        finally:
            receiver._leave()

    do_POST = _handle
    do_PUT = _handle
    do_GET = _handle


def _challenge_answer(body: bytes) -> bytes | None:
    """``{"challenge": ...}`` for a neodefense verification POST, else None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("type") == "neodefense.verification":
        return json.dumps({"challenge": data.get("challenge")}).encode()
    return None


class WebhookReceiver:
    """A webhook endpoint on ``http://127.0.0.1:<port>/hook`` recording every request.

    Behaviour knobs (thread-safe, changeable while running): ``status`` (default 200) answered
    after :meth:`fail_first` is used up; ``delay_s`` to sleep before answering (past a client
    timeout); ``retry_after`` sent with 429/503; :meth:`down` closes the listening socket so
    connections are refused, :meth:`up` listens again on the same port; ``answer_challenges``
    (default True) echoes a subscription's verification challenge, as a real subscriber's
    endpoint must.
    Requests answered are appended to ``requests`` (after any delay; a dropped one is not).
    """

    def __init__(self, *, status: int = 200, delay_s: float = 0.0, path: str = "/hook") -> None:
        self.status = status
        self.delay_s = delay_s
        self.retry_after: int | None = None
        self.answer_challenges = True
        self.path = path
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self.in_flight = 0  # requests being handled now (delay included)
        self.max_in_flight = 0  # the most handled at once since start
        self._fail_left = 0
        self._fail_status = 503
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._release = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> WebhookReceiver:
        if self._server is not None:
            return self
        self._release.clear()
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"webhook-receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def down(self) -> None:
        """Stop listening: new connections are refused until :meth:`up`."""
        self.stop()

    def up(self) -> None:
        """Listen again on the same port."""
        self.start()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour
    def fail_first(self, n: int, status: int = 503) -> None:
        """Answer ``status`` to the next ``n`` requests, then ``self.status`` again."""
        with self._lock:
            self._fail_left = n
            self._fail_status = status

    def _decide(self) -> tuple[int, float]:
        """The status and delay for a request that just arrived (counted in flight until
        :meth:`_leave`)."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self._fail_left > 0:
                self._fail_left -= 1
                return self._fail_status, self.delay_s
            return self.status, self.delay_s

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _record(self, request: RecordedRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    # -- inspection
    def wait_for(self, n: int, timeout_s: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests were answered; AssertionError after ``timeout_s``."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= n, timeout_s):
                raise AssertionError(f"{len(self.requests)} webhook requests arrived, expected {n}")
            return list(self.requests)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class _SinkHandler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        refusal = self.sink.refused.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if self.sink._take_drop():
            server.transport.close()  # the connection dies under the client
            return "421 4.3.0 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content or envelope.content,
                                          policy=email.policy.default)
        self.sink._record(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to bind an ephemeral port (port=0)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class MailSink:
    """An SMTP server (aiosmtpd) on 127.0.0.1 that records every message.

    ``messages``: the parsed :class:`email.message.EmailMessage` objects received, ``mails``: the
    same with their envelopes. :meth:`refuse` makes RCPT TO for an address fail with a reply;
    :meth:`drop_connections` closes the next ``n`` sessions at MAIL FROM. With ``users``
    (name → password) the server requires AUTH (PLAIN/LOGIN, no TLS) and records ``logins``.
    """

    def __init__(self, *, users: dict[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.mails: list[ReceivedMail] = []
        self.refused: dict[str, str] = {}
        self.logins: list[str] = []  # users that authenticated
        self._users = dict(users or {})
        self._drops_left = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        auth: dict[str, Any] = {}
        if users is not None:  # AUTH PLAIN/LOGIN without TLS (loopback test only); required
            auth = {"authenticator": self._authenticate, "auth_require_tls": False, "auth_required": True}
        self._controller = _Controller(_SinkHandler(self), hostname=self.host, port=0, **auth)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        ok = self._users.get(user) == auth_data.password.decode()
        if ok:
            with self._lock:
                self.logins.append(user)
        return AuthResult(success=ok, handled=False)

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [m.message for m in self.mails]

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse(self, address: str, reply: str = "550 5.1.1 mailbox unavailable") -> None:
        self.refused[address.lower()] = reply

    def drop_connections(self, n: int = 1) -> None:
        with self._lock:
            self._drops_left = n

    def _take_drop(self) -> bool:
        with self._lock:
            if self._drops_left > 0:
                self._drops_left -= 1
                return True
            return False

    def _record(self, mail: ReceivedMail) -> None:
        with self._arrived:
            self.mails.append(mail)
            self._arrived.notify_all()

    def wait_for(self, n: int, timeout_s: float = 5.0) -> list[EmailMessage]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.mails) >= n, timeout_s):
                raise AssertionError(f"{len(self.mails)} e-mails arrived, expected {n}")
            return [m.message for m in self.mails]


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
