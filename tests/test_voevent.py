"""VOEvent 2.0 documents of alerts (neodefense.alerts.voevent): schema validity, citations, parsing."""

from __future__ import annotations

import pytest
import voeventparse as vp

from neodefense.alerts import rules as R
from neodefense.alerts.voevent import importance_from_ip, parse_voevent, to_voevent

RULES = R.AlertRules()
ENTRY = {"time_utc": "2008-10-07T02:45:40.1", "time_tdb_jd": 2454746.6, "lat_deg": 20.93, "lon_deg": 31.41,
         "alt_km": 100.0, "speed_km_s": 12.4}
CORRIDOR = {"alt_km": 100.0, "1sigma": [[20.9, 31.4], [21.0, 31.5]], "3sigma": [[20.5, 31.0]]}
PROVENANCE = {"assessment_id": 7, "assessment_version": 1, "solution_id": 5, "observation_set_hash": "ab12",
              "code_version": "neodefense 0.1.0", "solution_code_version": "neodefense 0.1.0"}


def vi(ip: float, date: str, *, entry: dict | None = None, corridor: dict | None = None) -> dict:
    return {"body": "earth", "date_utc": date, "time_tdb_jd": 2454746.6, "ip": ip, "ip_sigma": 0.0,
            "palermo": -1.0, "torino": 0, "v_inf_km_s": 1.27, "v_imp_km_s": 11.25, "energy_mt": 0.001,
            "diameter_m": 4.0, "entry": entry, "corridor": corridor}


def assessment(*vis: dict, name: str = "2008 TC3", palermo_max: float | None = -1.0, **kw) -> dict:
    return {"designation": name, "status": "ok", "method": "lov", "n_samples": 1000,
            "cumulative_ip": sum(v["ip"] for v in vis), "palermo_cum": -0.8 if vis else None,
            "palermo_max": palermo_max if vis else None, "torino_max": 0, "iawn_notify": False,
            "smpag": False,
            "H": 30.9, "diameter_m": 4.0, "virtual_impactors": list(vis), **kw}


def chain(assessments: list[dict], name: str = "2008 TC3", removal_reason: str | None = None) -> list[dict]:
    """The payloads of the alerts a sequence of assessments raises (optionally ending with a
    manual removal), linked like the catalog links them."""
    state, payloads = R.AlertState(), []

    def issue(events, new_state, a):
        seq = len(payloads) + 1
        prev = payloads[-1] if payloads else None
        payloads.append(R.build_payload(
            alert_id=f"NDA-12-{seq}", ivorn=f"ivo://neodefense/alert#NDA-12-{seq}", sequence=seq,
            supersedes=prev["alert_id"] if prev else None, supersedes_ivorn=prev["ivorn"] if prev else None,
            issued_utc=f"2008-10-06T{8 + seq:02d}:00:00Z", object_id=12, designation=name,
            aliases=[name, "trkSub:G96:8TA9D69"], events=events, risk=new_state.risk or state.risk,
            previous=state.risk, assessment=a, removal=None, provenance=PROVENANCE))

    for a in assessments:
        events, new_state = R.evaluate(state, a, RULES)
        if events:
            issue(events, new_state, a)
        state = new_state
    if removal_reason:
        events, new_state = R.removal(state, removal_reason, "upper stage", designation=name)
        issue(events, new_state, None)
    return payloads


def valid(xml: str) -> bool:
    v = vp.loads(xml.encode("utf-8"))
    vp.assert_valid_as_v2_0(v)  # raises with the reason
    return vp.valid_as_v2_0(v)


def test_first_alert_is_a_valid_prediction_without_citations():
    (p,) = chain([assessment(vi(2e-3, "2050-01-01T00:00:00.0"))])
    xml = to_voevent(p)
    assert valid(xml)
    v = vp.loads(xml.encode())
    assert v.attrib["role"] == "prediction" and v.attrib["ivorn"] == "ivo://neodefense/alert#NDA-12-1"
    assert not v.xpath("Citations")
    d = parse_voevent(xml)
    assert d["ivorn"] == p["ivorn"] and d["role"] == "prediction" and d["version"] == "2.0"
    assert d["citations"] == []
    assert d["author_ivorn"] == "ivo://neodefense/author" and d["date"] == "2008-10-06T09:00:00Z"
    # not imminent: WhereWhen carries the issue time only
    assert d["where_when"] == {"time": "2008-10-06T09:00:00", "system": "UTC-ICRS-GEO", "lon_deg": None,
                               "lat_deg": None, "height_m": None}


