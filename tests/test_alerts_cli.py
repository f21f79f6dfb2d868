"""The issue-5 commands (risk-list, history, subscribers, alerts, remove) on a real SQLite catalog.

The catalog holds the real 2008 TC3 observations and a hand-made orbit solution (every observation
used); the impact assessments are synthetic (one distant Earth virtual impactor) so only the
command line and the catalog's alert machinery are exercised: storing them raises the alerts.
The replay itself is not run here (tests/test_alert_replay.py runs it); only its argument parsing.
"""

from __future__ import annotations

import csv
import datetime as dt
import http.server
import io
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from neodefense.catalog import alerts as catalog_alerts
from neodefense.catalog import assessments, db, ingest, queries, solutions
from neodefense.cli import build_parser, main, since_utc
from neodefense.impacts.assessment import OK, ImpactAssessment, VirtualImpactor
from neodefense.orbits.solution import CONVERGED, OrbitSolution, Residuals

DESIGNATION = "2008 TC3"
NOVEMBER = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DECEMBER = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def _assessment(ip: float, torino: int) -> ImpactAssessment:
    """One distant Earth virtual impactor of probability ``ip``."""
    vi = VirtualImpactor(body="earth", time_tdb_jd=2476000.5, date_utc="2066-10-07.12", ip=ip,
                         palermo=-2.5 if torino else -4.1, torino=torino, v_inf_km_s=12.35,
                         v_imp_km_s=16.8, energy_mt=0.9, diameter_m=4.1, method="lov")
    return ImpactAssessment(designation=DESIGNATION, status=OK, method="lov", n_samples=1001,
                            seed=0, years=100.0, bodies=("earth",), cumulative_ip=ip,
                            palermo_cum=-2.5 if torino else -4.1,
                            palermo_max=-2.5 if torino else -4.1, torino_max=torino,
                            H=30.9, diameter_m=4.1, virtual_impactors=[vi])


class Catalog:
    """A catalog with 2008 TC3's observations and one orbit solution (every observation used)."""

    def __init__(self, path: Path, shared_data: Path | None = None) -> None:
        """Build it in the SQLite file ``path`` (``shared_data`` given), or open a copy."""
        self.url = f"sqlite:///{path}"
        self.engine = db.connect(self.url)
        if shared_data is not None:
            ingest.ingest(self.engine, shared_data / "observations" / "2008_TC3.obs80",
                          "tc3.obs80")
        batch, ids = solutions.observations_with_ids(self.engine, DESIGNATION)
        self.object_id = queries.resolve(self.engine, DESIGNATION)
        self.n_obs = n = len(ids)
        self.t_first, self.t_last = (float(batch.columns["obsTime_mjd"].min()),
                                     float(batch.columns["obsTime_mjd"].max()))
        if shared_data is None:
            self.solution_id = solutions.latest_solution(self.engine, DESIGNATION)["id"]
            return
        residuals = Residuals(
            line=np.asarray(ids), obs_time_mjd_utc=batch.columns["obsTime_mjd"],
            stn=batch.columns["stn"], ra_arcsec=np.zeros(n), dec_arcsec=np.zeros(n),
            sigma_ra_arcsec=np.ones(n), sigma_dec_arcsec=np.ones(n), chi2=np.zeros(n),
            rejected=np.zeros(n, dtype=bool), used=np.ones(n, dtype=bool))
        solution = OrbitSolution(
            designation=DESIGNATION, status=CONVERGED, epoch_tdb_jd=2454746.5,
            state_icrf_au=np.array([0.79, 0.57, 0.25, -0.012, 0.013, 0.005]), rms_arcsec=0.5,
            n_obs=n, n_used=n, residuals=residuals)
        self.solution_id = solutions.store_solution(self.engine, self.object_id, solution, ids)

    def assess(self, ip: float, torino: int, as_of: dt.datetime) -> int:
        return assessments.store_assessment(self.engine, self.solution_id,
                                            _assessment(ip, torino), as_of=as_of)

    def both(self) -> None:
        """The November assessment (new object), then December's (IP up, Torino 1)."""
        self.assess(2.5e-4, 0, NOVEMBER)
        self.assess(2.0e-2, 1, DECEMBER)

    def alert_id(self, sequence: int) -> str:
        return f"NDA-{self.object_id}-{sequence}"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The catalog file built once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "catalog.sqlite"
    Catalog(path, shared_data).engine.dispose()
    return path


