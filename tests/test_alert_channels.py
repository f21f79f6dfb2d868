"""Delivery channels against real loopback servers: signed webhooks (HTTP) and e-mail (SMTP)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import UTC, datetime

import pytest
from alert_receivers import MailSink, WebhookReceiver, free_port

from neodefense import __version__
from neodefense.alerts import signing
from neodefense.alerts.channels import (
    Message,
    Outcome,
    SmtpSettings,
    build_email,
    deliver_webhooks,
    is_transient,
    next_attempt_delay_s,
    send,
    send_emails,
    send_webhooks,
)
from neodefense.alerts.signing import (
    ALERT_ID_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    new_secret,
    sign,
    signature_header,
    verify,
)

SECRET = "s3cr3t-for-tests"
VOEVENT = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" '
           'ivorn="ivo://neodefense/alert#NDA-7-1" role="test" version="2.0"><Who/></voe:VOEvent>\n')


def payload(seq: int = 1, designation: str = "2008 TC3") -> dict:
    return {"schema": "neodefense.alert/1", "alert_id": f"NDA-7-{seq}", "sequence": seq,
            "designation": designation, "object_id": 7, "kinds": ["new_object", "imminent"],
            "events": [{"kind": "new_object", "message": "2008 TC3 enters the risk list."},
                       {"kind": "imminent", "message": "Impact on 2008-10-07 02:46 UTC."}],
            "risk": {"cumulative_ip": 0.99, "torino_max": 10, "n_vi": 1, "palermo_cum": 3.2},
            "issued_utc": "2008-10-06T08:00:00Z", "supersedes": None}


def hook(url: str, i: int = 0, *, fmt: str = "json", channel_id: int = 11, secret: str = SECRET) -> Message:
    p = payload(i + 1)
    return Message(delivery_id=100 + i, channel_id=channel_id, kind="webhook", target=url, secret=secret,
                   format=fmt, alert_id=p["alert_id"], payload=p, voevent=VOEVENT, attempt=1)


def mail(address: str, i: int = 0, channel_id: int = 21) -> Message:
    p = payload(i + 1)
    return Message(delivery_id=200 + i, channel_id=channel_id, kind="email", target=address, secret="",
                   format="json", alert_id=p["alert_id"], payload=p, voevent=VOEVENT, attempt=1)


@pytest.fixture
def receiver():
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def sink():
    with MailSink() as s:
        yield s


# ------------------------------------------------------------------------------------------ signing

def test_sign_and_verify_roundtrip_and_rejections():
    body = b'{"alert_id":"NDA-7-1"}'
    header = signature_header(SECRET, body, timestamp=1_700_000_000)
    assert header == f"t=1700000000,v1={sign(SECRET, 1_700_000_000, body)}"
    assert verify(SECRET, header, body, now=1_700_000_010)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_010)            # tampered body
    assert not verify("other-secret", header, body, now=1_700_000_010)          # wrong secret
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)            # stale (replay)
    assert not verify(SECRET, header, body, now=1_700_000_000 - 301)            # from the future
    assert verify(SECRET, header, body, now=1_700_000_000 + 1000, tolerance_s=2000)
    for bad in ("", "t=1700000000", "v1=" + "0" * 64, "t=abc,v1=" + "0" * 64, "garbage",
                "t=1700000000,t=1700000000,v1=" + sign(SECRET, 1_700_000_000, body),
                "t=-5,v1=" + "0" * 64, "t=1700000000,v1=xyz"):
        assert not verify(SECRET, bad, body, now=1_700_000_000), bad
    # rotation: any of several v1 values may match
    rotated = f"t=1700000000,v1={'a' * 64},v1={sign(SECRET, 1_700_000_000, body)}"
    assert verify(SECRET, rotated, body, now=1_700_000_000)
    # the HMAC is the documented construction
    import hashlib
    import hmac
    assert sign(SECRET, 5, body) == hmac.new(SECRET.encode(), b"5." + body, hashlib.sha256).hexdigest()
    s = new_secret()
    assert len(s) == 64 and int(s, 16) >= 0 and s != new_secret()


def test_plain_python_receiver_example_in_docstring_works():
    doc = signing.__doc__
    code = doc[doc.index("    import hashlib, hmac, time"):].split("\n\n")[0]
    namespace: dict = {}
    exec("\n".join(line[4:] for line in code.splitlines()), namespace)
    body = b"<xml/>"
    assert namespace["is_authentic"](SECRET, signature_header(SECRET, body), body)
    assert not namespace["is_authentic"](SECRET, signature_header(SECRET, body), body + b"x")
    assert not namespace["is_authentic"](SECRET, signature_header(SECRET, body, time.time() - 900), body)


# ------------------------------------------------------------------------------------------ webhooks

def test_webhook_json_delivery_is_signed_with_headers(receiver):
    msg = hook(receiver.url)
    [out] = deliver_webhooks([msg])
    assert out.ok and out.status_code == 200 and out.error == "" and not out.gone
    assert out.delivery_id == 100 and out.channel_id == 11 and out.duration_s > 0
    assert out.attempted_at.tzinfo is not None
    assert abs((datetime.now(UTC) - out.attempted_at).total_seconds()) < 10
    [req] = receiver.requests
    assert req.method == "POST" and req.path == "/hook"
    assert req.body == json.dumps(msg.payload, sort_keys=True, separators=(",", ":")).encode() == msg.body()
    assert json.loads(req.body) == msg.payload
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == f"neodefense/{__version__}"
    assert req.headers[ALERT_ID_HEADER] == "NDA-7-1"
    assert req.headers[IDEMPOTENCY_HEADER] == "NDA-7-1:11" == msg.idempotency_key()
    assert verify(SECRET, req.headers[SIGNATURE_HEADER], req.body)
    assert not verify("wrong", req.headers[SIGNATURE_HEADER], req.body)
    assert not verify(SECRET, req.headers[SIGNATURE_HEADER], req.body.replace(b"0.99", b"0.01"))


def test_webhook_voevent_format_and_retry_keeps_idempotency_key(receiver):
    receiver.fail_first(1, status=503)
    msg = hook(receiver.url, fmt="voevent", channel_id=12)
    first = deliver_webhooks([msg])[0]
    msg.attempt = 2
    second = deliver_webhooks([msg])[0]
    assert not first.ok and first.status_code == 503 and is_transient(first)
    assert "503" in first.error and not first.gone
    assert second.ok
    a, b = receiver.requests
    assert a.body == b.body == VOEVENT.encode("utf-8")
    assert a.headers["Content-Type"] == "application/xml"
    assert a.headers[IDEMPOTENCY_HEADER] == b.headers[IDEMPOTENCY_HEADER] == "NDA-7-1:12"
    assert verify(SECRET, b.headers[SIGNATURE_HEADER], b.body)


@pytest.mark.parametrize("status, transient, gone", [
    (503, True, False), (500, True, False), (429, True, False), (408, True, False),
    (404, False, False), (400, False, False), (410, False, True)])
def test_webhook_status_classification(receiver, status, transient, gone):
    receiver.status = status
    receiver.retry_after = 7
    [out] = deliver_webhooks([hook(receiver.url)])
    assert not out.ok and out.status_code == status
    assert is_transient(out) is transient and out.gone is gone and not out.permanent
    assert out.error.startswith(f"HTTP {status}") and len(out.error) <= 500
    if status in (429, 503):
        assert out.retry_after_s == 7.0


def test_webhook_connection_refused_gives_clear_error():
    url = f"http://127.0.0.1:{free_port()}/hook"
    [out] = deliver_webhooks([hook(url)])
    assert not out.ok and out.status_code is None and is_transient(out)
    assert "ConnectError" in out.error and "refused" in out.error.lower(), out.error


def test_webhook_timeout_is_transient_and_bounded(receiver):
    receiver.delay_s = 3.0
    t0 = time.monotonic()
    [out] = deliver_webhooks([hook(receiver.url)], timeout_s=0.3)
    assert time.monotonic() - t0 < 2.0
    assert not out.ok and out.status_code is None and is_transient(out)
    assert "timeout" in out.error.lower() or "timed out" in out.error.lower(), out.error
    assert out.duration_s < 2.0


def test_webhook_down_then_up(receiver):
    receiver.down()
    [out] = deliver_webhooks([hook(receiver.url)])
    assert not out.ok and is_transient(out)
    receiver.up()
    [out] = deliver_webhooks([hook(receiver.url)])
    assert out.ok and len(receiver.requests) == 1


def test_webhook_invalid_target_is_permanent_and_does_not_sink_the_batch(receiver):
    msgs = [hook("ftp://example.invalid/x", 0), hook(receiver.url, 1), hook("not a url", 2)]
    outs = deliver_webhooks(msgs)
    assert [o.delivery_id for o in outs] == [100, 101, 102]
    assert [o.ok for o in outs] == [False, True, False]
    assert outs[0].permanent and outs[2].permanent and not is_transient(outs[0])
    assert outs[0].error.startswith("invalid webhook")


def test_webhook_many_concurrent_deliveries(receiver):
    receiver.delay_s = 0.02
    msgs = [hook(receiver.url, i) for i in range(200)]
    outs = deliver_webhooks(msgs, concurrency=16)
    assert all(o.ok for o in outs), [o.error for o in outs if not o.ok][:3]
    assert [o.delivery_id for o in outs] == [m.delivery_id for m in msgs]
    assert len(receiver.requests) == 200
    assert {r.headers[ALERT_ID_HEADER] for r in receiver.requests} == {m.alert_id for m in msgs}
    assert all(verify(SECRET, r.headers[SIGNATURE_HEADER], r.body) for r in receiver.requests)
    assert 1 < receiver.max_in_flight <= 16  # concurrent, but bounded


def test_deliver_webhooks_inside_a_running_loop(receiver):
    async def main() -> list[Outcome]:
        return deliver_webhooks([hook(receiver.url)])  # a Prefect task may already run a loop

    [out] = asyncio.run(main())
    assert out.ok


def test_send_webhooks_with_callers_client(receiver):
    import httpx

    async def main() -> list[Outcome]:
        async with httpx.AsyncClient() as client:
            return await send_webhooks([hook(receiver.url, 0), hook(receiver.url, 1)], client=client)

    assert [o.ok for o in asyncio.run(main())] == [True, True]
    with pytest.raises(ValueError):
        asyncio.run(send_webhooks([mail("a@b.c")]))


# --------------------------------------------------------------------------------------------- email

def test_email_arrives_with_subject_text_attachment_and_headers(sink):
    smtp = SmtpSettings(host=sink.host, port=sink.port, sender="alerts@neodefense.test", timeout_s=5)
    outs = send_emails([mail("ops@example.org")], smtp, subject_fn=lambda p: f"ALERT {p['designation']}\n",
                       text_fn=lambda p: f"Impact of {p['designation']} imminent.\n")
    assert [o.ok for o in outs] == [True] and outs[0].status_code == 250 and outs[0].kind == "email"
    [received] = sink.wait_for(1)
    assert sink.mails[0].rcpt_tos == ["ops@example.org"]
    assert sink.mails[0].mail_from == "alerts@neodefense.test"
    assert received["Subject"] == "ALERT 2008 TC3"
    assert received["From"] == "alerts@neodefense.test" and received["To"] == "ops@example.org"
    assert received["Message-ID"] == "<NDA-7-1.21@neodefense>"
    assert received[ALERT_ID_HEADER] == "NDA-7-1"
    assert received[IDEMPOTENCY_HEADER] == "NDA-7-1:21"
    text = received.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == "Impact of 2008 TC3 imminent.\n"
    [attachment] = list(received.iter_attachments())
    assert attachment.get_content_type() == "application/xml"
    assert attachment.get_filename() == "NDA-7-1.xml"
    assert attachment.get_content() == VOEVENT.encode("utf-8")


def test_email_default_texts(sink):
    smtp = SmtpSettings(host=sink.host, port=sink.port)
    assert send_emails([mail("a@example.org")], smtp)[0].ok
    [received] = sink.wait_for(1)
    assert received["Subject"] == "[neodefense] 2008 TC3: new_object, imminent"
    text = received.get_body(("plain",)).get_content()
    assert "NDA-7-1" in text and "Impact on 2008-10-07 02:46 UTC." in text


def test_email_refused_recipient_fails_only_that_message(sink):
    sink.refuse("gone@example.org")
    smtp = SmtpSettings(host=sink.host, port=sink.port)
    batch = [mail("a@example.org", 0), mail("gone@example.org", 1), mail("b@example.org", 2)]
    outs = send_emails(batch, smtp)
    assert [o.ok for o in outs] == [True, False, True]
    assert outs[1].status_code == 550 and "550" in outs[1].error and not is_transient(outs[1])
    assert [m.rcpt_tos for m in sink.mails] == [["a@example.org"], ["b@example.org"]]


def test_email_temporary_refusal_is_transient(sink):
    sink.refuse("busy@example.org", "451 4.3.0 try again later")
    [out] = send_emails([mail("busy@example.org")], SmtpSettings(host=sink.host, port=sink.port))
    assert not out.ok and out.status_code == 451 and is_transient(out)


def test_email_reconnects_once_when_dropped(sink):
    sink.drop_connections(1)
    smtp = SmtpSettings(host=sink.host, port=sink.port, timeout_s=5)
    outs = send_emails([mail("a@example.org", 0), mail("b@example.org", 1)], smtp)
    assert [o.ok for o in outs] == [True, True], [o.error for o in outs]
    assert len(sink.wait_for(2)) == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_email_login():
    with MailSink(users={"alerts": "pw"}) as sink:
        good = SmtpSettings(host=sink.host, port=sink.port, user="alerts", password="pw")
        outs = send_emails([mail("a@example.org", 0), mail("b@example.org", 1)], good)
        assert [o.ok for o in outs] == [True, True]
        assert sink.logins == ["alerts"]  # one session for the batch
        bad = SmtpSettings(host=sink.host, port=sink.port, user="alerts", password="wrong")
        [out] = send_emails([mail("c@example.org")], bad)
        assert not out.ok and is_transient(out) and "535" in out.error, out.error
        anonymous = SmtpSettings(host=sink.host, port=sink.port)
        [out] = send_emails([mail("d@example.org")], anonymous)
        assert not out.ok and is_transient(out) and "sender refused: SMTP 530" in out.error, out.error
        assert len(sink.mails) == 2


def test_email_server_unreachable_fails_every_message_transiently():
    smtp = SmtpSettings(host="127.0.0.1", port=free_port(), timeout_s=2)
    outs = send_emails([mail("a@example.org", 0), mail("b@example.org", 1)], smtp)
    assert [o.ok for o in outs] == [False, False]
    assert all(is_transient(o) and "cannot connect" in o.error for o in outs)


def test_email_bad_address_is_permanent(sink):
    outs = send_emails([mail("not-an-address", 0), mail("x@example.org\r\nBcc: evil@example.org", 1),
                        mail("ok@example.org", 2)], SmtpSettings(host=sink.host, port=sink.port))
    assert [o.ok for o in outs] == [False, False, True]
    assert outs[0].permanent and outs[1].permanent
    assert [m.rcpt_tos for m in sink.mails] == [["ok@example.org"]]


def test_build_email_without_voevent_has_no_attachment():
    m = mail("a@example.org")
    m.voevent = ""
    built = build_email(m, "n@localhost")
    assert not list(built.iter_attachments()) and built["Auto-Submitted"] == "auto-generated"


def test_smtp_settings_from_config():
    s = SmtpSettings.from_settings({"host": "mail.example.org", "port": "587", "sender": "x@y", "user": "u",
                                    "password": "pw", "starttls": True, "timeout_s": 12})
    assert (s.host, s.port, s.starttls, s.timeout_s) == ("mail.example.org", 587, True, 12.0)
    assert "pw" not in repr(s)
    assert SmtpSettings.from_settings({}) == SmtpSettings()
    with pytest.raises(ValueError, match="hots"):
        SmtpSettings.from_settings({"hots": "typo"})


# ------------------------------------------------------------------------------------------ dispatch

def test_send_mixed_batch_keeps_input_order(receiver, sink):
    receiver.fail_first(1, status=410)
    msgs = [hook(receiver.url, 0), mail("a@example.org", 1), hook(receiver.url, 2), mail("b@example.org", 3)]
    odd = hook(receiver.url, 4)
    odd.kind = "pigeon"  # type: ignore[assignment]
    outs = send(msgs + [odd], smtp=SmtpSettings(host=sink.host, port=sink.port), concurrency=1)
    assert [o.delivery_id for o in outs] == [100, 201, 102, 203, 104]
    assert [o.ok for o in outs] == [False, True, True, True, False]
    assert outs[0].gone and outs[4].permanent
    assert [o.kind for o in outs[:4]] == ["webhook", "email", "webhook", "email"]
    assert len(sink.wait_for(2)) == 2 and len(receiver.requests) == 2


def test_send_email_without_smtp_settings_fails_transiently():
    [out] = send([mail("a@example.org")])
    assert not out.ok and is_transient(out) and "SMTP" in out.error


# ------------------------------------------------------------------------------------------- backoff

def test_backoff_grows_and_caps():
    delays = [next_attempt_delay_s(n, jitter=0.0) for n in range(1, 12)]
    assert delays[:4] == [30.0, 60.0, 120.0, 240.0]
    assert all(b >= a for a, b in zip(delays, delays[1:]))
    assert delays[-1] == 3600.0 and max(delays) == 3600.0
    assert next_attempt_delay_s(10_000, jitter=0.0) == 3600.0  # no overflow
    assert next_attempt_delay_s(3, base_s=1, factor=3, max_s=100, jitter=0) == 9.0


def test_backoff_jitter_is_bounded_and_deterministic():
    a = [next_attempt_delay_s(n, rng=random.Random(5)) for n in range(1, 10)]
    b = [next_attempt_delay_s(n, rng=random.Random(5)) for n in range(1, 10)]
    assert a == b
    for n in range(1, 15):
        nominal = min(3600.0, 30.0 * 2 ** (n - 1))
        d = next_attempt_delay_s(n, jitter=0.1, rng=random.Random(n))
        assert 0.9 * nominal <= d <= 1.1 * nominal
    spread = {round(next_attempt_delay_s(20, rng=random.Random(i)), 6) for i in range(20)}
    assert len(spread) > 10  # retries at the cap do not all fire together
    with pytest.raises(ValueError):
        next_attempt_delay_s(0)
