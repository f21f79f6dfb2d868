"""The risk list, alerts and the delivery outbox in the catalog (SQLite and PostgreSQL), delivered
to real receivers on loopback: an HTTP server for webhooks, an aiosmtpd server for e-mail.

Assessments are hand-built with the values the monitor produces (as in test_assessments) for the
real 2024 BX1 observations, so the catalog's rules, outbox and delivery are under test, not the
monitor (the replay test runs the whole pipeline on 2008 TC3).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alert_receivers import MailSink, WebhookReceiver

from neodefense.alerts import channels
from neodefense.alerts.deliver import DeliveryOptions, deliver_due
from neodefense.alerts.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify
from neodefense.alerts.voevent import parse_voevent
from neodefense.catalog import alerts, assessments, ingest, queries, solutions
from neodefense.impacts.assessment import FAILED, OK, ImpactAssessment, VirtualImpactor
from neodefense.orbits.solution import CONVERGED, OrbitSolution

OBSERVATIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
DESIGNATION = "2024 BX1"
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
#: retries within a test's patience: 20 ms, 40 ms, 80 ms, ... capped at 0.2 s
FAST = alerts.DeliveryPolicy(backoff_base_s=0.02, backoff_factor=2.0, backoff_max_s=0.2,
                             jitter=0.0, max_attempts=4, lease_s=30.0)


@pytest.fixture()
def bx1(catalog_engine) -> tuple[int, int]:
    """2024 BX1 in the catalog with one (hand-made) converged solution: (object id, solution id)."""
    ingest.ingest(catalog_engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80", submitter="K88")
    _, ids = solutions.observations_with_ids(catalog_engine, DESIGNATION)
    object_id = queries.resolve(catalog_engine, DESIGNATION)
    sol = OrbitSolution(designation=DESIGNATION, status=CONVERGED, epoch_tdb_jd=2460330.5,
                        state_icrf_au=np.array([-0.46, 0.87, 0.38, -0.017, -0.007, -0.004]),
                        rms_arcsec=0.41, n_obs=len(ids), n_used=len(ids))
    return object_id, solutions.store_solution(catalog_engine, object_id, sol, ids)


def _vi(ip: float, year: int = 2067, torino: int = 0, imminent: bool = False) -> VirtualImpactor:
    entry = corridor = None
    if imminent:
        entry = {"time_utc": "2024-01-21T00:32:38.1", "lat_deg": 52.6, "lon_deg": 12.77,
                 "alt_km": 100.0}
        corridor = {"1sigma": [[52.1, 12.0], [53.0, 13.5]], "3sigma": [[51.0, 10.0]]}
    return VirtualImpactor(body="earth", time_tdb_jd=2482345.1, date_utc=f"{year}-09-14.62",
                           ip=ip, palermo=-2.3, torino=torino, v_inf_km_s=11.2,
                           energy_mt=120.0, diameter_m=140.0, method="lov", entry=entry,
                           corridor=corridor)


def _assessment(vis: list[VirtualImpactor], status: str = OK, torino: int | None = None,
                iawn: bool = False) -> ImpactAssessment:
    ip = float(sum(v.ip for v in vis))
    return ImpactAssessment(
        designation=DESIGNATION, status=status, method="lov", n_samples=1001, seed=0,
        years=100.0, cumulative_ip=ip, palermo_cum=(np.log10(ip) - 2.0) if ip else None,
        palermo_max=(np.log10(max(v.ip for v in vis)) - 2.0) if vis else None,
        torino_max=max((v.torino for v in vis), default=0) if torino is None else torino,
        iawn_notify=iawn, H=22.0, diameter_m=140.0, virtual_impactors=vis,
        solution_epoch_tdb_jd=2460330.5, solution_code_version="test")


def _store(engine, solution_id: int, a: ImpactAssessment, minutes: int = 0) -> int:  # noqa: ANN001
    return assessments.store_assessment(engine, solution_id, a,
                                        as_of=T0 + dt.timedelta(minutes=minutes))


def _count(engine, table: str, where: str = "") -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one()


def _options(**kw) -> DeliveryOptions:  # noqa: ANN003
    return DeliveryOptions(policy=kw.pop("policy", FAST), webhook_timeout_s=2.0, concurrency=8,
                           **kw)


# -- the risk list and the alert chain -------------------------------------------------------------

def test_risk_list_alert_chain_and_removal(catalog_engine, bx1):
    object_id, sol = bx1
    _store(catalog_engine, sol, _assessment([_vi(2.5e-4)]), 0)  # new object (≥ 1e-4)
    _store(catalog_engine, sol, _assessment([_vi(3e-4)]), 1)  # nothing crossed: no alert
    _store(catalog_engine, sol, _assessment([], status=FAILED), 2)  # a failed run changes nothing
    _store(catalog_engine, sol, _assessment([_vi(2e-2, torino=1), _vi(1e-3, 2070)]), 3)
    listed = alerts.risk_list(catalog_engine)
    assert len(listed) == 1
    row = listed[0]
    assert row["designation"] == DESIGNATION and row["rank"] == 1
    assert row["n_vi"] == 2 and row["year_range"] == "2067-2070"
    assert row["cumulative_ip"] == pytest.approx(2.1e-2) and row["torino_max"] == 1
    assert row["v_inf_km_s"] == pytest.approx(11.2) and row["n_obs_used"] > 0
    assert row["last_obs_utc"].startswith("2024-01-2") and row["arc_days"] > 0
    assert row["updated_utc"] == "2026-12-01T12:03:00Z"
    assert row["added_utc"] == "2026-12-01T12:00:00Z"
    assert set(alerts.RISK_LIST_COLUMNS) <= set(row)
    # provenance: risk-list row → assessment → solution → submissions
    prov = alerts.provenance(catalog_engine, DESIGNATION)
    assert prov["assessment"]["id"] == row["assessment_id"]
    assert prov["solution"]["id"] == sol == row["solution_id"]
    assert [s["submitter"] for s in prov["submissions"]] == ["K88"]
    assert prov["submissions"][0]["n_observations"] == prov["solution"]["n_used"]

    # every VI excluded by new observations: removal with the last values
    _store(catalog_engine, sol, _assessment([]), 4)
    assert alerts.risk_list(catalog_engine) == []
    (removal,) = alerts.removals(catalog_engine)
    assert removal["reason"] == "no_vi" and removal["designation"] == DESIGNATION
    assert removal["removed_utc"] == "2026-12-01T12:04:00Z"
    assert removal["last_values"]["cumulative_ip"] == pytest.approx(2.1e-2)
    assert removal["last_assessment_id"] == row["assessment_id"]

    chain = alerts.alerts(catalog_engine)
    assert [a["alert_id"] for a in chain] == [f"NDA-{object_id}-{k}" for k in (1, 2, 3)]
    assert chain[0]["kinds"][0] == "new_object"  # with the thresholds it passed (ip_up)
    assert {"torino_change", "ip_up"} <= set(chain[1]["kinds"])
    assert chain[2]["kinds"] == ["removed"] and removal["alert_id"] == chain[2]["alert_id"]
    assert [a["payload"]["supersedes"] for a in chain] == [None, chain[0]["alert_id"],
                                                           chain[1]["alert_id"]]
    assert chain[2]["payload"]["removal"]["reason"] == "no_vi"
    assert [a["issued_utc"] for a in chain] == ["2026-12-01T12:00:00Z", "2026-12-01T12:03:00Z",
                                                "2026-12-01T12:04:00Z"]
    since = alerts.alerts(catalog_engine, since=T0 + dt.timedelta(minutes=2))
    assert [a["alert_id"] for a in since] == [chain[1]["alert_id"], chain[2]["alert_id"]]
    # each alert's VOEvent cites the one before: supersedes, and a retraction for the removal
    docs = [parse_voevent(alerts.alert(catalog_engine, a["alert_id"])["voevent"]) for a in chain]
    assert docs[0]["citations"] == []
    assert docs[1]["citations"] == [(chain[0]["payload"]["ivorn"], "supersedes")]
    assert docs[2]["citations"] == [(chain[1]["payload"]["ivorn"], "retraction")]
    assert all(d["role"] == "prediction" for d in docs)

    # back on the list later: a new object again, the chain goes on
    _store(catalog_engine, sol, _assessment([_vi(5e-4)]), 5)
    last = alerts.alerts(catalog_engine)[-1]
    assert last["kinds"][0] == "new_object" and last["payload"]["supersedes"] == chain[2]["alert_id"]
    assert len(alerts.risk_list(catalog_engine)) == 1


def test_alert_is_written_with_the_assessment_or_not_at_all(catalog_engine, bx1, monkeypatch):
    _, sol = bx1
    import neodefense.alerts.voevent as voevent

    def broken(payload, **kw):  # noqa: ANN001, ANN003, ANN202
        raise RuntimeError("VOEvent writer down")

    monkeypatch.setattr(voevent, "to_voevent", broken)
    with pytest.raises(RuntimeError, match="VOEvent writer down"):
        _store(catalog_engine, sol, _assessment([_vi(1e-3)]))
    for table in ("impact_assessments", "virtual_impactors", "alerts", "risk_list",
                  "alert_states"):
        assert _count(catalog_engine, table) == 0, table
    monkeypatch.undo()
    _store(catalog_engine, sol, _assessment([_vi(1e-3)]))
    assert _count(catalog_engine, "alerts") == 1 and _count(catalog_engine, "risk_list") == 1


def test_manual_removal_artificial_keeps_it_off(catalog_engine, bx1):
    object_id, sol = bx1
    _store(catalog_engine, sol, _assessment([_vi(1e-3)]))
    with pytest.raises(ValueError, match="unknown removal reason"):
        alerts.remove_object(catalog_engine, DESIGNATION, "bored")
    alert_id = alerts.remove_object(catalog_engine, DESIGNATION, "artificial",
                                    note="Tesla roadster upper stage", as_of=T0)
    assert alert_id == f"NDA-{object_id}-2"
    (removal,) = alerts.removals(catalog_engine)
    assert removal["reason"] == "artificial" and "artificial" in removal["reason_text"]
    assert removal["note"] == "Tesla roadster upper stage" and removal["alert_id"] == alert_id
    assert alerts.risk_list(catalog_engine) == []
    _store(catalog_engine, sol, _assessment([_vi(5e-2)]), 10)  # no return, no alert
    assert alerts.risk_list(catalog_engine) == [] and _count(catalog_engine, "alerts") == 2
    # removing an object not on the list raises no alert
    assert alerts.remove_object(catalog_engine, DESIGNATION, "manual") is None


# -- subscribers and delivery ----------------------------------------------------------------------

def test_webhook_and_email_delivery_signed_once(catalog_engine, bx1):
    _, sol = bx1
    with WebhookReceiver() as hook, MailSink() as mail:
        sub = alerts.add_subscriber(catalog_engine, "agency", {}, [
            {"kind": "webhook", "target": hook.url},
            {"kind": "email", "target": "duty@agency.example", "format": "voevent"}])
        secret = sub["channels"][0]["secret"]
        assert len(secret) == 64
        other = alerts.add_subscriber(catalog_engine, "big-ones", {"ip_min": 0.01},
                                      [{"kind": "webhook", "target": hook.url,
                                        "format": "voevent"}])
        _store(catalog_engine, sol, _assessment([_vi(1e-3)]))
        assert _count(catalog_engine, "deliveries", "WHERE status = 'pending'") == 2
        options = _options(smtp=channels.SmtpSettings(host="127.0.0.1", port=mail.port))
        totals = deliver_due(catalog_engine, options)
        assert totals["delivered"] == 2 and totals["failed"] == 0
        (request,) = hook.wait_for(1)
        body = request.body
        payload = json.loads(body)
        assert payload["kinds"][0] == "new_object" and payload["designation"] == DESIGNATION
        assert verify(secret, request.headers[SIGNATURE_HEADER], body)
        assert not verify(secret, request.headers[SIGNATURE_HEADER], body.replace(b"1", b"2"))
        assert request.headers[IDEMPOTENCY_HEADER] == f"{payload['alert_id']}:" \
            f"{sub['channels'][0]['id']}"
        (message,) = mail.wait_for(1)
        assert DESIGNATION in message["Subject"]
        assert message["X-Neodefense-Alert-Id"] == payload["alert_id"]
        # nothing due any more: a second run sends nothing
        assert deliver_due(catalog_engine, options)["sent"] == 0
        # the 1 % subscriber hears the rise past 1 %, as a VOEvent
        _store(catalog_engine, sol, _assessment([_vi(2e-2)]), 1)
        deliver_due(catalog_engine, options)
        requests = hook.wait_for(3)
        (xml,) = [r for r in requests if r.headers["Content-Type"].startswith("application/xml")]
        doc = parse_voevent(xml.body)
        assert doc["ivorn"].endswith(f"NDA-{bx1[0]}-2")
        assert verify(other["channels"][0]["secret"], xml.headers[SIGNATURE_HEADER], xml.body)
        assert len(mail.wait_for(2)) == 2
    listed = {s["name"]: s for s in alerts.subscribers(catalog_engine)}
    assert listed["agency"]["channels"][0]["delivered"] == 2
    assert listed["big-ones"]["channels"][0]["delivered"] == 1
    assert "secret" not in listed["agency"]["channels"][0]
    assert _count(catalog_engine, "delivery_attempts") == 5


def test_receiver_down_gets_every_alert_once_when_back(catalog_engine, bx1):
    _, sol = bx1
    with WebhookReceiver() as hook:
        alerts.add_subscriber(catalog_engine, "flaky", {}, [{"kind": "webhook",
                                                              "target": hook.url}])
        hook.fail_first(2)  # 503 twice, then fine
        _store(catalog_engine, sol, _assessment([_vi(1e-3)]), 0)
        _store(catalog_engine, sol, _assessment([_vi(2e-2)]), 1)
        totals = deliver_due(catalog_engine, _options(), wait_s=10.0)
        assert totals["delivered"] == 2 and totals["failed"] == 2 and totals["paused"] == 0
        keys = [r.headers[IDEMPOTENCY_HEADER] for r in hook.requests]
        assert len(keys) == 4 and len(set(keys)) == 2  # the two 503s were retried
        # the receiver is down altogether (connection refused), then back
        hook.down()
        _store(catalog_engine, sol, _assessment([]), 2)  # removal
        first = deliver_due(catalog_engine, _options(), max_rounds=1)
        assert first["failed"] == 1 and first["delivered"] == 0
        hook.up()
        second = deliver_due(catalog_engine, _options(), wait_s=10.0)
        assert second["delivered"] == 1
    delivered = [r.headers[IDEMPOTENCY_HEADER] for r in hook.requests]
    ok = {k for k in delivered}
    assert len(ok) == 3
    assert _count(catalog_engine, "deliveries", "WHERE status = 'delivered'") == 3
    with catalog_engine.connect() as conn:
        failed = conn.execute(sa.text("SELECT error FROM delivery_attempts WHERE NOT ok")).scalars()
        errors = list(failed)
    assert any("503" in e for e in errors) and any("onnect" in e for e in errors)


def test_crash_between_send_and_record_redelivers_with_same_key(catalog_engine, bx1):
    """A deliverer that dies after sending but before recording: its claim runs out, the delivery
    is sent again with the same idempotency key, and is recorded as delivered exactly once."""
    _, sol = bx1
    with WebhookReceiver() as hook:
        alerts.add_subscriber(catalog_engine, "s", {}, [{"kind": "webhook", "target": hook.url}])
        _store(catalog_engine, sol, _assessment([_vi(1e-3)]))
        claimed = alerts.claim_deliveries(catalog_engine, lease_s=0.3)
        assert len(claimed) == 1
        # while the claim lives, nobody else takes it
        assert alerts.claim_deliveries(catalog_engine) == []
        channels.send(claimed)  # sent ... and the process dies before recording
        hook.wait_for(1)
        import time

        time.sleep(0.35)
        totals = deliver_due(catalog_engine, _options())
        assert totals["delivered"] == 1
        keys = [r.headers[IDEMPOTENCY_HEADER] for r in hook.wait_for(2)]
        assert len(keys) == 2 and len(set(keys)) == 1
        # a late record of the first send counts as a repeat, not a second delivery
        late = channels.Outcome(claimed[0].delivery_id, claimed[0].channel_id, True, 200, "",
                                0.01, dt.datetime.now(dt.UTC))
        assert alerts.record_outcomes(catalog_engine, [late])["already"] == 1
    assert _count(catalog_engine, "deliveries", "WHERE status = 'delivered'") == 1
    assert _count(catalog_engine, "delivery_attempts", "WHERE ok") == 2


def test_endpoint_that_keeps_failing_is_paused_then_resumed(catalog_engine, bx1):
    _, sol = bx1
    with WebhookReceiver(status=500) as hook:
        sub = alerts.add_subscriber(catalog_engine, "broken", {},
                                    [{"kind": "webhook", "target": hook.url}])
        channel_id = sub["channels"][0]["id"]
        _store(catalog_engine, sol, _assessment([_vi(1e-3)]))
        totals = deliver_due(catalog_engine, _options(), wait_s=10.0)
        assert totals["failed"] == FAST.max_attempts and totals["paused"] == 1
        assert len(hook.requests) == FAST.max_attempts  # not retried forever
        (listed,) = alerts.subscribers(catalog_engine)
        channel = listed["channels"][0]
        assert channel["status"] == "paused" and channel["held"] == 1
        assert f"{FAST.max_attempts} failed attempts in a row" in channel["paused_reason"]
        assert "500" in channel["paused_reason"]
        # alerts raised while paused are held, not lost
        _store(catalog_engine, sol, _assessment([_vi(2e-2)]), 1)
        assert deliver_due(catalog_engine, _options())["sent"] == 0
        hook.status = 200
        assert alerts.resume_channel(catalog_engine, channel_id) == 2
        totals = deliver_due(catalog_engine, _options(), wait_s=5.0)
        assert totals["delivered"] == 2
    assert alerts.subscribers(catalog_engine)[0]["channels"][0]["status"] == "active"


def test_gone_pauses_at_once_and_removed_subscriber_gets_nothing(catalog_engine, bx1):
    _, sol = bx1
    with WebhookReceiver(status=410) as gone, WebhookReceiver() as fine:
        alerts.add_subscriber(catalog_engine, "gone", {}, [{"kind": "webhook",
                                                             "target": gone.url}])
        alerts.add_subscriber(catalog_engine, "leaver", {}, [{"kind": "webhook",
                                                               "target": fine.url}])
        _store(catalog_engine, sol, _assessment([_vi(1e-3)]))
        assert alerts.remove_subscriber(catalog_engine, "leaver") == 1
        totals = deliver_due(catalog_engine, _options(), wait_s=2.0)
        assert totals["sent"] == 1 and totals["paused"] == 1
        assert fine.requests == []
    subs = alerts.subscribers(catalog_engine, include_removed=True)
    assert "410" in subs[0]["channels"][0]["paused_reason"]
    assert subs[1]["active"] is False and subs[1]["channels"][0]["cancelled"] == 1
    with pytest.raises(LookupError):
        alerts.remove_subscriber(catalog_engine, "nobody")
    with pytest.raises(ValueError, match="webhook URL"):
        alerts.add_subscriber(catalog_engine, "bad", {}, [{"kind": "webhook", "target": "ftp://x"}])
    with pytest.raises(ValueError, match="exists"):
        alerts.add_subscriber(catalog_engine, "gone", {}, [{"kind": "email", "target": "a@b.c"}])


def test_criteria_choose_the_deliveries(catalog_engine, bx1):
    _, sol = bx1
    with WebhookReceiver() as hook:
        for name, crit in [("all", {}), ("torino", {"torino_min": 1}),
                           ("named", {"objects": ["2024bx1"]}), ("other", {"objects": ["Apophis"]}),
                           ("imminent", {"imminent_only": True})]:
            alerts.add_subscriber(catalog_engine, name, crit, [{"kind": "webhook",
                                                                 "target": hook.url}])
        _store(catalog_engine, sol, _assessment([_vi(1e-3)]), 0)  # new object
        _store(catalog_engine, sol, _assessment([_vi(2e-2, torino=1)]), 1)  # Torino 1
        _store(catalog_engine, sol, _assessment([_vi(0.9, imminent=True)]), 2)  # imminent
        deliver_due(catalog_engine, _options())
    got = {s["name"]: s["channels"][0]["delivered"] for s in alerts.subscribers(catalog_engine)}
    assert got == {"all": 3, "torino": 2, "named": 3, "other": 0, "imminent": 1}


def test_merge_takes_the_merged_object_off_with_reason_reassigned(catalog_engine):
    """2004 MN4 on the risk list under its provisional designation; a record linking it to 99942
    merges it into the numbered object: the removal says 'reassigned' and names the survivor."""
    lines = (OBSERVATIONS / "99942_Apophis.obs80").read_text().splitlines()
    linked = [line for line in lines if line.startswith("99942K04M04N")]
    numbered = [line for line in lines if line.startswith("99942       ") and line[14] == "C"]

    def submit(rows: list[str], name: str) -> None:
        ingest.ingest(catalog_engine, ("\n".join(rows) + "\n").encode(), name)

    submit(["     " + line[5:] for line in linked[:20]], "prov.obs80")
    submit(numbered[:20], "num.obs80")
    prov = queries.resolve(catalog_engine, "2004 MN4")
    _, ids = solutions.observations_with_ids(catalog_engine, prov)
    sol = solutions.store_solution(
        catalog_engine, prov,
        OrbitSolution(designation="2004 MN4", status=CONVERGED, epoch_tdb_jd=2453400.5,
                      state_icrf_au=np.array([-0.8, 0.5, 0.2, -0.01, -0.012, -0.005]),
                      n_obs=len(ids), n_used=len(ids)), ids)
    assessments.store_assessment(catalog_engine, sol, _assessment([_vi(2.7e-2, 2029, torino=4)]))
    assert [r["designation"] for r in alerts.risk_list(catalog_engine)] == ["2004 MN4"]
    submit(linked[19:21], "link.obs80")
    assert alerts.risk_list(catalog_engine) == []
    (removal,) = alerts.removals(catalog_engine)
    assert removal["reason"] == "reassigned" and removal["designation"] == "2004 MN4"
    assert "99942" in removal["note"] and removal["object_id"] is None  # merged away
    assert removal["last_values"]["torino_max"] == 4
    chain = alerts.alerts(catalog_engine)
    assert len(chain) == 2 and chain[-1]["kinds"] == ["removed"]
    assert chain[-1]["payload"]["removal"]["reason"] == "reassigned"
    assert chain[-1]["alert_id"] == removal["alert_id"]
