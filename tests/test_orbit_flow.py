"""The Prefect orbit flow, embedded, over a small real catalog, fits on a 2-worker LocalCluster.

First run fits every object; a second run fits nothing (observation sets unchanged); new
observations of one object refit only that one. The Dask fits are bitwise identical to a fit
in this process (STACK-NOTES: two workers give results identical to serial).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neodefense.catalog import db, ingest, solutions

OBSERVATIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"


pytestmark = pytest.mark.usefixtures("prefect_embedded")


def _settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path.as_posix()}"\n[catalog]\nurl = ""\n'
                    '[dask]\naddress = ""\nn_workers = 2\nthreads_per_worker = 1\n')
    return path


def test_flow_fits_changed_objects_only(tmp_path: Path):
    from flows.orbits import fit_changed_objects
    from neodefense.compute import prepare_process
    from neodefense.orbits.fit import fit_orbit

    settings = str(_settings_file(tmp_path))
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    engine = db.connect(url)
    tc3 = (OBSERVATIONS / "2008_TC3.obs80").read_text().splitlines(keepends=True)
    try:
        ingest.ingest(engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80")
        ingest.ingest(engine, "".join(tc3[:400]).encode(), "tc3-first.obs80")

        first = fit_changed_objects(catalog_url=url, config_path=settings)
        by_name = {s["designation"]: s for s in first}
        assert set(by_name) == {"2024 BX1", "2008 TC3"}
        assert all(s["status"] == "converged" for s in first)
        assert (by_name["2024 BX1"]["n_obs"], by_name["2008 TC3"]["n_obs"]) == (328, 400)
        for name, summary in by_name.items():
            stored = solutions.latest_solution(engine, name)
            assert stored["id"] == summary["solution_id"] and stored["version"] == 1
            assert stored["observation_set_hash"] == summary["observation_set_hash"]
            assert stored["settings"]["requested_by"] == "flow fit-changed-objects"
        # a worker's fit is the same, bit for bit, as one in this process
        prepare_process()
        batch, _ = solutions.observations_with_ids(engine, "2024 BX1")
        here = fit_orbit(batch, "2024 BX1")
        stored = solutions.latest_solution(engine, "2024 BX1")
        assert stored["state_icrf_au"] == here.state_icrf_au.tolist()

        assert fit_changed_objects(catalog_url=url, config_path=settings) == []

        receipt = ingest.ingest(engine, "".join(tc3[400:]).encode(), "tc3-rest.obs80")
        assert receipt.accepted == 883 - 400
        [again] = fit_changed_objects(catalog_url=url, config_path=settings)
        assert (again["designation"], again["status"], again["n_obs"]) == (
            "2008 TC3", "converged", 883)
        history = solutions.solution_history(engine, "2008 TC3")
        assert [(h["version"], h["supersedes"]) for h in history] == [
            (1, None), (2, history[0]["id"])]
        assert len(solutions.solution_history(engine, "2024 BX1")) == 1
        # more data, a tighter orbit: the semi-major axis σ shrinks with the full arc
        assert history[1]["sigmas"]["a_au"] < history[0]["sigmas"]["a_au"]
        assert solutions.objects_to_fit(engine) == []
    finally:
        engine.dispose()


def _raise_value_error(batch, designation):  # noqa: ANN001 - stands in for a fit that crashes
    raise ValueError(f"no luck with {designation}")


def test_a_crashed_fit_task_is_recorded_as_failed():
    """A task that raises on its worker (a bug, a killed worker) becomes a 'failed' solution
    naming the error, so the flow stores it and goes on with the other objects."""
    from distributed import Client

    from flows.orbits import _outcome
    from neodefense.orbits.solution import FAILED

    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=None) as client:
        future = client.submit(_raise_value_error, None, "2024 BX1", pure=False)
        future.exception()  # wait for it
        solution = _outcome(future, "2024 BX1")
    assert (solution.designation, solution.status) == ("2024 BX1", FAILED)
    assert solution.message == "worker: ValueError: no luck with 2024 BX1"