@pytest.fixture()
def cat(tmp_path: Path, template: Path) -> Iterator[Catalog]:
    path = tmp_path / "catalog.sqlite"
    shutil.copyfile(template, path)
    catalog = Catalog(path)
    yield catalog
    catalog.engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> str:
    assert main(list(argv)) == status
    return capsys.readouterr().out


def _fails(capsys: pytest.CaptureFixture[str], status: int, *argv: str) -> str:
    """Run a command that must fail with ``status``; its standard error."""
    assert main(list(argv)) == status
    captured = capsys.readouterr()
    assert captured.err.strip()
    return captured.err


# -- risk list -------------------------------------------------------------------------------------

def test_risk_list_text_json_csv(capsys, cat):
    assert "risk list is empty" in _run(capsys, "risk-list", "--catalog", cat.url)
    assert json.loads(_run(capsys, "risk-list", "--catalog", cat.url, "--json")) == []
    empty_csv = _run(capsys, "risk-list", "--catalog", cat.url, "--csv")
    assert empty_csv.splitlines() == [",".join(catalog_alerts.RISK_LIST_COLUMNS)]

    cat.both()
    text = _run(capsys, "risk-list", "--catalog", cat.url)
    header = text.splitlines()[1]
    for column in ("rank", "designation", "years", "VIs", "cum IP", "PS cum", "PS max", "TS", "H",
                   "D (m)", "v∞", "last obs", "used", "arc (d)", "updated"):
        assert column in header
    row = text.splitlines()[2]
    assert row.split()[:5] == ["1", "2008", "TC3", "2066", "1"]
    assert "2.00e-02" in row and "-2.50" in row and "12.35" in row and str(cat.n_obs) in row
    assert "2008-10-07" in row  # last observation: the night before the impact
    assert "2026-12-01 12:00" in row  # updated: the December assessment's time

    rows = json.loads(_run(capsys, "risk-list", "--catalog", cat.url, "--json"))
    assert len(rows) == 1
    entry = rows[0]
    assert set(entry) == {*catalog_alerts.RISK_LIST_COLUMNS, "object_id"}
    assert (entry["designation"], entry["rank"], entry["n_vi"], entry["torino_max"]) == (
        DESIGNATION, 1, 1, 1)
    assert entry["cumulative_ip"] == pytest.approx(2.0e-2)
    assert entry["year_range"] == "2066" and entry["n_obs_used"] == cat.n_obs
    assert entry["arc_days"] == pytest.approx(cat.t_last - cat.t_first)
    assert entry["updated_utc"] == "2026-12-01T12:00:00Z"
    assert entry["added_utc"] == "2026-11-01T00:00:00Z"

    table = list(csv.DictReader(io.StringIO(_run(capsys, "risk-list", "--catalog", cat.url,
                                                 "--csv"))))
    assert len(table) == 1
    assert list(table[0]) == list(catalog_alerts.RISK_LIST_COLUMNS)
    assert table[0]["designation"] == DESIGNATION
    assert float(table[0]["cumulative_ip"]) == pytest.approx(2.0e-2)
    assert table[0]["solution_id"] == str(cat.solution_id)