def test_params_round_trip():
    (p,) = chain([assessment(vi(2e-3, "2050-01-01T00:00:00.0"), vi(1e-3, "2061-01-01T00:00:00.0"),
                             palermo_max=None)])
    d = parse_voevent(to_voevent(p))
    params = d["params"]
    assert params["designation"] == "2008 TC3" and params["alert_id"] == "NDA-12-1"
    assert params["cumulative_ip"] == pytest.approx(3e-3) and params["torino_max"] == 0
    assert params["palermo_cum"] == -0.8 and params["n_vi"] == 2 and params["H"] == 30.9
    assert params["diameter_m"] == 4.0 and params["event_kinds"] == "new_object,ip_up"
    assert params["first_year"] == 2050 and params["last_year"] == 2061
    assert params["iawn_notify"] == "false" and params["method"] == "lov"
    assert "palermo_max" not in params and "supersedes" not in params  # None values are left out
    assert d["groups"]["vi1"] == {"body": "earth", "date_utc": "2050-01-01T00:00:00.0", "ip": 2e-3,
                                  "palermo": -1.0, "torino": 0, "v_inf_km_s": 1.27, "energy_mt": 0.001}
    assert set(d["groups"]) == {"vi1", "vi2"}
    (inference,) = d["inferences"]
    assert inference["concept"] == "Impact risk" and inference["name"] == "2008 TC3"
    assert inference["probability"] == pytest.approx(3e-3)
    assert inference["descriptions"] == [e["message"] for e in p["events"]]
    assert d["importance"] == pytest.approx(importance_from_ip(3e-3))


def test_citation_chain_supersedes_then_retraction():
    payloads = chain([assessment(vi(2e-3, "2050-01-01T00:00:00.0")),
                      assessment(vi(0.02, "2050-01-01T00:00:00.0")),
                      assessment()])
    assert [p["kinds"] for p in payloads] == [["new_object", "ip_up"], ["ip_up"], ["removed"]]
    docs = [parse_voevent(to_voevent(p)) for p in payloads]
    for p in payloads:
        assert valid(to_voevent(p))
    assert docs[0]["citations"] == []
    assert docs[1]["citations"] == [("ivo://neodefense/alert#NDA-12-1", "supersedes")]
    assert docs[2]["citations"] == [("ivo://neodefense/alert#NDA-12-2", "retraction")]
    assert docs[2]["role"] == "prediction"
    assert docs[2]["params"]["removal_reason"] == "no_vi"
    # a retraction matters as much as the alert it retracts
    assert docs[2]["importance"] == pytest.approx(importance_from_ip(0.02))


def test_manual_removal_is_a_retraction():
    payloads = chain([assessment(vi(0.02, "2050-01-01T00:00:00.0"))], removal_reason="artificial")
    p = payloads[-1]
    assert p["kinds"] == ["removed"] and p["removal"]["reason"] == "artificial"
    xml = to_voevent(p)
    assert valid(xml)
    d = parse_voevent(xml)
    assert d["citations"] == [("ivo://neodefense/alert#NDA-12-1", "retraction")]
    assert d["params"]["removal_reason_text"] == "identified as an artificial object"
    assert d["params"]["removal_note"] == "upper stage"
    # without a current risk the Params come from the previous one
    xml = to_voevent({**p, "risk": None})
    assert valid(xml)
    d = parse_voevent(xml)
    assert d["params"]["cumulative_ip"] == 0.02 and d["inferences"][0]["probability"] is None


