"""Alert replay (neodefense.alerts.replay): 2008 TC3's discovery through ingest, fit, monitoring,
the alert rules and webhook delivery, on a real catalog and a real loopback HTTP receiver."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from alert_receivers import WebhookReceiver

from neodefense import timescales
from neodefense.alerts.replay import SUBMITTER, alert_replay, submission
from neodefense.alerts.signing import verify
from neodefense.catalog import alerts as catalog_alerts
from neodefense.catalog import db
from neodefense.catalog.assessments import assessment_history
from neodefense.catalog.queries import submissions
from neodefense.impacts.replay import replay
from neodefense.observations import ades, io
from neodefense.observations.batch import ObservationBatch

#: 2008 TC3's fireball over the Nubian desert (US government sensors), UTC
FIREBALL_UTC = dt.datetime(2008, 10, 7, 2, 45, 45, tzinfo=dt.UTC)
SECRET = "replay-test-secret"


@pytest.fixture(scope="module")
def tc3(shared_data: Path) -> ObservationBatch:
    return io.read(shared_data / "observations" / "2008_TC3.obs80").batch


def _utc(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def test_submission_format_is_the_exact_one(tc3: ObservationBatch) -> None:
    # an obs80 source goes in as obs80 (records copied verbatim: every field survives) ...
    data, ext = submission(tc3.take(np.arange(10)))
    assert ext == "obs80"
    assert data.decode().splitlines() == tc3["raw"][:10].tolist()
    # ... an ADES source as ADES PSV, which reproduces it
    psv = io.read(ades.write_psv(tc3.take(np.arange(10))).encode(), fmt="ades_psv").batch
    data, ext = submission(psv)
    back = io.read(data, fmt="ades_psv").batch
    assert ext == "psv"
    for name in ("obsTime_mjd", "ra", "dec", "stn", "provID", "disc", "mag"):
        assert np.array_equal(back[name], psv[name]), name


def test_alert_replay_plumbing(tc3: ObservationBatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'replay.sqlite'}"
    seen: list[dict] = []
    settings = {"step_hours": 3.0, "years": 0.01, "n_samples": 50, "seed": 0}
    out = alert_replay(tc3, "2008 TC3", catalog_url=url, max_steps=2, on_step=seen.append,
                       subscribers=[{"kind": "webhook", "target": "http://127.0.0.1:9/hook",
                                     "secret": SECRET}], **settings)
    assert out["designation"] == "2008 TC3" and out["catalog_url"] == url
    assert out["deliveries"] is None  # deliver=False: the outbox keeps them
    steps = out["steps"]
    assert seen == steps and [s["step"] for s in steps] == [0, 1]
    assert [s["n_obs"] for s in steps] == [4, 15] and [s["n_new"] for s in steps] == [4, 11]
    assert [s["n_accepted"] for s in steps] == [4, 11] and [s["n_fit"] for s in steps] == [4, 15]
    assert [s["fit_status"] for s in steps] == ["arc_too_short", "converged"]
    assert [s["method"] for s in steps] == ["mc", "lov"]
    assert all(s["status"] == "ok" and s["torino_max"] == 0 for s in steps)
    assert steps[1]["n_vi"] >= 1 and steps[1]["alerts"]  # 15 observations: on the risk list
    # the catalog path gives what the in-memory replay gives on the same observations
    (memory,) = replay(tc3, "2008 TC3", max_steps=1, **settings)
    assert steps[0]["cumulative_ip"] == memory["cumulative_ip"]
    assert steps[0]["n_samples"] == memory["n_samples"] and steps[0]["cumulative_ip"] > 0

    engine = db.connect(url)
    try:
        subs = submissions(engine)
        assert sorted(s["filename"] for s in subs) == ["replay-step-0.obs80",
                                                       "replay-step-1.obs80"]
        assert {s["submitter"] for s in subs} == {SUBMITTER}
        history = assessment_history(engine, "2008 TC3")
        assert [h["id"] for h in history] == [s["assessment_id"] for s in steps]
        # assessments and alerts are dated in simulated time: the step's cutoff
        assert [h["created_at"].strftime("%Y-%m-%dT%H:%M:%S") for h in history] == \
            [s["cutoff_utc"] for s in steps]
        stored = catalog_alerts.alerts(engine)
        assert [a["alert_id"] for a in stored] == [a["alert_id"] for a in out["alerts"]]
        assert [a for s in steps for a in s["alerts"]] == [a["alert_id"] for a in stored]
        assert out["alerts"][0]["kinds"][0] == "new_object"
        for a in out["alerts"]:
            assert a["issued_utc"] == a["cutoff_utc"] + "Z"
            assert a["step"] in (0, 1)
        # undelivered, one delivery per alert for the one channel
        assert catalog_alerts.delivery_summary(engine)["deliveries"] == {
            "pending": len(stored)}
        (sub,) = catalog_alerts.subscribers(engine)
        assert sub["name"] == "replay-1" and sub["channels"][0]["pending"] == len(stored)
    finally:
        engine.dispose()
    # lead time: to the imminent entry of the final (step 1) assessment, when it has one
    final = out["alerts"][-1]["payload"]
    if final["imminent"] is not None:
        entry = _utc(final["imminent"]["entry"]["time_utc"])
        for a in out["alerts"]:
            assert a["lead_hours"] == pytest.approx(
                (entry - _utc(a["issued_utc"])).total_seconds() / 3600.0)
    else:
        assert all(a["lead_hours"] is None for a in out["alerts"])


@pytest.mark.slow
def test_tc3_alert_replay_end_to_end(tc3: ObservationBatch) -> None:
    """The whole discovery, 3-hour steps, coarse monitoring (~50 s on 2 busy cores)."""
    with WebhookReceiver() as hook:
        out = alert_replay(tc3, "2008 TC3", step_hours=3.0, n_samples=100, years=0.01,
                           method="lov", cross_check=False, deliver=True,
                           subscribers=[{"kind": "webhook", "target": hook.url, "format": "json",
                                         "secret": SECRET}])
        requests = list(hook.requests)
    steps, alerts = out["steps"], out["alerts"]
    last_obs = _utc(str(timescales.utc_mjd_to_iso(float(np.nanmax(tc3["obsTime_mjd"])), 0)[0]))

    assert steps[0]["fit_status"] == "arc_too_short" and steps[0]["method"] == "mc"
    assert steps[-1]["n_obs"] == len(tc3)
    assert all(s["status"] == "ok" for s in steps)
    # 2008 TC3 (~4 m) would have released ~1 kt, far below the 1 Mt where the Torino scale
    # starts: its Torino rating stays 0 however certain the impact.
    assert all(s["torino_max"] == 0 for s in steps)
    assert all(a["payload"]["risk"]["torino_max"] == 0 for a in alerts)
    assert not any("torino_change" in a["kinds"] for a in alerts)
    ips = [s["cumulative_ip"] for s in steps]
    assert ips[-1] == pytest.approx(1.0)

    # the sequence: discovery alert, then the IP passing thresholds upwards, never down
    assert len(alerts) >= 3
    assert alerts[0]["kinds"][0] == "new_object"
    ups = [e["threshold"] for a in alerts for e in a["payload"]["events"] if e["kind"] == "ip_up"]
    assert len(ups) >= 2 and ups == sorted(set(ups)) and ups[-1] >= 0.99
    assert not any("ip_down" in a["kinds"] or "removed" in a["kinds"] for a in alerts)
    # an imminent-impact alert whose entry time is within a few minutes of the real fireball,
    # issued hours before the last observation was made
    close = [a for a in alerts if "imminent" in a["kinds"] and abs(
        (_utc(a["payload"]["imminent"]["entry"]["time_utc"]) - FIREBALL_UTC).total_seconds())
        < 180.0]
    assert close, [a["payload"]["imminent"] for a in alerts]
    assert _utc(close[0]["issued_utc"]) < last_obs - dt.timedelta(hours=3)
    assert close[0]["lead_hours"] > 3.0
    for a in alerts:  # issued in simulated time, at the step that raised it
        assert _utc(a["issued_utc"]) == _utc(a["cutoff_utc"])
        assert a["lead_hours"] == pytest.approx(
            (FIREBALL_UTC - _utc(a["issued_utc"])).total_seconds() / 3600.0, abs=0.05)

    # the alerts form one chain, each superseding the previous
    ids = [a["alert_id"] for a in alerts]
    assert [a["payload"]["sequence"] for a in alerts] == list(range(1, len(alerts) + 1))
    assert [a["payload"]["supersedes"] for a in alerts] == [None, *ids[:-1]]

    # the receiver got every alert exactly once, signed, with the catalog's payload
    assert out["deliveries"]["delivered"] == len(alerts) == len(requests)
    assert out["deliveries"]["failed"] == 0 and out["deliveries"]["already"] == 0
    keys = [r.headers["Idempotency-Key"] for r in requests]
    assert len(set(keys)) == len(keys)
    assert [r.headers["X-Neodefense-Alert-Id"] for r in requests] == ids
    for request, a in zip(requests, alerts, strict=True):
        assert verify(SECRET, request.headers["X-Neodefense-Signature"], request.body)
        assert json.loads(request.body) == a["payload"]
    engine = db.connect(out["catalog_url"])
    try:
        for alert_id in ids:
            assert catalog_alerts.alert(engine, alert_id)["deliveries"] == {"delivered": 1}
        (sub,) = catalog_alerts.subscribers(engine)
        assert sub["channels"][0]["delivered"] == len(alerts)
        assert catalog_alerts.delivery_summary(engine)["attempts"] == len(alerts)
    finally:
        engine.dispose()
