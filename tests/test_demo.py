"""The embedded demo's parts (neodefense.demo, neodefense.demo_sinks), not the whole demo.

The whole demo (README command 1) takes minutes and is measured by running it; here: the 2008 TC3
time-order split on the real bundled file, the demo's webhook receiver and mail sink driven by the
real delivery and verification code, the settings file, the inbox drop, and a subscription through
the real API with the challenge answered by the receiver.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import httpx
import numpy as np
import pytest

from neodefense import config, demo, inbox, timescales
from neodefense.alerts import channels
from neodefense.alerts.messages import email_subject, summary_line
from neodefense.alerts.replay import submission
from neodefense.alerts.signing import new_secret
from neodefense.demo_sinks import MailSink, WebhookSink
from neodefense.observations import io as obs_io


@pytest.fixture(scope="module")
def tc3():  # noqa: ANN201
    return demo.tc3_observations()


def _payload(alert_id: str = "NDA-1-1") -> dict:
    return {"alert_id": alert_id, "designation": "2008 TC3", "issued_utc": "2008-10-06T11:00:00Z",
            "kinds": ["new_object", "ip_up"], "events": [{"kind": "new_object"}],
            "risk": {"cumulative_ip": 0.97, "torino_max": 0}}


def _message(kind: str, target: str, secret: str = "", alert_id: str = "NDA-1-1",
             delivery_id: int = 1) -> channels.Message:
    return channels.Message(delivery_id=delivery_id, channel_id=7, kind=kind, target=target,  # type: ignore[arg-type]
                            secret=secret, format="json", alert_id=alert_id,
                            payload=_payload(alert_id), voevent="")


# -- the TC3 replay split ---------------------------------------------------------------------------

def test_tc3_steps_feed_every_observation_once_in_time_order(tc3) -> None:  # noqa: ANN001
    steps = demo.tc3_replay_steps(tc3)
    t = np.asarray(tc3.columns["obsTime_mjd"], dtype=float)
    fed = np.concatenate([s.indices for s in steps])
    assert len(fed) == len(set(fed.tolist())) == int(np.isfinite(t).sum()) == len(tc3) == 883
    assert [s.number for s in steps] == list(range(1, len(steps) + 1))
    assert [s.n_total for s in steps] == np.cumsum([len(s.indices) for s in steps]).tolist()
    # a few steps: the discovery tracklet, then growing arcs (the defaults: 4 h apart)
    assert [s.n_total for s in steps] == [4, 15, 23, 65, 471, 883]
    previous_cutoff = -np.inf
    for s in steps:
        times = t[s.indices]
        assert np.all(np.diff(times) >= 0)  # time order within a step
        assert np.all(times > previous_cutoff) and np.all(times <= s.cutoff_mjd_utc + 1e-8)
        previous_cutoff = s.cutoff_mjd_utc
    # the first step is Mt. Lemmon's discovery tracklet (the four G96 images, 43 minutes)
    first = steps[0]
    assert set(tc3.columns["stn"][first.indices].tolist()) == {"G96"}
    assert tc3.columns["disc"][first.indices[0]] == "*"
    assert (t[first.indices[-1]] - t[first.indices[0]]) * 24 * 60 == pytest.approx(43, abs=1)
    assert first.cutoff_utc.startswith("2008-10-06T07:2")
    assert [s.last_obs_utc for s in steps] == [
        str(x) for x in timescales.utc_mjd_to_iso(np.array([t[s.indices].max() for s in steps]), 0)]
    assert steps[-1].last_obs_utc == "2008-10-07T01:45:16"  # an hour before the fireball


def test_tc3_step_submissions_are_the_original_records(tc3) -> None:  # noqa: ANN001
    for step in demo.tc3_replay_steps(tc3, step_hours=6.0)[:3]:
        data, ext = submission(tc3.take(step.indices))
        assert ext == "obs80"
        assert data.decode().splitlines() == tc3.columns["raw"][step.indices].tolist()
        assert len(obs_io.read(data, file="x", fmt="obs80").batch) == len(step.indices)


def test_drop_in_inbox_is_atomic_and_scanned(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    first = demo.drop_in_inbox(root / "MPC", "a-step1.obs80", b"one")
    second = demo.drop_in_inbox(root / "MPC", "a-step2.obs80", b"two")
    assert first.read_bytes() == b"one" and not list(root.rglob("*.part"))
    assert [f.path for f in inbox.scan(root)] == [first, second]
    assert {f.submitter for f in inbox.scan(root)} == {"MPC"}


def test_settings_file_reads_back(tmp_path: Path) -> None:
    path = demo.write_settings(tmp_path / "s.toml", {
        "paths": {"data_dir": tmp_path.as_posix()}, "catalog": {"url": ""},
        "alerts.smtp": {"host": "127.0.0.1", "port": 2525}, "dask": {"address": "tcp://h:1"},
        "monitoring": demo.REPLAY_MONITORING})
    raw = tomllib.loads(path.read_text())
    assert raw["alerts"]["smtp"]["port"] == 2525 and raw["monitoring"] == demo.REPLAY_MONITORING
    settings = config.load(path)
    assert settings.data_dir == tmp_path.resolve() and settings.dask_address == "tcp://h:1"
    assert settings.raw["monitoring"]["bodies"] == ["earth"]
    assert settings.raw["alerts"]["smtp"]["sender"]  # the defaults' other keys stay


# -- the receivers --------------------------------------------------------------------------------------

def test_webhook_sink_answers_the_real_challenge() -> None:
    from neodefense.api.subscriptions import send_challenge

    with WebhookSink() as hook:
        ok, detail = send_challenge({"id": 3, "target": hook.url, "secret": new_secret()}, 9, 5.0)
        assert (ok, detail) == (True, "verified")
        assert hook.challenges == 1 and hook.alerts == []


def test_webhook_sink_checks_signatures_and_drops_repeats() -> None:
    secret = new_secret()
    with WebhookSink() as hook:
        hook.secret = secret
        live: list = []
        hook.on_arrival = live.append
        out = channels.send([_message("webhook", hook.url, secret)], timeout_s=5.0)
        assert out[0].ok and out[0].status_code == 200
        again = channels.send([_message("webhook", hook.url, secret)], timeout_s=5.0)  # a retry
        assert again[0].ok and hook.duplicates == 1
        forged = channels.send([_message("webhook", hook.url, new_secret(), "NDA-1-2", 2)],
                               timeout_s=5.0)
        assert not forged[0].ok and forged[0].status_code == 401
        (arrival,) = hook.take_new()
        assert hook.take_new() == []
        assert arrival.channel == "webhook" and arrival.alert_id == "NDA-1-1"
        assert arrival.signature_ok is True and arrival.text == summary_line(_payload())
        assert arrival.line().startswith("webhook received ") and "(signature ok)" in arrival.line()
        assert live == [arrival]  # printed as it arrived
        assert hook.payloads == [_payload()]
        other = httpx.post(hook.url.replace("/hook", "/elsewhere"), json={})
        assert other.status_code == 404


def test_mail_sink_receives_the_alert_email() -> None:
    with MailSink() as mail:
        smtp = channels.SmtpSettings(host=mail.host, port=mail.port, timeout_s=5.0)
        out = channels.send([_message("email", "someone@demo.localhost")], smtp=smtp,
                            subject_fn=email_subject)
        assert out[0].ok, out[0].error
        (arrival,) = mail.take_new()
        assert arrival.channel == "e-mail" and arrival.alert_id == "NDA-1-1"
        assert arrival.text == f"to someone@demo.localhost: {email_subject(_payload())}"
        assert mail.recipients == [["someone@demo.localhost"]]
        assert mail.messages[0]["Subject"] == email_subject(_payload())
        assert mail.take_new() == []


# -- subscription through the running API ------------------------------------------------------------

def test_dashboard_subscription_verifies_the_webhook(tmp_path: Path) -> None:
    from neodefense.catalog import alerts as catalog_alerts
    from neodefense.catalog import db

    settings = config.load().with_overrides(paths={"data_dir": str(tmp_path)}, catalog={"url": ""},
                                            api={"port": 0})
    with WebhookSink() as hook:
        board = demo.Dashboard(settings).start()
        try:
            assert httpx.get(board.url, timeout=10.0).status_code == 200
            engine = db.connect(settings.catalog_url)
            sub = demo.subscribe(hook, "x@demo.localhost", dashboard_url=board.url, engine=engine,
                                 settings=settings)
        finally:
            board.stop()
        assert sub["verified"] and hook.challenges == 1 and hook.secret
        assert {ch["kind"]: ch["status"] for ch in sub["channels"]} == {"webhook": "active",
                                                                        "email": "active"}
        stored = catalog_alerts.subscribers(engine, with_secrets=True)
        assert [ch["secret"] for ch in stored[0]["channels"] if ch["kind"] == "webhook"] == [hook.secret]
        engine.dispose()


def test_subscription_without_dashboard_uses_the_same_challenge(tmp_path: Path) -> None:
    from neodefense.catalog import db

    settings = config.load().with_overrides(paths={"data_dir": str(tmp_path)}, catalog={"url": ""})
    engine = db.connect(settings.catalog_url)
    with WebhookSink() as hook:
        sub = demo.subscribe(hook, "x@demo.localhost", dashboard_url=None, engine=engine,
                             settings=settings)
    engine.dispose()
    assert sub["verified"] and hook.challenges == 1 and hook.secret


def test_demo_command_line() -> None:
    from neodefense.cli import build_parser

    args = build_parser().parse_args(["demo", "--no-dashboard", "--serve-seconds", "5",
                                      "--no-prefect"])
    assert (args.no_dashboard, args.serve_seconds, args.no_prefect) == (True, 5.0, True)
    args = build_parser().parse_args(["demo"])
    assert (args.no_dashboard, args.serve_seconds, args.keep) == (False, None, False)


def test_demo_monitoring_settings_are_cheap() -> None:
    """The replay steps look days ahead, the others 100 years with the demo's sample counts."""
    assert demo.REPLAY_MONITORING["years"] <= 0.1
    assert demo.SEARCH_MONITORING["years"] == 100.0
    assert demo.SEARCH_MONITORING["n_samples"] == demo.DEMO_LOV_SAMPLES
    assert dt.datetime.fromisoformat(demo.TC3_FIREBALL["time_utc"]).year == 2008