def test_imminent_where_when_is_the_entry_point():
    (p,) = chain([assessment(vi(0.99, "2008-10-07T02:46:00.0", entry=ENTRY, corridor=CORRIDOR))])
    xml = to_voevent(p)
    assert valid(xml)
    d = parse_voevent(xml)
    assert d["where_when"] == {"time": "2008-10-07T02:45:40.1", "system": "UTC-GEOD-TOPO", "lon_deg": 31.41,
                               "lat_deg": 20.93, "height_m": 100000.0}
    g = d["groups"]["imminent"]
    assert g["entry_time_utc"] == "2008-10-07T02:45:40.1" and g["entry_lat_deg"] == 20.93
    assert g["entry_lon_deg"] == 31.41 and g["entry_alt_km"] == 100.0 and g["ip"] == 0.99
    v = vp.loads(xml.encode())
    assert vp.get_event_time_as_utc(v).isoformat() == "2008-10-07T02:45:40.100000+00:00"


def test_imminent_with_failed_entry_is_valid():
    failed = {"error": "RuntimeError: missed <altitude> & more", "alt_km": 100.0}
    (p,) = chain([assessment(vi(0.9, "2008-10-07T02:46:00.0", entry=failed))])
    xml = to_voevent(p)
    assert valid(xml)
    d = parse_voevent(xml)
    assert d["groups"]["imminent"]["entry_error"] == failed["error"]
    assert d["where_when"]["system"] == "UTC-ICRS-GEO"


def test_at_most_ten_virtual_impactor_groups():
    vis = [vi(10.0 ** -(k + 3), f"{2030 + k}-01-01T00:00:00.0") for k in range(14)]
    (p,) = chain([assessment(*vis)])
    d = parse_voevent(to_voevent(p))
    assert sorted(d["groups"]) == sorted(f"vi{i}" for i in range(1, 11))
    assert d["groups"]["vi1"]["ip"] == 1e-3


def test_xml_special_characters_are_escaped():
    name = "2008 TC3 <b>&amp; \"x\"\x01 'y' ]]>"
    (p,) = chain([assessment(vi(2e-3, "2050-01-01T00:00:00.0"), name=name)], name=name)
    p["removal"] = {"reason": "manual", "reason_text": "a <note> & such", "note": "</Param><x/>"}
    xml = to_voevent(p)
    assert valid(xml)
    assert "<b>" not in xml and "</Param><x/>" not in xml and "\x01" not in xml
    d = parse_voevent(xml)
    clean = name.replace("\x01", "")
    assert d["params"]["designation"] == clean
    assert d["params"]["removal_note"] == "</Param><x/>"
    assert d["inferences"][0]["name"] == clean
    assert any(clean in text for text in d["inferences"][0]["descriptions"])


def test_author_details():
    (p,) = chain([assessment(vi(2e-3, "2050-01-01T00:00:00.0"))])
    xml = to_voevent(p, author_ivorn="ivo://example.org/neo", contact_name="Duty <officer>",
                     contact_email="duty@example.org")
    assert valid(xml)
    v = vp.loads(xml.encode())
    assert str(v.Who.AuthorIVORN) == "ivo://example.org/neo"
    assert str(v.Who.Author.shortName) == "neodefense" and str(v.Who.Author.contactName) == "Duty <officer>"


def test_parse_rejects_unsafe_and_foreign_xml():
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            '<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://x#y" '
            'version="2.0" role="test"><What><Param name="a" value="&lol2;"/></What></voe:VOEvent>')
    with pytest.raises(ValueError):
        parse_voevent(bomb)
    external = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                '<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://x#y" '
                'version="2.0">&e;</voe:VOEvent>')
    with pytest.raises(ValueError):
        parse_voevent(external)
    with pytest.raises(ValueError, match="not a VOEvent"):
        parse_voevent(b"<html><body/></html>")
    with pytest.raises(ValueError, match="readable"):
        parse_voevent("<voe:VOEvent")


def test_importance():
    assert importance_from_ip(None) == 0.0 and importance_from_ip(0.0) == 0.0
    assert importance_from_ip(1e-6) == 0.25 and importance_from_ip(1e-2) == 0.75
    assert importance_from_ip(1.0) == 1.0
    assert importance_from_ip(1e-12) == 0.0


def test_payload_without_ivorn_is_refused():
    (p,) = chain([assessment(vi(2e-3, "2050-01-01T00:00:00.0"))])
    with pytest.raises(ValueError, match="ivorn"):
        to_voevent({**p, "ivorn": None})
