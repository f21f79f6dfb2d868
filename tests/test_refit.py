"""Re-fits that keep chosen observations out (neodefense.refit) on 2008 TC3's real observations,
and the orbit flow carrying those exclusions forward when new observations arrive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neodefense.catalog import db, ingest, queries, solutions
from neodefense.orbits.fit import fit_orbit
from neodefense.refit import refit

TC3 = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo" / "2008_TC3.obs80"


def _first_fit(engine, designation: str = "2008 TC3") -> int:  # noqa: ANN001
    """The object's first solution, fitted here as the orbit flow would (no exclusions)."""
    object_id = queries.resolve(engine, designation)
    batch, ids = solutions.observations_with_ids(engine, object_id)
    solution = fit_orbit(batch, designation, close_approach_years=None)
    assert solution.status == "converged", solution.message
    return solutions.store_solution(engine, object_id, solution, ids,
                                    {"nongrav": "none", "exclude": [], "requested_by": "test"})


@pytest.fixture(scope="module")
def tc3_catalog(tmp_path_factory: pytest.TempPathFactory):
    engine = db.connect(f"sqlite:///{tmp_path_factory.mktemp('refit') / 'catalog.sqlite'}")
    ingest.ingest(engine, TC3, "2008_TC3.obs80", "MPC")
    _first_fit(engine)
    yield engine
    engine.dispose()


def test_refit_excludes_observations_as_a_new_version(tc3_catalog) -> None:
    engine = tc3_catalog
    first = solutions.latest_solution(engine, "2008 TC3", residuals=True)
    used = [r["observation_id"] for r in first["residuals"] if r["used"]]
    exclude = [used[0], used[10], used[100], used[-1]]  # first and last: the arc ends too

    out = refit(engine, "2008 TC3", exclude, requested_by="scientist:alice")

    assert out["status"] == "converged", out["message"]
    assert (out["version"], out["exclude"], out["nongrav"]) == (
        first["version"] + 1, sorted(exclude), "none")
    # every observation is either used, rejected as an outlier or excluded by hand
    assert out["n_obs"] == first["n_obs"] == 883
    assert out["n_used"] == out["n_obs"] - out["n_rejected"] - len(exclude)
    assert out["n_used"] <= first["n_used"] - len(exclude)
    assert "4 excluded on request" in out["message"]
    history = solutions.solution_history(engine, "2008 TC3")
    assert [h["version"] for h in history] == [1, 2]  # the old version is kept
    assert history[0]["id"] == first["id"] and history[0]["n_used"] == first["n_used"]
    assert history[1]["supersedes"] == first["id"]
    assert history[1]["settings"] == {"nongrav": "none", "exclude": sorted(exclude),
                                      "epoch_tdb_jd": None, "requested_by": "scientist:alice"}
    new = solutions.latest_solution(engine, "2008 TC3", residuals=True)
    assert new["id"] == out["solution_id"]
    rows = {r["observation_id"]: r for r in new["residuals"]}
    assert len(rows) == len(first["residuals"])  # every observation keeps a residual row
    for oid in exclude:
        assert not rows[oid]["used"] and not rows[oid]["rejected"]
        assert np.isfinite(rows[oid]["ra_arcsec"])  # still computed, just not fitted
    assert sum(r["used"] for r in rows.values()) == out["n_used"]
    # the fitted set is unchanged: no new work for the orbit flow
    assert solutions.objects_to_fit(engine) == []
    assert new["observation_set_hash"] == first["observation_set_hash"]
    # the orbit barely moves without 4 good observations out of 865
    assert new["elements"]["a_au"] == pytest.approx(first["elements"]["a_au"], rel=1e-4)

    # re-including everything is a re-fit with no exclusions: a third version
    again = refit(engine, "2008 TC3", [], requested_by="scientist:alice")
    assert (again["version"], again["n_used"], again["exclude"]) == (3, first["n_used"], [])
    assert solutions.exclusions_to_carry(engine, first["object_id"],
                                         list(rows)) == []


