"""Target planes in the impact assessment (``ImpactAssessment.target_planes``), on real data.

2008 TC3 (883 observations, bundled): Monte Carlo samples over the Earth on 2008-10-07 fall inside
the focused capture disc (it hit); with its covariance inflated 1e9× the encounter is uncertain
and the fraction of Monte Carlo cross-check points inside the capture disc matches the counted
impact probability to a few samples (the b-plane geometry and the impact counting agree).
Apophis (bundled, A2 fitted; marked slow, ~12 s): the 2029-04-13 close approach without a
virtual impactor gets a "close_approach" plane whose nominal point obeys the two-body focusing
relation b = q √(1 + 2μ/(q v∞²)). The planes are stored in the catalog's ``result`` JSON and
come back; old results without them still load.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from neodefense.catalog import assessments, ingest, queries, solutions
from neodefense.impacts import monitor
from neodefense.impacts.assessment import OK
from neodefense.impacts.bplane import GM_KM3_S2, RADIUS_KM
from neodefense.impacts.monitor import monitor_solution
from neodefense.observations import io
from neodefense.orbits.fit import fit_orbit

DEMO = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
PLANE_KEYS = {"kind", "body", "date_utc", "time_tdb_jd", "radius_km", "b_impact_km", "v_inf_km_s",
              "ip", "vi_xi_km", "vi_zeta_km", "nominal_xi_km", "nominal_zeta_km", "method",
              "n_samples", "n_impacting", "points_km", "n_check_samples", "check_points_km"}


@pytest.fixture(scope="module")
def tc3():
    batch = io.read(DEMO / "2008_TC3.obs80").batch
    return fit_orbit(batch, "2008 TC3", close_approach_years=None), batch


@pytest.fixture(scope="module")
def tc3_mc(tc3):
    sol, batch = tc3
    return monitor_solution(sol, batch=batch, method="mc", years=0.05, n_samples=60,
                            bodies=("earth", "moon"), seed=1)


def _radius(points: list) -> np.ndarray:
    return np.hypot(*np.asarray(points, dtype=float).T)


def test_tc3_cloud_over_the_earth(tc3_mc):
    """Every Monte Carlo sample of 2008 TC3 is on the Earth's 2008-10-07 target plane, inside the
    focused capture disc, with the virtual impactor's and the nominal's own points."""
    a = tc3_mc
    assert a.status == OK, a.message
    (plane,) = a.target_planes  # one VI, no other approach within 0.05 au in 18 days
    assert set(plane) == PLANE_KEYS
    assert plane["kind"] == "virtual_impactor" and plane["body"] == "earth"
    assert plane["date_utc"].startswith("2008-10-07T02:")
    assert plane["method"] == "mc" and plane["ip"] == pytest.approx(a.cumulative_ip)
    assert plane["radius_km"] == RADIUS_KM["earth"]
    # focusing at TC3's v∞ ≈ 6.4 km/s roughly doubles the Earth's radius
    v_inf = plane["v_inf_km_s"]
    assert 5.5 < v_inf < 7.5
    expected = RADIUS_KM["earth"] * math.sqrt(1 + 2 * GM_KM3_S2["earth"] / (RADIUS_KM["earth"]
                                                                            * v_inf**2))
    assert plane["b_impact_km"] == pytest.approx(expected, rel=1e-6)
    assert plane["n_samples"] == 60 == len(plane["points_km"]) and plane["n_impacting"] == 60
    r = _radius(plane["points_km"])
    assert np.mean(r < plane["b_impact_km"]) >= 0.9
    assert np.all(r > RADIUS_KM["earth"])  # a grazing entry (~20° elevation): not central
    # the VI's representative is one of the samples, the nominal sits in the cloud
    vi = np.array([plane["vi_xi_km"], plane["vi_zeta_km"]])
    nominal = np.array([plane["nominal_xi_km"], plane["nominal_zeta_km"]])
    assert any(np.array_equal(vi, p) for p in np.asarray(plane["points_km"]))
    assert np.linalg.norm(nominal - vi) < 5.0
    # 0.1 km rounding, plain JSON
    assert all(round(x, 1) == x for p in plane["points_km"] for x in p)
    assert json.loads(json.dumps(plane)) == plane
    assert plane["check_points_km"] == [] and plane["n_check_samples"] == 0


def test_thinning_keeps_a_seeded_subset_in_order(tc3, tc3_mc, monkeypatch):
    """Above the cap a seeded random subset of the points is kept, in sample order."""
    sol, batch = tc3
    monkeypatch.setattr(monitor, "TARGET_PLANE_POINTS", 25)
    a = monitor_solution(sol, batch=batch, method="mc", years=0.05, n_samples=60,
                         bodies=("earth", "moon"), seed=1)
    full = [tuple(p) for p in tc3_mc.target_planes[0]["points_km"]]
    thin = [tuple(p) for p in a.target_planes[0]["points_km"]]
    assert len(thin) == 25 and a.target_planes[0]["n_samples"] == 60
    rest = iter(full)  # a subsequence of the full list (points repeat at 0.1 km: no indexes)
    assert all(any(p == q for q in rest) for p in thin)


def test_uncertain_encounter_plane_matches_the_counted_probability(tc3):
    """TC3 with its covariance inflated 1e9×: the LOV crosses the capture disc (some virtual
    asteroids inside, some outside), and the share of the Monte Carlo cross-check points inside
    the capture disc is the counted impact probability."""
    sol, batch = tc3
    wide = dataclasses.replace(sol, covariance=sol.covariance * 1e9)
    a = monitor_solution(wide, batch=batch, years=0.01, n_samples=21, bodies=("earth",),
                         cross_check_samples=120, seed=1)
    assert a.status == OK, a.message
    plane = a.target_planes[0]
    assert plane["kind"] == "virtual_impactor" and plane["method"] == "lov"
    r = _radius(plane["points_km"])
    assert np.any(r < plane["b_impact_km"]) and np.any(r > plane["b_impact_km"])
    assert plane["vi_xi_km"] is not None
    check = _radius(plane["check_points_km"])
    assert plane["n_check_samples"] == len(check) == a.cross_check["n_samples"]
    inside = int(np.sum(check < plane["b_impact_km"]))
    counted = round(a.cross_check["cumulative_ip"] * len(check))
    # one capture radius (at the VI's v∞) for a cloud whose v∞ varies: a few samples near the
    # rim fall on the other side of it than their own focused radius puts them
    assert 0 < counted < len(check) and abs(inside - counted) <= 0.06 * len(check)


@pytest.mark.slow
def test_apophis_2029_close_approach_plane():
    """Apophis, 2029-04-13: no virtual impactor, a close-approach plane; the LOV points lie
    outside the capture disc around the nominal, whose b obeys b = q √(1 + 2μ/(q v∞²)) with q
    the nominal's closest distance."""
    batch = io.read(DEMO / "99942_Apophis.obs80").batch
    sol = fit_orbit(batch, "99942", nongrav="a2", close_approach_years=None)
    assert sol.ok, sol.message
    a = monitor_solution(sol, batch=batch, years=9.0, n_samples=21, bodies=("earth",),
                         cross_check=False)
    assert a.status == OK, a.message
    (plane,) = [p for p in a.target_planes if p["date_utc"].startswith("2029-04-13")]
    assert plane["kind"] == "close_approach" and plane["ip"] is None
    assert plane["vi_xi_km"] is None and plane["n_impacting"] == 0
    assert plane["n_samples"] == 21 == len(plane["points_km"])
    r = _radius(plane["points_km"])
    assert np.all(r > 3 * plane["b_impact_km"])
    (ca,) = [c for c in a.close_approaches if c["date_utc"].startswith("2029-04-13")]
    q, v_inf = ca["dist_km"], plane["v_inf_km_s"]
    b_nominal = math.hypot(plane["nominal_xi_km"], plane["nominal_zeta_km"])
    assert b_nominal == pytest.approx(q * math.sqrt(1 + 2 * GM_KM3_S2["earth"] / (q * v_inf**2)),
                                      abs=0.2)
    assert np.max(np.abs(r - b_nominal)) < 1000.0  # a well-determined orbit: a short LOV


def test_planes_are_stored_and_old_results_still_load(catalog_engine, tc3, tc3_mc):
    """The planes go into the stored ``result`` and come back equal; an assessment stored
    before they existed (no key, or null) loads with an empty list."""
    ingest.ingest(catalog_engine, DEMO / "2008_TC3.obs80", "2008_TC3.obs80")
    batch, ids = solutions.observations_with_ids(catalog_engine, "2008 TC3")
    sol = fit_orbit(batch, "2008 TC3", close_approach_years=None)
    solution_id = solutions.store_solution(catalog_engine, queries.resolve(catalog_engine,
                                                                           "2008 TC3"), sol, ids)
    a = dataclasses.replace(tc3_mc, observation_set_hash="")
    assessments.store_assessment(catalog_engine, solution_id, a)
    got = assessments.latest_assessment(catalog_engine, "2008 TC3")
    assert got["target_planes"] == tc3_mc.target_planes
    assert assessments.assessment_from_dict(got).target_planes == tc3_mc.target_planes
    old = {k: v for k, v in got.items() if k != "target_planes"}
    assert assessments.assessment_from_dict(old).target_planes == []
    assert assessments.assessment_from_dict({**old, "target_planes": None}).target_planes == []
