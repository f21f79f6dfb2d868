"""The open read API and self-service subscriptions, through httpx against the application on
SQLite and PostgreSQL: the risk list as JSON, CSV and VOTable, an object's document, the alerts
(JSON and VOEvent), the removals; subscriptions with a management token and a webhook that must
answer its verification challenge (a real HTTP receiver on loopback).

The catalog holds the real 2024 BX1 observations with hand-made solution and assessments (the
values the monitor produces, as in test_alert_outbox): the API is under test, not the monitor.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alert_receivers import WebhookReceiver
from fastapi.testclient import TestClient

from neodefense import config
from neodefense.alerts.voevent import parse_voevent
from neodefense.api import create_app
from neodefense.catalog import alerts, assessments, ingest, queries, solutions
from neodefense.impacts.assessment import OK, ImpactAssessment, VirtualImpactor
from neodefense.orbits.solution import CONVERGED, OrbitSolution

DEMO = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
DESIGNATION = "2024 BX1"
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _no_nan(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _assessment(ip: float, imminent: bool = False) -> ImpactAssessment:
    entry = corridor = None
    if imminent:
        entry = {"time_utc": "2024-01-21T00:32:38.1", "lat_deg": 52.6, "lon_deg": 12.77,
                 "alt_km": 100.0}
        corridor = {"1sigma": [[52.1, 12.0], [53.0, 13.5]]}
    vi = VirtualImpactor(body="earth", time_tdb_jd=2460330.52, date_utc="2024-01-21.02", ip=ip,
                         palermo=float("nan"), torino=0, v_inf_km_s=11.2, energy_mt=0.0001,
                         diameter_m=1.0, method="mc", entry=entry, corridor=corridor)
    return ImpactAssessment(
        designation=DESIGNATION, status=OK, method="mc", n_samples=1000, seed=0, years=1.0,
        cumulative_ip=ip, palermo_cum=float(np.log10(ip) - 6.0), palermo_max=None,
        torino_max=0, H=32.8, diameter_m=1.0, virtual_impactors=[vi],
        solution_epoch_tdb_jd=2460330.5, solution_code_version="test")


@pytest.fixture()
def client(catalog_engine, tmp_path) -> TestClient:
    """The app over a catalog where 2024 BX1 (real observations) is on the risk list."""
    ingest.ingest(catalog_engine, DEMO / "2024_BX1.obs80", "bx1.obs80", submitter="K88")
    _, ids = solutions.observations_with_ids(catalog_engine, DESIGNATION)
    object_id = queries.resolve(catalog_engine, DESIGNATION)
    sol = OrbitSolution(designation=DESIGNATION, status=CONVERGED, epoch_tdb_jd=2460330.5,
                        state_icrf_au=np.array([-0.46, 0.87, 0.38, -0.017, -0.007, -0.004]),
                        rms_arcsec=0.41, n_obs=len(ids), n_used=len(ids))
    sid = solutions.store_solution(catalog_engine, object_id, sol, ids)
    assessments.store_assessment(catalog_engine, sid, _assessment(0.02), as_of=T0)
    assessments.store_assessment(catalog_engine, sid, _assessment(1.0, imminent=True),
                                 as_of=T0 + dt.timedelta(minutes=5))
    settings = config.load().with_overrides(paths={"data_dir": str(tmp_path)})
    with TestClient(create_app(settings, engine=catalog_engine)) as c:
        yield c


def test_risk_list_json_csv_votable(client) -> None:
    answer = client.get("/v1/risk-list")
    assert answer.status_code == 200
    doc = _no_nan(answer.text)
    assert doc["count"] == 1 and doc["columns"] == list(alerts.RISK_LIST_COLUMNS)
    row = doc["data"][0]
    assert row["designation"] == DESIGNATION and row["rank"] == 1
    assert row["cumulative_ip"] == 1.0 and row["n_vi"] == 1

    for csv_answer in (client.get("/v1/risk-list?format=csv"),
                       client.get("/v1/risk-list", headers={"Accept": "text/csv"})):
        assert csv_answer.status_code == 200
        assert csv_answer.headers["content-type"].startswith("text/csv")
        lines = csv_answer.text.splitlines()
        assert lines[0].split(",") == list(alerts.RISK_LIST_COLUMNS)
        assert len(lines) == 2 and DESIGNATION in lines[1]

    from astropy.io.votable import parse

    vot = client.get("/v1/risk-list?format=votable")
    assert vot.status_code == 200 and "votable" in vot.headers["content-type"]
    table = parse(io.BytesIO(vot.content)).get_first_table().to_table()
    assert list(table["designation"]) == [DESIGNATION]
    assert float(table["cumulative_ip"][0]) == 1.0
    assert str(table["diameter_m"].unit) == "m"
    assert client.get("/v1/risk-list?format=pdf").status_code == 400


def test_object_document(client) -> None:
    answer = client.get("/v1/objects/" + urllib.parse.quote(DESIGNATION))
    assert answer.status_code == 200
    doc = _no_nan(answer.text)
    assert doc["designation"] == DESIGNATION
    assert doc["solution"]["status"] == CONVERGED and doc["solution"]["rms_arcsec"] == 0.41
    assert [s["version"] for s in doc["solutions"]] == [1]
    assert doc["assessment"]["cumulative_ip"] == 1.0
    assert doc["assessment"]["virtual_impactors"][0]["entry"]["lat_deg"] == 52.6
    assert [h["cumulative_ip"] for h in doc["ip_history"]] == [0.02, 1.0]
    assert doc["risk"]["rank"] == 1 and doc["removed"] is None
    assert doc["alerts"] and doc["alerts"][0]["alert_id"].startswith("NDA-")
    assert "added to the risk list" in doc["alerts"][0]["summary"]
    assert doc["observations"]["optical"] > 300
    # any alias of the object, e.g. its packed provisional designation
    assert client.get("/v1/objects/K24B01X").json()["designation"] == DESIGNATION


@pytest.mark.parametrize("designation", [
    "1999 XX", "'; DROP TABLE observations; --", "x' OR '1'='1", "Robert'); DROP TABLE objects;",
    "%00", "A" * 500])
def test_object_unknown_or_hostile(client, catalog_engine, designation: str) -> None:
    answer = client.get("/v1/objects/" + urllib.parse.quote(designation, safe=""))
    assert answer.status_code == 404
    with catalog_engine.connect() as conn:  # nothing happened to the tables
        assert conn.execute(sa.text("SELECT count(*) FROM observations")).scalar_one() > 300
        assert conn.execute(sa.text("SELECT count(*) FROM objects")).scalar_one() == 1


def test_alerts_json_and_voevent(client) -> None:
    listing = client.get("/v1/alerts")
    assert listing.status_code == 200
    rows = _no_nan(listing.text)["data"]
    assert [r["sequence"] for r in rows] == [1, 2]
    assert "imminent" in rows[1]["kinds"]
    alert_id = rows[1]["alert_id"]
    one = client.get(f"/v1/alerts/{alert_id}").json()
    assert one["alert_id"] == alert_id and "deliveries" not in one
    for answer in (client.get(f"/v1/alerts/{alert_id}.xml"),
                   client.get(f"/v1/alerts/{alert_id}?format=voevent"),
                   client.get(f"/v1/alerts/{alert_id}", headers={"Accept": "application/xml"})):
        assert answer.status_code == 200 and "xml" in answer.headers["content-type"]
        event = parse_voevent(answer.content)
        assert event["ivorn"].endswith(alert_id)
    assert client.get("/v1/alerts?designation=K24B01X").json()["count"] == 2
    assert client.get("/v1/alerts?since=2099-01-01").json()["count"] == 0
    assert client.get("/v1/alerts?since=yesterday").status_code == 400
    assert client.get("/v1/alerts/NDA-999-1").status_code == 404
    assert client.get("/v1/alerts/NDA-999-1.xml").status_code == 404


def test_removed(client, catalog_engine) -> None:
    assert client.get("/v1/removed").json()["count"] == 0
    alerts.remove_object(catalog_engine, DESIGNATION, "manual", note="test removal")
    removed = client.get("/v1/removed").json()
    assert removed["count"] == 1
    assert removed["data"][0]["reason"] == "manual" and removed["data"][0]["note"] == "test removal"
    assert client.get("/v1/risk-list").json()["count"] == 0
    assert client.get(f"/v1/objects/{DESIGNATION}").json()["removed"]["reason"] == "manual"


def test_subscription_with_email(client, catalog_engine) -> None:
    made = client.post("/v1/subscriptions", json={
        "name": "Planetary Defense Office", "email": "pdo@example.org",
        "criteria": {"torino_min": 1}})
    assert made.status_code == 201, made.text
    body = made.json()
    token, sid = body["token"], body["id"]
    assert body["channels"][0]["status"] == "active"
    with catalog_engine.connect() as conn:  # only the hash is kept
        stored = conn.execute(sa.text("SELECT token_hash FROM subscribers WHERE id = :i"),
                              {"i": sid}).scalar_one()
    assert stored and token not in stored
    header = {"X-Subscription-Token": token}
    assert client.get(f"/v1/subscriptions/{sid}", headers=header).json()["criteria"][
        "torino_min"] == 1
    assert client.get(f"/v1/subscriptions/{sid}").status_code == 404
    assert client.get(f"/v1/subscriptions/{sid}",
                      headers={"X-Subscription-Token": token + "x"}).status_code == 404
    changed = client.patch(f"/v1/subscriptions/{sid}", headers=header,
                           json={"criteria": {"ip_min": 1e-3, "imminent_only": True}})
    assert changed.status_code == 200 and changed.json()["criteria"]["imminent_only"] is True
    assert client.patch(f"/v1/subscriptions/{sid}", headers=header,
                        json={"criteria": {"colour": "red"}}).status_code == 422
    assert client.delete(f"/v1/subscriptions/{sid}", headers=header).json()["removed"] is True
    assert client.get(f"/v1/subscriptions/{sid}", headers=header).status_code == 404
    assert client.post("/v1/subscriptions", json={"criteria": {}}).status_code == 422
    assert client.post("/v1/subscriptions", json={"email": "not an address"}).status_code == 422


def test_webhook_verification_challenge(client, catalog_engine) -> None:
    with WebhookReceiver() as good, WebhookReceiver() as silent:
        silent.answer_challenges = False
        made = client.post("/v1/subscriptions", json={"webhook": {"url": good.url}}).json()
        assert made["verification"] == [{"channel_id": made["channels"][0]["id"],
                                         "verified": True, "detail": "verified"}]
        assert made["channels"][0]["status"] == "active" and made["channels"][0]["secret"]
        assert made["channels"][0]["verified_utc"]
        sent = json.loads(good.requests[0].body)
        assert sent["type"] == "neodefense.verification"
        from neodefense.alerts.signing import SIGNATURE_HEADER, verify

        assert verify(made["channels"][0]["secret"],
                      good.requests[0].headers[SIGNATURE_HEADER], good.requests[0].body)

        other = client.post("/v1/subscriptions", json={"webhook": {"url": silent.url}}).json()
        assert other["channels"][0]["status"] == "unverified"
        assert other["channels"][0]["verified_utc"] is None
        assert other["verification"][0]["verified"] is False
        # an alert raised now reaches the verified channel only
        alerts.remove_object(catalog_engine, DESIGNATION, "manual")
        with catalog_engine.connect() as conn:
            queued = conn.execute(sa.text("SELECT channel_id FROM deliveries")).scalars().all()
        assert queued == [made["channels"][0]["id"]]
        silent.answer_challenges = True
        again = client.post(f"/v1/subscriptions/{other['id']}/verify",
                            headers={"X-Subscription-Token": other["token"]}).json()
        assert again["verification"][0]["verified"] is True
        assert again["subscription"]["channels"][0]["status"] == "active"
    assert client.post("/v1/subscriptions",
                       json={"webhook": {"url": "ftp://example.org/x"}}).status_code == 422


def test_private_webhooks_refused_when_configured(catalog_engine, tmp_path) -> None:
    settings = config.load().with_overrides(paths={"data_dir": str(tmp_path)},
                                            api={"webhook_allow_private": False})
    with TestClient(create_app(settings, engine=catalog_engine)) as c:
        for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x",
                    "http://localhost/x"):
            answer = c.post("/v1/subscriptions", json={"webhook": {"url": url}})
            assert answer.status_code == 422, url
        with catalog_engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM subscribers")).scalar_one() == 0


def test_openapi_and_docs_are_local(client) -> None:
    spec = client.get("/openapi.json").json()
    for route in ("/v1/risk-list", "/v1/objects/{designation}", "/v1/alerts",
                  "/v1/alerts/{alert_id}", "/v1/removed", "/v1/subscriptions"):
        assert route in spec["paths"], route
    page = client.get("/docs")
    assert page.status_code == 200
    import re

    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/static/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_refusals_are_audited(client, catalog_engine) -> None:
    with catalog_engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM api_audit")).scalar_one()
    assert client.get("/v1/risk-list").status_code == 200  # reads are not logged
    assert client.get("/v1/objects/nothing-like-this").status_code == 404
    assert client.post("/v1/subscriptions", json={"criteria": {}}).status_code == 422
    with catalog_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT path, status_code FROM api_audit ORDER BY id")).all()
    assert [tuple(r) for r in rows[before:]] == [("/v1/objects/nothing-like-this", 404),
                                                 ("/v1/subscriptions", 422)]