def test_refit_refuses_unknown_observations_and_objects(tc3_catalog) -> None:
    n_versions = len(solutions.solution_history(tc3_catalog, "2008 TC3"))
    with pytest.raises(ValueError, match="not current observations"):
        refit(tc3_catalog, "2008 TC3", [10**9], requested_by="x")
    with pytest.raises(ValueError, match="nongrav"):
        refit(tc3_catalog, "2008 TC3", [], requested_by="x", nongrav="warp")
    with pytest.raises(queries.UnknownDesignation):
        refit(tc3_catalog, "2099 ZZ999", [], requested_by="x")
    assert len(solutions.solution_history(tc3_catalog, "2008 TC3")) == n_versions


def test_exclusions_to_carry_and_id_lines(tc3_catalog) -> None:
    object_id = queries.resolve(tc3_catalog, "2008 TC3")
    batch, ids = solutions.observations_with_ids(tc3_catalog, object_id)
    relabelled = solutions.batch_with_id_lines(batch, ids)
    assert relabelled["line"].tolist() == ids.tolist()
    assert relabelled["ra"] is batch["ra"]  # the other columns are shared, not copied
    with pytest.raises(ValueError):
        solutions.batch_with_id_lines(batch, ids[:-1])
    refit(tc3_catalog, "2008 TC3", [int(ids[5]), int(ids[6])], requested_by="x")
    # ids still observed are carried; one gone since (not in the given set) is dropped
    assert solutions.exclusions_to_carry(tc3_catalog, object_id, ids) == [int(ids[5]),
                                                                         int(ids[6])]
    assert solutions.exclusions_to_carry(tc3_catalog, object_id, ids[6:]) == [int(ids[6])]


@pytest.mark.usefixtures("prefect_embedded")
def test_orbit_flow_keeps_the_exclusions_on_new_observations(tmp_path: Path) -> None:
    """TC3's first 400 observations fitted, 3 excluded by a re-fit; the rest arrives and the
    flow refits with those 3 still excluded (and says so in the settings)."""
    from flows.orbits import fit_changed_objects

    settings = tmp_path / "settings.toml"
    settings.write_text(f'[paths]\ndata_dir = "{tmp_path.as_posix()}"\n[catalog]\nurl = ""\n'
                        '[dask]\naddress = ""\nn_workers = 1\nthreads_per_worker = 1\n')
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    engine = db.connect(url)
    lines = TC3.read_text().splitlines(keepends=True)
    try:
        ingest.ingest(engine, "".join(lines[:400]).encode(), "tc3-first.obs80")
        _first_fit(engine)
        first = solutions.latest_solution(engine, "2008 TC3", residuals=True)
        exclude = [r["observation_id"] for r in first["residuals"] if r["used"]][20:23]
        excluded = refit(engine, "2008 TC3", exclude, requested_by="scientist:bob")
        assert excluded["n_used"] == first["n_used"] - 3

        ingest.ingest(engine, "".join(lines[400:]).encode(), "tc3-rest.obs80")
        [summary] = fit_changed_objects(catalog_url=url, config_path=str(settings))

        assert (summary["status"], summary["n_obs"]) == ("converged", 883)
        latest = solutions.latest_solution(engine, "2008 TC3", residuals=True)
        assert latest["version"] == 3
        assert latest["settings"]["exclude"] == sorted(exclude)
        assert latest["settings"]["requested_by"] == "flow fit-changed-objects"
        rows = {r["observation_id"]: r for r in latest["residuals"]}
        assert len(rows) == 883
        assert all(not rows[oid]["used"] and not rows[oid]["rejected"] for oid in exclude)
        assert latest["n_used"] == sum(r["used"] for r in rows.values())
        assert latest["n_used"] == 883 - latest["n_rejected"] - 3
        assert "3 excluded on request" in latest["message"]
        assert fit_changed_objects(catalog_url=url, config_path=str(settings)) == []
    finally:
        engine.dispose()
