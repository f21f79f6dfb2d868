"""Subscriber criteria (neodefense.alerts.criteria): validation, JSON and matching."""

from __future__ import annotations

import json

import pytest

from neodefense.alerts.criteria import Criteria, matches


def risk(ip: float = 1e-4, torino: int = 0, palermo: float | None = -3.0, iawn: bool = False,
         **extra) -> dict:
    return {"cumulative_ip": ip, "palermo_cum": palermo, "palermo_max": palermo, "torino_max": torino,
            "n_vi": 1, "iawn_notify": iawn, "smpag": False, **extra}


def payload(*, kinds: tuple[str, ...] = ("ip_up",), now: dict | None = None, previous: dict | None = None,
            imminent: dict | None = None, designation: str = "2008 TC3",
            aliases: tuple[str, ...] = ("2008 TC3", "trkSub:G96:8TA9D69")) -> dict:
    return {"alert_id": "NDA-1-2", "designation": designation, "aliases": list(aliases), "kinds": list(kinds),
            "events": [{"kind": k, "message": k} for k in kinds], "risk": now if now is not None else risk(),
            "previous": previous, "imminent": imminent, "removal": None}


def test_empty_criteria_match_everything():
    c = Criteria.from_json({})
    assert c == Criteria() == Criteria.from_json(None) and c.empty
    assert c.describe() == "every alert"
    for p in (payload(), payload(kinds=("removed",), now=risk(ip=0.0)), payload(now={}, previous=None)):
        assert matches(c, p)


def test_json_round_trip_and_describe():
    d = {"torino_min": 1, "ip_min": 1e-4, "palermo_min": -2, "iawn_only": True, "imminent_only": False,
         "objects": ["2008tc3", " Apophis "]}
    c = Criteria.from_json(d)
    assert c.objects == ("2008tc3", "Apophis") and c.palermo_min == -2.0
    assert Criteria.from_json(json.loads(json.dumps(c.as_json()))) == c
    assert c.as_json() == {**d, "palermo_min": -2.0, "objects": ["2008tc3", "Apophis"]}
    assert c.describe() == "Torino ≥ 1, IP ≥ 0.0001, Palermo ≥ -2, IAWN only, objects 2008tc3, Apophis"
    assert not c.empty
    nulls = Criteria.from_json({"torino_min": None, "iawn_only": None, "objects": None})
    assert nulls == Criteria()
    many = Criteria(objects=tuple(f"2020 A{i}" for i in range(1, 8)))
    assert many.describe().endswith("and 2 more")


@pytest.mark.parametrize(("d", "match"), [
    ({"torino_min": 11}, "torino_min"),
    ({"torino_min": 1.5}, "torino_min"),
    ({"torino_min": True}, "torino_min"),
    ({"torino_min": "1"}, "torino_min"),
    ({"ip_min": 0}, "ip_min"),
    ({"ip_min": 1.5}, "ip_min"),
    ({"ip_min": float("nan")}, "ip_min"),
    ({"ip_min": "1e-4"}, "ip_min"),
    ({"palermo_min": float("inf")}, "palermo_min"),
    ({"iawn_only": "yes"}, "iawn_only"),
    ({"imminent_only": 1}, "imminent_only"),
    ({"objects": "2008 TC3"}, "objects"),
    ({"objects": [42]}, r"objects\[0\]"),
    ({"objects": ["2008 TC3", "x; DROP TABLE"]}, r"objects\[1\]"),
    ({"objects": [""]}, r"objects\[0\].*empty"),
    ({"objects": ["trkSub:G96:a:b"]}, r"objects\[0\]"),
    ({"torino": 1}, "unknown criteria 'torino'"),
])
def test_invalid_criteria(d, match):
    with pytest.raises(ValueError, match=match):
        Criteria.from_json(d)


def test_not_a_mapping():
    with pytest.raises(ValueError, match="JSON object"):
        Criteria.from_json(["ip_min"])  # type: ignore[arg-type]


def test_thresholds_use_the_larger_of_risk_and_previous():
    c = Criteria(torino_min=1)
    assert not matches(c, payload(now=risk(torino=0)))
    assert matches(c, payload(now=risk(torino=1)))
    # the fall from 2 to 0 and the removal are heard by who heard the rise
    assert matches(c, payload(kinds=("torino_change",), now=risk(torino=0), previous=risk(torino=2)))
    assert matches(c, payload(kinds=("removed",), now=risk(ip=0.0, torino=0, palermo=None),
                              previous=risk(torino=2)))
    ip = Criteria(ip_min=1e-2)
    assert not matches(ip, payload(now=risk(ip=9e-3), previous=risk(ip=5e-3)))
    assert matches(ip, payload(now=risk(ip=4e-3), previous=risk(ip=0.011)))
    assert matches(ip, payload(now=risk(ip=0.02)))
    assert not matches(ip, payload(now=None or {}, previous=None))


def test_palermo():
    c = Criteria(palermo_min=-2.0)
    assert not matches(c, payload(now=risk(palermo=-3.0)))
    assert matches(c, payload(now=risk(palermo=-1.0)))
    assert not matches(c, payload(now=risk(palermo=None)))  # unknown Palermo: not above the bar
    assert matches(c, payload(now=risk(palermo=None), previous=risk(palermo=-0.5)))
    cum_only = risk(palermo=None)
    cum_only["palermo_cum"] = -1.9
    assert matches(c, payload(now=cum_only))


def test_iawn_only():
    c = Criteria(iawn_only=True)
    assert not matches(c, payload())
    assert matches(c, payload(now=risk(iawn=True)))
    assert matches(c, payload(now=risk(iawn=False), previous=risk(iawn=True)))
    assert matches(c, payload(kinds=("iawn",), now=risk(iawn=False)))  # "no longer met"


def test_imminent_only():
    c = Criteria(imminent_only=True)
    assert not matches(c, payload())
    assert not matches(c, payload(previous={**risk(), "imminent": False}))
    assert matches(c, payload(kinds=("imminent",)))
    assert matches(c, payload(kinds=("torino_change",), imminent={"body": "earth", "entry": {}}))
    # removal of an object whose previous state was imminent
    assert matches(c, payload(kinds=("removed",), now=risk(ip=0.0), previous={**risk(), "imminent": True}))


@pytest.mark.parametrize(("name", "expected"), [
    ("2008 TC3", True), ("2008tc3", True), ("K08T03C", True), ("  2008   TC3 ", True),
    ("trksub:g96:8ta9d69", True), ("2008 TC4", False), ("Apophis", False),
])
def test_objects(name, expected):
    assert matches(Criteria(objects=(name,)), payload()) is expected


def test_objects_by_alias_and_number():
    p = payload(designation="99942", aliases=("2004 MN4", "Apophis"))
    assert matches(Criteria(objects=("apophis",)), p)
    assert matches(Criteria(objects=("(99942) Apophis",)), p)
    assert matches(Criteria(objects=("K04M04N",)), p)
    assert matches(Criteria(objects=("2010 XY", "2004mn4")), p)
    assert not matches(Criteria(objects=("433",)), p)


def test_all_criteria_must_hold():
    c = Criteria(ip_min=1e-4, objects=("2008 TC3",), iawn_only=True)
    assert matches(c, payload(now=risk(ip=0.5, iawn=True)))
    assert not matches(c, payload(now=risk(ip=0.5, iawn=False)))
    assert not matches(c, payload(now=risk(ip=1e-5, iawn=True)))
    assert not matches(c, payload(now=risk(ip=0.5, iawn=True), designation="2020 SO", aliases=()))