def test_risk_list_json_and_csv_exclude_each_other(capsys, cat):
    with pytest.raises(SystemExit) as exc:
        main(["risk-list", "--catalog", cat.url, "--json", "--csv"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


# -- removal ---------------------------------------------------------------------------------------

def test_remove_empties_the_risk_list_and_lists_the_removal(capsys, cat):
    cat.both()
    assert "no object has been removed" in _run(capsys, "risk-list", "--removed",
                                                "--catalog", cat.url)
    out = _run(capsys, "remove", DESIGNATION, "--reason", "manual", "--note", "test removal",
               "--catalog", cat.url)
    assert cat.alert_id(3) in out and "removed from the risk list" in out

    assert "risk list is empty" in _run(capsys, "risk-list", "--catalog", cat.url)
    text = _run(capsys, "risk-list", "--removed", "--catalog", cat.url)
    assert DESIGNATION in text and "manual" in text and "test removal" in text
    assert cat.alert_id(3) in text and "2.00e-02" in text
    removed = json.loads(_run(capsys, "risk-list", "--removed", "--json", "--catalog", cat.url))
    assert [(r["designation"], r["reason"], r["note"], r["alert_id"]) for r in removed] == [
        (DESIGNATION, "manual", "test removal", cat.alert_id(3))]
    assert removed[0]["last_values"]["cumulative_ip"] == pytest.approx(2.0e-2)
    table = list(csv.DictReader(io.StringIO(_run(capsys, "risk-list", "--removed", "--csv",
                                                 "--catalog", cat.url))))
    assert [(r["designation"], r["reason"], r["alert_id"]) for r in table] == [
        (DESIGNATION, "manual", cat.alert_id(3))]
    assert float(table[0]["last_cumulative_ip"]) == pytest.approx(2.0e-2)

    # the removal alert is issued now: the only one of the last day
    recent = json.loads(_run(capsys, "alerts", "--since", "24h", "--json", "--catalog", cat.url))
    assert [(a["alert_id"], a["kinds"]) for a in recent] == [(cat.alert_id(3), ["removed"])]
    # not on the list any more: nothing to remove, no alert
    again = json.loads(_run(capsys, "remove", DESIGNATION, "--reason", "manual", "--json",
                            "--catalog", cat.url))
    assert again["alert_id"] is None


def test_remove_errors(capsys, cat):
    assert "2099 ZZ99" in _fails(capsys, 1, "remove", "2099 ZZ99", "--reason", "manual",
                                 "--catalog", cat.url)
    for argv in (["remove", DESIGNATION, "--reason", "bored"], ["remove", DESIGNATION]):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--catalog", cat.url])
        assert exc.value.code == 2
    assert "--reason" in capsys.readouterr().err


# -- history ---------------------------------------------------------------------------------------

def test_history_json_and_text(capsys, cat):
    cat.both()
    catalog_alerts.remove_object(cat.engine, DESIGNATION, "artificial", note="a rocket stage")
    data = json.loads(_run(capsys, "history", "K08T03C", "--json", "--catalog", cat.url))
    assert set(data) == {"designation", "assessments", "alerts", "removals", "provenance"}
    assert data["designation"] == DESIGNATION
    history = data["assessments"]
    assert [a["version"] for a in history] == [1, 2]
    assert [a["created_at"] for a in history] == ["2026-11-01T00:00:00Z", "2026-12-01T12:00:00Z"]
    assert [a["cumulative_ip"] for a in history] == pytest.approx([2.5e-4, 2.0e-2])
    assert [a["torino_max"] for a in history] == [0, 1]
    assert all(a["status"] == "ok" and a["n_vi"] == 1 for a in history)
    assert [a["alert_id"] for a in data["alerts"]] == [cat.alert_id(k) for k in (1, 2, 3)]
    assert data["alerts"][0]["kinds"][0] == "new_object"
    assert data["alerts"][2]["kinds"] == ["removed"]
    assert [(r["reason"], r["note"]) for r in data["removals"]] == [("artificial",
                                                                     "a rocket stage")]
    prov = data["provenance"]
    assert prov["solution"]["id"] == cat.solution_id and prov["assessment"]["version"] == 2
    assert [s["filename"] for s in prov["submissions"]] == ["tc3.obs80"]
    assert prov["submissions"][0]["n_observations"] == cat.n_obs

    text = _run(capsys, "history", DESIGNATION, "--catalog", cat.url)
    assert text.startswith(f"{DESIGNATION}: 2 impact assessments, 3 alerts, 1 removal; "
                           "not on the risk list")
    assert "2.50e-04" in text and "2.00e-02" in text
    for k in (1, 2, 3):
        assert f"{cat.alert_id(k)} {DESIGNATION}" in text  # the summary lines
    assert "artificial: identified as an artificial object — a rocket stage" in text


def test_history_of_an_object_without_assessments_and_unknown(capsys, cat):
    data = json.loads(_run(capsys, "history", DESIGNATION, "--json", "--catalog", cat.url))
    assert data == {"designation": DESIGNATION, "assessments": [], "alerts": [],
                    "removals": [], "provenance": None}
    assert "0 impact assessments" in _run(capsys, "history", DESIGNATION, "--catalog", cat.url)
    err = _fails(capsys, 1, "history", "2099 ZZ99", "--catalog", cat.url)
    assert "2099 ZZ99: no such object" in err


# -- subscribers -----------------------------------------------------------------------------------

def test_subscribers_add_list_remove(capsys, cat):
    assert _run(capsys, "subscribers", "list", "--catalog", cat.url).strip() == "no subscribers"
    text = _run(capsys, "subscribers", "add", "ops desk", "--webhook", "https://example.org/hook",
                "--email", "ops@example.org", "--torino-min", "1", "--ip-min", "1e-3",
                "--object", "2008TC3", "--object", "Apophis", "--iawn-only",
                "--catalog", cat.url)
    added = catalog_alerts.subscribers(cat.engine, with_secrets=True)
    assert len(added) == 1
    secret = added[0]["channels"][0]["secret"]
    assert len(secret) >= 32 and f"signing secret: {secret}" in text  # shown once
    assert "Torino ≥ 1" in text and "IAWN only" in text
    assert added[0]["criteria"] == {"torino_min": 1, "ip_min": 1e-3, "palermo_min": None,
                                    "iawn_only": True, "imminent_only": False,
                                    "objects": ["2008TC3", "Apophis"]}
    assert [(c["kind"], c["target"], c["format"]) for c in added[0]["channels"]] == [
        ("webhook", "https://example.org/hook", "json"), ("email", "ops@example.org", "json")]

    given = json.loads(_run(capsys, "subscribers", "add", "voevents", "--webhook",
                            "http://127.0.0.1:9/x", "--format", "voevent", "--secret",
                            "s3cret-key", "--json", "--catalog", cat.url))
    assert given["channels"][0]["secret"] == "s3cret-key"
    assert given["channels"][0]["format"] == "voevent" and given["criteria"]["objects"] == []

    listed = _run(capsys, "subscribers", "list", "--catalog", cat.url)
    assert "ops desk" in listed and "voevents" in listed
    assert secret not in listed and "s3cret-key" not in listed  # never again
    rows = json.loads(_run(capsys, "subscribers", "list", "--json", "--catalog", cat.url))
    assert [r["name"] for r in rows] == ["ops desk", "voevents"]
    assert all("secret" not in c for r in rows for c in r["channels"])

    out = _run(capsys, "subscribers", "remove", "ops desk", "--catalog", cat.url)
    assert "removed" in out
    _run(capsys, "subscribers", "remove", str(given["id"]), "--catalog", cat.url)  # by id
    assert json.loads(_run(capsys, "subscribers", "list", "--json", "--catalog", cat.url)) == []
    everyone = json.loads(_run(capsys, "subscribers", "list", "--all", "--json",
                               "--catalog", cat.url))
    assert [(r["name"], r["active"]) for r in everyone] == [("ops desk", False),
                                                            ("voevents", False)]
    assert "removed" in _run(capsys, "subscribers", "list", "--all", "--catalog", cat.url)


def test_subscribers_errors(capsys, cat):
    assert "at least one channel" in _fails(capsys, 2, "subscribers", "add", "nobody",
                                            "--catalog", cat.url)
    assert "ip_min" in _fails(capsys, 2, "subscribers", "add", "x", "--email", "a@b.org",
                              "--ip-min", "2", "--catalog", cat.url)
    assert "torino_min" in _fails(capsys, 2, "subscribers", "add", "x", "--email", "a@b.org",
                                  "--torino-min", "11", "--catalog", cat.url)
    assert "webhook" in _fails(capsys, 2, "subscribers", "add", "x", "--webhook", "ftp://h/x",
                               "--catalog", cat.url)
    assert "e-mail" in _fails(capsys, 2, "subscribers", "add", "x", "--email", "not-an-address",
                              "--catalog", cat.url)
    assert "--secret" in _fails(capsys, 2, "subscribers", "add", "x", "--email", "a@b.org",
                                "--secret", "k", "--catalog", cat.url)
    _run(capsys, "subscribers", "add", "x", "--email", "a@b.org", "--catalog", cat.url)
    assert "exists" in _fails(capsys, 2, "subscribers", "add", "x", "--email", "c@d.org",
                              "--catalog", cat.url)
    assert "nobody" in _fails(capsys, 1, "subscribers", "remove", "nobody", "--catalog", cat.url)
    assert "no channel 999" in _fails(capsys, 1, "subscribers", "resume", "999",
                                      "--catalog", cat.url)
    with pytest.raises(SystemExit) as exc:
        main(["subscribers", "--catalog", cat.url])  # an action is required
    assert exc.value.code == 2
    capsys.readouterr()


def test_subscribers_resume_a_paused_channel(capsys, cat):
    sub = catalog_alerts.add_subscriber(cat.engine, "hook", {}, [
        {"kind": "webhook", "target": "http://127.0.0.1:9/gone"}])
    channel = sub["channels"][0]["id"]
    cat.assess(2.5e-4, 0, NOVEMBER)  # one delivery queued
    [message] = catalog_alerts.claim_deliveries(cat.engine)
    from neodefense.alerts.channels import Outcome

    gone = Outcome(delivery_id=message.delivery_id, channel_id=channel, ok=False, status_code=410,
                   error="410 Gone",
                   attempted_at=dt.datetime.now(dt.UTC), duration_s=0.01, gone=True)
    assert catalog_alerts.record_outcomes(cat.engine, [gone])["paused"] == 1
    listed = _run(capsys, "subscribers", "list", "--catalog", cat.url)
    assert "paused" in listed and f"subscribers resume {channel}" in listed
    out = _run(capsys, "subscribers", "resume", str(channel), "--catalog", cat.url)
    assert f"channel {channel} resumed; 1 held delivery released" in out
    assert catalog_alerts.subscribers(cat.engine)[0]["channels"][0]["pending"] == 1


# -- alerts ----------------------------------------------------------------------------------------

def test_alerts_since_filtering_and_json(capsys, cat):
    assert _run(capsys, "alerts", "--catalog", cat.url).strip() == "no alerts"
    cat.both()
    lines = _run(capsys, "alerts", "--catalog", cat.url).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"2026-11-01T00:00:00Z {cat.alert_id(1)} {DESIGNATION} new_object")
    assert lines[1].startswith(f"2026-12-01T12:00:00Z {cat.alert_id(2)} {DESIGNATION}")
    assert "IP=0.02 Torino=1" in lines[1]

    for since, expected in (("2026-12-01", [2]), ("2026-12-01T12:00:00Z", [2]),
                            ("2026-12-01T12:00:01Z", []), ("2026-10-31", [1, 2]),
                            ("2026-12-01T13:00:00+01:00", [2]), ("24h", [])):
        rows = json.loads(_run(capsys, "alerts", "--since", since, "--json", "--catalog",
                               cat.url))
        assert [r["alert_id"] for r in rows] == [cat.alert_id(k) for k in expected], since
    rows = json.loads(_run(capsys, "alerts", "--json", "--catalog", cat.url))
    assert {"alert_id", "issued_utc", "designation", "kinds", "payload"} <= set(rows[0])
    assert rows[1]["kinds"] == ["torino_change", "ip_up"]
    assert rows[1]["payload"]["supersedes"] == cat.alert_id(1)
    assert rows[1]["payload"]["risk"]["cumulative_ip"] == pytest.approx(2.0e-2)
    assert "no alerts since 2026-12-02T00:00:00Z" in _run(capsys, "alerts", "--since",
                                                           "2026-12-02", "--catalog", cat.url)
    by_alias = json.loads(_run(capsys, "alerts", "--designation", "K08T03C", "--json",
                               "--catalog", cat.url))
    assert len(by_alias) == 2
    assert "2099 ZZ99" in _fails(capsys, 1, "alerts", "--designation", "2099 ZZ99",
                                 "--catalog", cat.url)


def test_alerts_show_text_json_voevent(capsys, cat):
    catalog_alerts.add_subscriber(cat.engine, "everything", {}, [
        {"kind": "email", "target": "ops@example.org"}])
    catalog_alerts.add_subscriber(cat.engine, "big ones", {"ip_min": 1e-3}, [
        {"kind": "webhook", "target": "http://127.0.0.1:9/hook"}])
    cat.both()
    record = json.loads(_run(capsys, "alerts", "show", cat.alert_id(2), "--json",
                             "--catalog", cat.url))
    assert record["alert_id"] == cat.alert_id(2) and record["kinds"] == ["torino_change", "ip_up"]
    assert record["payload"]["schema"] == "neodefense.alert/1"
    assert record["deliveries"] == {"pending": 2}  # both subscribers match the rise to 2 %
    first = json.loads(_run(capsys, "alerts", "--catalog", cat.url, "show", cat.alert_id(1),
                            "--json"))
    assert first["deliveries"] == {"pending": 1}  # 2.5e-4 < ip_min of "big ones"

    xml = _run(capsys, "alerts", "show", cat.alert_id(2), "--voevent", "--catalog", cat.url)
    assert xml == record["voevent"] + ("" if record["voevent"].endswith("\n") else "\n")
    assert "VOEvent" in xml and f"ivo://neodefense/alert#{cat.alert_id(2)}" in xml

    text = _run(capsys, "alerts", "show", cat.alert_id(2), "--catalog", cat.url)
    assert cat.alert_id(2) in text and "Torino rating of 2008 TC3 raised from 0 to 1" in text
    assert text.rstrip().endswith("deliveries: pending 2")
    assert "NDA-99-1: no such alert" in _fails(capsys, 1, "alerts", "show", "NDA-99-1",
                                               "--catalog", cat.url)


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_alerts_deliver_without_prefect_to_a_loopback_webhook(capsys, cat):
    from neodefense.alerts.signing import verify

    _Receiver.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
        added = json.loads(_run(capsys, "subscribers", "add", "loopback", "--webhook", url,
                                "--json", "--catalog", cat.url))
        secret = added["channels"][0]["secret"]
        cat.both()
        result = json.loads(_run(capsys, "alerts", "deliver", "--no-prefect", "--json",
                                 "--catalog", cat.url))
        assert (result["sent"], result["delivered"], result["failed"]) == (2, 2, 0)
        assert result["outbox"]["deliveries"] == {"delivered": 2}
        assert sorted(h["X-Neodefense-Alert-Id"] for h, _ in _Receiver.received) == [
            cat.alert_id(1), cat.alert_id(2)]
        for headers, body in _Receiver.received:
            assert verify(secret, headers["X-Neodefense-Signature"], body)
            assert json.loads(body)["alert_id"] == headers["X-Neodefense-Alert-Id"]
        again = _run(capsys, "alerts", "deliver", "--no-prefect", "--catalog", cat.url)
        assert again.startswith("sent 0 (delivered 0") and "outbox: delivered 2" in again
    finally:
        server.shutdown()
        server.server_close()


# -- argument parsing ------------------------------------------------------------------------------

def test_since_values():
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    assert since_utc("24h", now) == now - dt.timedelta(hours=24)
    assert since_utc("7d", now) == now - dt.timedelta(days=7)
    assert since_utc("90m", now) == now - dt.timedelta(minutes=90)
    assert since_utc("2026-12-01") == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert since_utc("2026-12-01T10:00:00Z") == dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
    assert since_utc("2026-12-01T10:00:00-02:00") == dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    got = since_utc("2026-12-01T10:00:00")
    assert got.tzinfo is not None and got.hour == 10


def test_bad_since_is_an_argument_error(capsys):
    for bad in ("yesterday", "24x", "2026-13-01"):
        with pytest.raises(SystemExit) as exc:
            main(["alerts", "--since", bad])
        assert exc.value.code == 2
        assert "--since" in capsys.readouterr().err


def test_alerts_takes_an_optional_action():
    parser = build_parser()
    listing = parser.parse_args(["alerts", "--since", "24h", "--json"])
    assert listing.action is None and listing.json and listing.since is not None
    assert listing.func.__name__ == "cmd_alerts"
    replay = parser.parse_args(["alerts", "replay", DESIGNATION, "--json", "--step-hours", "2"])
    assert (replay.action, replay.designation, replay.obs, replay.json) == (
        "replay", DESIGNATION, None, True)
    assert (replay.step_hours, replay.tracklet_hours, replay.years, replay.method) == (
        2.0, 1.0, 0.05, "lov")
    assert replay.func.__name__ == "cmd_alerts_replay"
    from_file = parser.parse_args(["alerts", "replay", "--obs", "f.obs80", "--webhook",
                                   "http://127.0.0.1:1/x", "--method", "mc", "--samples", "50"])
    assert (from_file.obs, from_file.designation, from_file.webhook, from_file.samples) == (
        "f.obs80", None, ["http://127.0.0.1:1/x"], 50)
    shown = parser.parse_args(["alerts", "--catalog", "sqlite:///x.db", "show", "NDA-1-1"])
    assert (shown.action, shown.catalog, shown.json) == ("show", "sqlite:///x.db", False)
    deliver = parser.parse_args(["alerts", "deliver", "--wait", "5"])
    assert (deliver.action, deliver.wait, deliver.no_prefect) == ("deliver", 5.0, False)


def test_alerts_replay_help_and_argument_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["alerts", "replay", "--help"])
    assert exc.value.code == 0
    usage = capsys.readouterr().out
    for option in ("--obs", "--step-hours", "--tracklet-hours", "--years", "--method",
                   "--samples", "--seed", "--bodies", "--catalog-out", "--webhook", "--email"):
        assert option in usage
    for argv in (["alerts", "replay"], ["alerts", "replay", DESIGNATION, "--obs", "f.obs80"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        capsys.readouterr()
    missing = tmp_path / "missing.obs80"
    err = _fails(capsys, 1, "alerts", "replay", "--obs", str(missing))
    assert f"{missing}: cannot read" in err
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    assert "2099 ZZ99: no such object" in _fails(capsys, 1, "alerts", "replay", "2099 ZZ99",
                                                 "--catalog", url)
