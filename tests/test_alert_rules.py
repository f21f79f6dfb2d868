"""Risk-list rules, alert state, payload and message texts (neodefense.alerts.rules / .messages)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neodefense.alerts import messages
from neodefense.alerts import rules as R
from neodefense.impacts.assessment import ImpactAssessment, VirtualImpactor

RULES = R.AlertRules()
T0 = "2040-04-13T21:46:00.0"
ENTRY_T0 = "2008-10-07T02:45:40.1"


def vi(ip: float, date: str = T0, *, torino: int = 0, v_inf: float = 5.9, entry: dict | None = None,
       corridor: dict | None = None) -> VirtualImpactor:
    return VirtualImpactor(body="earth", time_tdb_jd=2466000.5, date_utc=date, ip=ip, palermo=-2.0,
                           torino=torino, v_inf_km_s=v_inf, energy_mt=500.0, diameter_m=340.0,
                           entry=entry, corridor=corridor)


def assess(*vis: VirtualImpactor, torino: int = 0, iawn: bool = False, smpag: bool = False,
           status: str = "ok", name: str = "2004 MN4", cumulative_ip: float | None = None) -> dict:
    """An ``ImpactAssessment.as_json()`` dict (the real contract) with the given VIs."""
    return ImpactAssessment(
        designation=name, status=status, method="lov", n_samples=1000,
        cumulative_ip=sum(v.ip for v in vis) if cumulative_ip is None else cumulative_ip,
        palermo_cum=-1.5 if vis else None, palermo_max=-2.0 if vis else None, torino_max=torino,
        iawn_notify=iawn, smpag=smpag, H=19.7, diameter_m=340.0, virtual_impactors=list(vis),
    ).as_json()


def ip_assess(ip: float, **kw) -> dict:
    return assess(vi(ip), **kw)


def run(assessments: list[dict], state: R.AlertState | None = None, rules: R.AlertRules = RULES
        ) -> tuple[list[list[R.AlertEvent]], R.AlertState]:
    state = state or R.AlertState()
    steps = []
    for a in assessments:
        events, state = R.evaluate(state, a, rules)
        steps.append(events)
    return steps, state


def kinds(steps: list[list[R.AlertEvent]]) -> list[list[str]]:
    return [[e.kind for e in events] for events in steps]


def imminent_entry(time_utc: str = ENTRY_T0) -> dict:
    return {"time_utc": time_utc, "time_tdb_jd": 2454746.6, "lat_deg": 20.93, "lon_deg": 31.41,
            "alt_km": 100.0}


# --------------------------------------------------------------------------------------------
# rules


def test_new_object_then_quiet():
    a = assess(vi(3e-5, "2040-04-13T21:46:00.0", v_inf=5.9), vi(2e-5, "2036-04-13T21:46:00.0", v_inf=4.0),
               vi(0.0, "2029-04-13T21:46:00.0"))
    events, state = R.evaluate(R.AlertState(), a, RULES)
    assert [e.kind for e in events] == ["new_object", "ip_up"]
    new = events[0]
    assert new.details == {"cumulative_ip": pytest.approx(5e-5), "n_vi": 2}
    assert "2004 MN4" in new.message and "2 virtual impactors" in new.message
    assert events[1].details == {"threshold": 1e-6, "ip": pytest.approx(5e-5), "previous_ip": 0.0}
    assert state.on_risk_list and state.ip_level == 1 and state.torino == 0
    assert state.risk["n_vi"] == 2 and state.risk["first_year"] == 2036 and state.risk["last_year"] == 2040
    assert state.risk["v_inf_km_s"] == 5.9  # of the VI with the largest IP
    assert state.risk["imminent"] is False
    # the same assessment again: nothing to say, the very same state
    again, state2 = R.evaluate(state, a, RULES)
    assert again == [] and state2 is state


def test_no_vi_never_listed_gives_nothing():
    state = R.AlertState()
    for a in (assess(), assess(vi(0.0))):
        events, new = R.evaluate(state, a, RULES)
        assert events == [] and new is state


def test_ip_hysteresis_does_not_flap():
    steps, state = run([ip_assess(ip) for ip in (0.009, 0.011, 0.0095, 0.012, 0.006, 0.004)])
    assert kinds(steps) == [["new_object", "ip_up"], ["ip_up"], [], [], [], ["ip_down"]]
    assert steps[0][1].details["threshold"] == 1e-4
    assert steps[1][0].details == {"threshold": 1e-2, "ip": 0.011, "previous_ip": 0.009}
    # the fall is measured from the IP at the last alert (0.011), named by the threshold left
    assert steps[5][0].details == {"threshold": 1e-2, "ip": 0.004, "previous_ip": 0.011}
    assert state.ip_level == 2 and state.ip == 0.004


def test_ip_jumps_name_the_highest_threshold():
    steps, state = run([ip_assess(ip) for ip in (0.009, 0.6, 1e-5)])
    assert kinds(steps) == [["new_object", "ip_up"], ["ip_up"], ["ip_down"]]
    assert steps[1][0].details["threshold"] == 0.5
    assert steps[2][0].details["threshold"] == 0.5
    assert state.ip_level == 1  # 1e-5 ≥ 1e-6/2 only


def test_no_hysteresis_with_factor_one():
    rules = R.AlertRules(hysteresis_factor=1.0)
    steps, _ = run([ip_assess(ip) for ip in (0.011, 0.0095, 0.012)], rules=rules)
    assert kinds(steps) == [["new_object", "ip_up"], ["ip_down"], ["ip_up"]]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(min_value=1e-9, max_value=1.0), min_size=1, max_size=30))
def test_level_stays_between_down_and_up_level(ips):
    state = R.AlertState()
    for ip in ips:
        before = state.ip_level
        events, state = R.evaluate(state, ip_assess(ip), RULES)
        assert R.up_level(ip, RULES) <= state.ip_level <= R.down_level(ip, RULES)
        ip_events = [e for e in events if e.kind in ("ip_up", "ip_down")]
        assert len(ip_events) == (state.ip_level != before)


def test_torino_changes():
    steps, state = run([ip_assess(0.005, torino=t) for t in (0, 1, 2, 0)])
    assert kinds(steps) == [["new_object", "ip_up"], ["torino_change"], ["torino_change"], ["torino_change"]]
    assert [s[0].details for s in steps[1:]] == [{"from": 0, "to": 1}, {"from": 1, "to": 2},
                                                 {"from": 2, "to": 0}]
    assert "raised from 1 to 2" in steps[2][0].message and "lowered from 2 to 0" in steps[3][0].message
    assert state.torino == 0


def test_iawn_and_smpag_flags():
    seq = [ip_assess(0.05), ip_assess(0.05, iawn=True), ip_assess(0.05, iawn=True, smpag=True),
           ip_assess(0.05, iawn=True, smpag=True), ip_assess(0.05)]
    steps, state = run(seq)
    assert kinds(steps) == [["new_object", "ip_up"], ["iawn"], ["smpag"], [], ["iawn", "smpag"]]
    assert steps[1][0].details == {"met": True} and "now met" in steps[1][0].message
    assert [e.details for e in steps[4]] == [{"met": False}, {"met": False}]
    assert not state.iawn and not state.smpag


def test_events_follow_rule_order():
    corridor = {"1sigma": [[20.0, 31.0]], "3sigma": [[19.0, 30.0], [21.0, 32.0]]}
    a = assess(vi(0.95, entry=imminent_entry(), corridor=corridor), torino=8, iawn=True, smpag=False)
    events, _ = R.evaluate(R.AlertState(), a, RULES)
    assert [e.kind for e in events] == ["new_object", "torino_change", "ip_up", "iawn", "imminent"]
    assert [e.kind for e in events] == sorted((e.kind for e in events), key=R.RULE_ORDER.index)


def test_imminent_first_and_updates():
    corridor = {"1sigma": [[20.0, 31.0]], "3sigma": [[19.0, 30.0]]}

    def imminent(time_utc: str) -> dict:
        return assess(vi(0.99, "2008-10-07T02:46:00.0", entry=imminent_entry(time_utc), corridor=corridor))

    steps, state = run([imminent(ENTRY_T0)])
    first = steps[0][-1]
    assert first.kind == "imminent" and first.details["update"] is False
    assert first.details["entry"]["time_utc"] == ENTRY_T0 and first.details["corridor"] == corridor
    assert first.details["date_utc"] == "2008-10-07T02:46:00.0" and first.details["ip"] == 0.99
    assert "20.93°N 31.41°E" in first.message and ENTRY_T0 in first.message
    assert state.imminent and state.imminent_time_utc == ENTRY_T0 and state.risk["imminent"] is True
    # 30 s: below imminent_update_s (60 s), no alert; 70 s from the *announced* time: an update
    steps, state = run([imminent("2008-10-07T02:46:10.1"), imminent("2008-10-07T02:46:50.1")], state)
    assert kinds(steps) == [[], ["imminent"]]
    update = steps[1][0]
    assert update.details["update"] is True and "moved by 70 s" in update.message
    assert state.imminent_time_utc == "2008-10-07T02:46:50.1"


def test_imminent_with_failed_entry_then_known():
    failed = {"error": "RuntimeError: entry refinement missed the altitude", "alt_km": 100.0}
    steps, state = run([assess(vi(0.9, entry=failed)), assess(vi(0.9, entry=imminent_entry()))])
    assert kinds(steps) == [["new_object", "ip_up", "imminent"], ["imminent"]]
    assert steps[0][-1].details["update"] is False and "could not be computed" in steps[0][-1].message
    assert steps[1][0].details["update"] is True and state.imminent_time_utc == ENTRY_T0


def test_removal_no_vi_resets_and_return_is_new():
    steps, state = run([ip_assess(0.02, torino=1, iawn=True), assess(), ip_assess(0.02, torino=1, iawn=True)])
    assert kinds(steps) == [["new_object", "torino_change", "ip_up", "iawn"], ["removed"],
                            ["new_object", "torino_change", "ip_up", "iawn"]]
    removed = steps[1][0]
    assert removed.details == {"reason": "no_vi", "reason_text": R.REMOVAL_REASONS["no_vi"], "note": ""}
    assert "removed from the risk list" in removed.message
    # a return is measured from zero again
    assert steps[2][1].details == {"from": 0, "to": 1}
    assert steps[2][2].details["previous_ip"] == 0.0
    assert state.on_risk_list


def test_removal_state_is_reset():
    _, state = run([ip_assess(0.6, torino=3, iawn=True, smpag=True), assess()])
    assert state == R.AlertState(ip=0.0, risk=state.risk)
    assert state.risk["cumulative_ip"] == 0.0 and state.risk["n_vi"] == 0


def test_manual_artificial_exclusion_blocks_readding():
    _, state = run([ip_assess(0.02)])
    events, state = R.removal(state, "artificial", "Tesla\n Roadster", designation="2018 A1")
    assert [e.as_json() for e in events] == [{
        "kind": "removed",
        "message": "2018 A1 removed from the risk list: identified as an artificial object (Tesla Roadster).",
        "reason": "artificial", "reason_text": "identified as an artificial object",
        "note": "Tesla Roadster"}]
    assert state.excluded == "artificial" and not state.on_risk_list and state.ip_level == 0
    assert state.risk["cumulative_ip"] == 0.02  # the last alert's risk: the next alert's "previous"
    # assessments with VIs: nothing, the state untouched
    for a in (ip_assess(0.5, torino=2), assess()):
        events, new = R.evaluate(state, a, RULES)
        assert events == [] and new is state
    # a second removal of an object off the list: no event
    events, again = R.removal(state, "manual")
    assert events == [] and again.excluded == "artificial"
    # lifting the exclusion lets it back as a new object
    events, _ = R.evaluate(R.reinstate(state), ip_assess(0.5), RULES)
    assert events[0].kind == "new_object"


@pytest.mark.parametrize(("reason", "excluded"), [("artificial", "artificial"), ("reassigned", "reassigned"),
                                                   ("manual", None)])
def test_manual_removal_reasons(reason, excluded):
    _, state = run([ip_assess(0.02)])
    events, state = R.removal(state, reason)
    assert [e.details["reason"] for e in events] == [reason]
    assert state.excluded == excluded
    events, _ = R.evaluate(state, ip_assess(0.02), RULES)
    assert [e.kind for e in events][:1] == ([] if excluded else ["new_object"])


def test_removal_off_list_sets_exclusion_without_event():
    events, state = R.removal(R.AlertState(), "artificial")
    assert events == [] and state.excluded == "artificial"
    with pytest.raises(ValueError, match="unknown removal reason 'spam'"):
        R.removal(R.AlertState(), "spam")


def test_non_ok_assessments_are_ignored():
    _, state = run([ip_assess(0.02)])
    for status in ("failed", "degenerate_covariance", "no_solution", "unbound_samples"):
        for a in (assess(status=status), ip_assess(0.9, status=status, torino=5)):
            events, new = R.evaluate(state, a, RULES)
            assert events == [] and new is state
    events, new = R.evaluate(R.AlertState(), ip_assess(0.9, status="failed"), RULES)
    assert events == [] and new == R.AlertState()


def test_state_json_round_trip():
    corridor = {"1sigma": [[20.0, 31.0]]}
    _, state = run([assess(vi(0.99, entry=imminent_entry(), corridor=corridor), torino=8, iawn=True)])
    text = json.dumps(state.as_json(), allow_nan=False)
    back = R.AlertState.from_json(json.loads(text))
    assert back == state
    assert R.AlertState.from_json(None) == R.AlertState()
    assert R.AlertState.from_json({"on_risk_list": True, "future": 1}) == R.AlertState(on_risk_list=True)
    excluded = dataclasses.replace(state, excluded="artificial")
    assert R.AlertState.from_json(json.loads(json.dumps(excluded.as_json()))).excluded == "artificial"
    # the copy does not share the risk dict
    back.risk["cumulative_ip"] = 0.0
    assert state.risk["cumulative_ip"] == 0.99


def test_event_json():
    e = R.AlertEvent("torino_change", "Torino raised", {"from": 0, "to": 1})
    assert e.as_json() == {"kind": "torino_change", "message": "Torino raised", "from": 0, "to": 1}
    assert R.AlertEvent.from_json(e.as_json()) == e


# --------------------------------------------------------------------------------------------
# configuration


def test_rules_from_settings():
    section = {"ip_thresholds": [1e-5, 1e-3, 0.1], "hysteresis_factor": 3, "imminent_update_s": 30.0,
               "ivorn_base": "ivo://neodefense/alert", "webhook_timeout_s": 10.0, "smtp": {"host": "x"}}
    rules = R.AlertRules.from_settings(section)
    assert rules == R.AlertRules((1e-5, 1e-3, 0.1), 3, 30.0)
    assert R.AlertRules.from_settings({}) == R.AlertRules() == R.AlertRules.from_settings(None)
    assert R.AlertRules(ip_thresholds=[1e-3, 1]).ip_thresholds == (1e-3, 1.0)


@pytest.mark.parametrize(("kw", "match"), [
    ({"ip_thresholds": (1e-2, 1e-4)}, "ascending"),
    ({"ip_thresholds": (1e-4, 1e-4)}, "ascending"),
    ({"ip_thresholds": (0.0, 1e-4)}, r"\(0, 1\]"),
    ({"ip_thresholds": (1e-4, 1.5)}, r"\(0, 1\]"),
    ({"ip_thresholds": ("0.1",)}, r"\(0, 1\]"),
    ({"ip_thresholds": ()}, "empty"),
    ({"ip_thresholds": "0.1"}, "list of numbers"),
    ({"hysteresis_factor": 0.5}, "≥ 1"),
    ({"hysteresis_factor": float("nan")}, "≥ 1"),
    ({"imminent_update_s": -1.0}, "≥ 0"),
])
def test_rules_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        R.AlertRules(**kw)
    with pytest.raises(ValueError, match=match):
        R.AlertRules.from_settings(kw)


# --------------------------------------------------------------------------------------------
# risk summary and payload


def test_risk_summary():
    a = assess(vi(1e-4, "2051-01-01T00:00:00.0", v_inf=7.0), vi(3e-4, "2045-06-01T00:00:00.0", v_inf=12.5))
    a["palermo_max"] = None
    s = R.risk_summary(a)
    assert set(s) == set(R.RISK_KEYS)
    assert s["cumulative_ip"] == pytest.approx(4e-4) and s["n_vi"] == 2
    assert (s["first_year"], s["last_year"], s["v_inf_km_s"]) == (2045, 2051, 12.5)
    assert s["palermo_max"] is None and s["palermo_cum"] == -1.5 and s["H"] == 19.7
    assert s["method"] == "lov" and s["n_samples"] == 1000 and s["iawn_notify"] is False
    empty = R.risk_summary(assess())
    assert empty["n_vi"] == 0 and empty["first_year"] is None and empty["v_inf_km_s"] is None


PAYLOAD_KEYS = {"schema", "alert_id", "ivorn", "sequence", "supersedes", "supersedes_ivorn", "issued_utc",
                "object_id", "designation", "aliases", "kinds", "events", "risk", "previous",
                "virtual_impactors", "imminent", "removal", "provenance", "links"}
PROVENANCE = {"assessment_id": 7, "assessment_version": 2, "solution_id": 5, "observation_set_hash": "ab12",
              "code_version": "neodefense 0.1.0", "solution_code_version": "neodefense 0.1.0"}


def payload_for(state: R.AlertState, a: dict | None, events, new_state: R.AlertState, seq: int = 2,
                removal=None) -> dict:
    return R.build_payload(
        alert_id=f"NDA-12-{seq}", ivorn=f"ivo://neodefense/alert#NDA-12-{seq}", sequence=seq,
        supersedes=f"NDA-12-{seq - 1}" if seq > 1 else None,
        supersedes_ivorn=f"ivo://neodefense/alert#NDA-12-{seq - 1}" if seq > 1 else None,
        issued_utc="2008-10-06T08:00:00Z", object_id=12, designation="2008 TC3",
        aliases=["2008 TC3", "trkSub:G96:8TA9D69", "2008 TC3"], events=events,
        risk=new_state.risk, previous=state.risk, assessment=a, removal=removal, provenance=PROVENANCE)


def test_build_payload_shape():
    corridor = {"1sigma": [[20.0, 31.0]], "3sigma": [[19.0, 30.0]]}
    many = [vi(10.0 ** -(k + 3), f"{2030 + k}-01-01T00:00:00.0") for k in range(14)]
    a0 = assess(*many)
    _, s1 = R.evaluate(R.AlertState(), a0, RULES)
    a = assess(vi(0.97, "2008-10-07T02:46:00.0", entry=imminent_entry(), corridor=corridor), *many, torino=0)
    events, s2 = R.evaluate(s1, a, RULES)
    p = payload_for(s1, a, list(reversed(events)), s2)
    assert set(p) == PAYLOAD_KEYS
    assert p["schema"] == "neodefense.alert/1" and p["sequence"] == 2 and p["links"] == {}
    assert p["kinds"] == ["ip_up", "imminent"]  # put in RULE_ORDER
    assert [e["kind"] for e in p["events"]] == p["kinds"]
    assert p["aliases"] == ["2008 TC3", "trkSub:G96:8TA9D69"]
    assert set(p["risk"]) == set(R.RISK_KEYS) and "imminent" not in p["risk"]
    assert set(p["previous"]) == set(R.RISK_KEYS) | {"imminent"} and p["previous"]["imminent"] is False
    vis = p["virtual_impactors"]
    assert len(vis) == 10 and vis[0]["ip"] == 0.97
    assert [v["ip"] for v in vis] == sorted((v["ip"] for v in vis), reverse=True)
    assert set(vis[0]) == set(R.VI_KEYS)
    assert p["imminent"] == {"body": "earth", "date_utc": "2008-10-07T02:46:00.0", "ip": 0.97,
                             "entry": imminent_entry(), "corridor": corridor}
    assert p["removal"] is None and p["provenance"] == PROVENANCE
    json.dumps(p, allow_nan=False)


def test_build_payload_removal():
    _, s1 = R.evaluate(R.AlertState(), assess(vi(0.9, entry=imminent_entry())), RULES)
    a = assess()
    events, s2 = R.evaluate(s1, a, RULES)
    p = payload_for(s1, a, events, s2, seq=4)
    assert p["kinds"] == ["removed"] and p["imminent"] is None and p["virtual_impactors"] == []
    assert p["removal"] == {"reason": "no_vi", "reason_text": R.REMOVAL_REASONS["no_vi"], "note": ""}
    assert p["previous"]["imminent"] is True and p["previous"]["cumulative_ip"] == 0.9
    # a manual removal: no assessment, the reason given
    events, s3 = R.removal(s1, "artificial", "rocket body", designation="2008 TC3")
    p = payload_for(s1, None, [e.as_json() for e in events], s3, seq=4, removal={"reason": "artificial"})
    assert p["removal"] == {"reason": "artificial", "reason_text": "identified as an artificial object",
                            "note": ""}
    assert p["virtual_impactors"] == [] and p["imminent"] is None


def test_iso_utc():
    from datetime import UTC, datetime, timedelta, timezone

    assert R.iso_utc(datetime(2008, 10, 6, 8, 0, 0, 123456)) == "2008-10-06T08:00:00Z"
    assert R.iso_utc(datetime(2008, 10, 6, 10, 0, 0, tzinfo=timezone(timedelta(hours=2)))) == \
        "2008-10-06T08:00:00Z"
    assert R.iso_utc(datetime(2008, 10, 6, 8, tzinfo=UTC)) == "2008-10-06T08:00:00Z"


def test_format_ip():
    assert [R.format_ip(x) for x in (0.011, 0.98, 9.5e-5, 0.0, None, 0.99996, 1.0)] == \
        ["0.011", "0.98", "9.50e-05", "0", "n/a", ">0.999", "1"]


# --------------------------------------------------------------------------------------------
# message texts


def test_messages():
    corridor = {"1sigma": [[20.0, 31.0]], "3sigma": [[19.0, 30.0], [21.0, 32.0]]}
    _, s1 = R.evaluate(R.AlertState(), ip_assess(0.02), RULES)
    a = assess(vi(0.99, "2008-10-07T02:46:00.0", entry=imminent_entry(), corridor=corridor), torino=1)
    events, s2 = R.evaluate(s1, a, RULES)
    p = payload_for(s1, a, events, s2)
    line = messages.summary_line(p)
    assert line == "2008-10-06T08:00:00Z NDA-12-2 2008 TC3 torino_change,ip_up,imminent IP=0.99 Torino=1"
    subject = messages.email_subject(p)
    assert subject.startswith(
        f"[neodefense] 2008 TC3: IMMINENT IMPACT {ENTRY_T0} UTC; Torino 0→1; IP above 0.99")
    assert subject.endswith("(IP 0.99, Torino 1)")
    text = messages.email_text(p)
    for needle in ("NDA-12-2", "Object: 2008 TC3 (catalog id 12), also known as trkSub:G96:8TA9D69",
                   "IMMINENT IMPACT", f"Atmospheric entry: {ENTRY_T0} UTC",
                   "20.930°N 31.410°E, 100 km altitude",
                   "Entry corridor: 1sigma 1 point, 3sigma 2 points", "Orbit solution:         5",
                   "This alert supersedes NDA-12-1 (ivo://neodefense/alert#NDA-12-1)."):
        assert needle in text, needle
    assert re.search(r"Cumulative impact probability +0\.99 +0\.02\n", text)
    assert re.search(r"Torino scale \(maximum\) +1 +0\n", text)
    assert re.search(r"Imminent impact +yes +no\n", text)
    for event in p["events"]:
        assert event["message"] in text


def test_messages_removal_and_header_safety():
    _, s1 = R.evaluate(R.AlertState(), ip_assess(0.02), RULES)
    events, s2 = R.removal(s1, "artificial", "upper stage", designation="2020 SO")
    p = payload_for(s1, None, events, s2, seq=3)
    p["designation"] = "2020 SO\r\nBcc: victim@example.org"
    subject = messages.email_subject(p)
    assert "\n" not in subject and "\r" not in subject
    assert "removed from the risk list (identified as an artificial object)" in subject
    text = messages.email_text(p)
    assert "Removed from the risk list: identified as an artificial object — upper stage" in text
    assert "This alert retracts NDA-12-2" in text
    assert "\n" not in messages.summary_line(p)
    # a manual removal may carry no current risk: the previous one is shown
    no_risk = {**p, "risk": None}
    assert messages.summary_line(no_risk).endswith("removed IP=0.02 Torino=0")
    assert re.search(r"Cumulative impact probability +- +0\.02\n", messages.email_text(no_risk))
