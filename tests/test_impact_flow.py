"""The Prefect impact-monitoring flow, embedded, over a small real catalog (2024 BX1 fitted by the
orbit flow on a 1-worker LocalCluster).

The last test runs the real monitor (short horizon, few samples) end to end. The others replace
it by a deterministic fake: the flow calls ``neodefense.impacts.monitor.monitor_solution`` in its
own process with the Dask client passed in, so ``monkeypatch`` reaches it. What is checked is
the glue: the solution and observations handed over, the settings, storage as versions, nothing
to do on a second run, a crash inside the monitor and an assessment the catalog refuses stored
as 'failed'.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from neodefense.catalog import assessments, db, ingest, queries, solutions
from neodefense.impacts.assessment import FAILED, OK, ImpactAssessment, VirtualImpactor

OBSERVATIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"


def _settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path.as_posix()}"\n[catalog]\nurl = ""\n'
                    '[dask]\naddress = ""\nn_workers = 1\nthreads_per_worker = 1\n')
    return path


class FakeMonitor:
    """Stands in for monitor_solution: one Earth virtual impactor whose IP depends only on the
    solution's state; records every call."""

    def __init__(self, error: Exception | None = None, ip: float = 1.5e-5) -> None:
        self.calls: list[dict] = []
        self.error = error
        self.ip = ip

    def __call__(self, solution, **kwargs) -> ImpactAssessment:  # noqa: ANN001, ANN003
        self.calls.append({"solution": solution, **kwargs})
        if self.error is not None:
            raise self.error
        ip = self.ip * (1.0 + abs(float(solution.state_icrf_au[0])))
        vi = VirtualImpactor(body="earth", time_tdb_jd=solution.epoch_tdb_jd + 365.25 * 40,
                             date_utc="2064-01-21.0", ip=ip, palermo=-4.5, method=kwargs["method"])
        return ImpactAssessment(
            designation=solution.designation, status=OK, method=kwargs["method"],
            n_samples=kwargs["n_samples"] or 0, seed=kwargs["seed"], years=kwargs["years"],
            bodies=kwargs["bodies"], cumulative_ip=ip, palermo_cum=-4.5, palermo_max=-4.5,
            virtual_impactors=[vi], runtime_s=0.01,
            solution_epoch_tdb_jd=solution.epoch_tdb_jd,
            observation_set_hash=solution.observation_set_hash,
            solution_code_version=solution.code_version)


def _use_monitor(monkeypatch: pytest.MonkeyPatch, monitor: Callable) -> None:
    """Make ``neodefense.impacts.monitor.monitor_solution`` be ``monitor`` for this test."""
    monkeypatch.setattr("neodefense.impacts.monitor.monitor_solution", monitor)


def _refit(engine, designation: str) -> int:  # noqa: ANN001
    """A new converged solution of the object (its current one, nudged): its orbit changed."""
    current = solutions.latest_solution(engine, designation)
    solution = solutions.load_solution(engine, current["id"])
    solution.state_icrf_au = solution.state_icrf_au * (1 + 1e-9)
    _, ids = solutions.observations_with_ids(engine, designation)
    return solutions.store_solution(engine, current["object_id"], solution, ids)


@pytest.mark.usefixtures("prefect_embedded")
def test_flow_monitors_changed_solutions_only(tmp_path: Path, monkeypatch):
    from distributed import Client

    from flows.impact_monitoring import monitor_changed_objects
    from flows.orbits import fit_changed_objects

    settings = str(_settings_file(tmp_path))
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    engine = db.connect(url)
    try:
        ingest.ingest(engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80")
        [fit] = fit_changed_objects(catalog_url=url, config_path=settings)
        assert fit["status"] == "converged"
        fake = FakeMonitor()
        _use_monitor(monkeypatch, fake)

        [summary] = monitor_changed_objects(catalog_url=url, years=50.0, seed=7,
                                            config_path=settings)
        [call] = fake.calls
        # the stored solution and its 328 observations, the settings ([monitoring] + overrides)
        assert call["solution"].status == "converged"
        assert call["solution"].observation_set_hash == fit["observation_set_hash"]
        assert len(call["batch"]) == 328 and isinstance(call["client"], Client)
        assert (call["method"], call["years"], call["n_samples"], call["bodies"],
                call["seed"], call["entry_altitude_km"]) == (
            "lov", 50.0, None, ("earth", "moon"), 7, 100.0)
        stored = assessments.latest_assessment(engine, "2024 BX1")
        assert (summary["designation"], summary["status"], summary["n_vi"]) == (
            "2024 BX1", OK, 1)
        assert (stored["id"], stored["version"], stored["solution_id"]) == (
            summary["assessment_id"], 1, fit["solution_id"])
        assert stored["cumulative_ip"] == summary["cumulative_ip"] > 0
        assert (stored["years"], stored["seed"], stored["palermo_cum"]) == (50.0, 7, -4.5)
        assert stored["virtual_impactors"][0]["ip"] == summary["cumulative_ip"]
        assert stored["first_year"] == 2064

        # nothing changed: nothing to do, the monitor is not called
        assert monitor_changed_objects(catalog_url=url, config_path=settings) == []
        assert len(fake.calls) == 1

        # a new orbit, and the monitor crashes on it: stored as failed, the old one stays current
        new_solution = _refit(engine, "2024 BX1")
        crash = FakeMonitor(error=MemoryError("out of memory in the b-plane"))
        _use_monitor(monkeypatch, crash)
        [failed] = monitor_changed_objects(catalog_url=url, config_path=settings)
        assert crash.calls[0]["solution"].state_icrf_au[0] == pytest.approx(
            call["solution"].state_icrf_au[0], rel=1e-8)
        assert (failed["status"], failed["solution_id"]) == (FAILED, new_solution)
        assert failed["message"] == "monitor: MemoryError: out of memory in the b-plane"
        history = assessments.assessment_history(engine, "2024 BX1")
        assert [(h["version"], h["status"], h["solution_id"], h["is_current"])
                for h in history] == [(1, OK, fit["solution_id"], True),
                                      (2, FAILED, new_solution, False)]
        assert history[1]["message"] == failed["message"] and history[1]["years"] == 100.0
        assert assessments.latest_assessment(engine, "2024 BX1")["id"] == stored["id"]
        assert monitor_changed_objects(catalog_url=url, config_path=settings) == []
        assert assessments.solutions_to_monitor(engine) == []
    finally:
        engine.dispose()


def test_an_assessment_the_catalog_refuses_is_stored_as_failed(tmp_path: Path, monkeypatch):
    """The per-object step without Prefect or Dask: an assessment whose virtual impactor has no
    impact probability is refused by the catalog; a 'failed' one naming the error takes its
    place, and an object merged away meanwhile is skipped."""
    from flows.impact_monitoring import monitor_one, monitoring_options
    from neodefense import config
    from neodefense.orbits.solution import CONVERGED, OrbitSolution

    engine = db.connect(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    try:
        ingest.ingest(engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80")
        object_id = queries.resolve(engine, "2024 BX1")
        _, ids = solutions.observations_with_ids(engine, object_id)
        solution_id = solutions.store_solution(engine, object_id, OrbitSolution(
            designation="2024 BX1", status=CONVERGED, epoch_tdb_jd=2460330.5,
            state_icrf_au=np.array([-0.46, 0.87, 0.38, -0.017, -0.007, -0.004])), ids)
        options = monitoring_options(config.load(), n_samples=500)
        _use_monitor(monkeypatch, FakeMonitor(ip=float("nan")))

        summary = monitor_one(engine, None, object_id, "2024 BX1", solution_id, options)

        assert summary["status"] == FAILED
        assert summary["message"].startswith("store: IntegrityError")
        stored = assessments.assessment_by_id(engine, summary["assessment_id"])
        assert (stored["status"], stored["n_samples"], stored["method"], stored["n_vi"]) == (
            FAILED, 500, "lov", 0)
        assert monitor_one(engine, None, object_id, "2024 BX1", solution_id + 99, options) is None
    finally:
        engine.dispose()


@pytest.mark.usefixtures("prefect_embedded")
def test_flow_with_the_real_monitor_stores_the_bx1_impact(tmp_path: Path):
    """2024 BX1 fitted from its observations and monitored by the real monitor through the
    flow (1 Dask worker): the stored assessment has the certain impact with its entry point."""
    from flows.impact_monitoring import monitor_changed_objects
    from neodefense.orbits.fit import fit_orbit

    settings = str(_settings_file(tmp_path))
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    engine = db.connect(url)
    try:
        ingest.ingest(engine, OBSERVATIONS / "2024_BX1.obs80", "bx1.obs80")
        object_id = queries.resolve(engine, "2024 BX1")
        batch, ids = solutions.observations_with_ids(engine, object_id)
        solution = fit_orbit(batch, "2024 BX1", close_approach_years=None)
        solution_id = solutions.store_solution(engine, object_id, solution, ids)
        [summary] = monitor_changed_objects(catalog_url=url, years=0.01, n_samples=11,
                                            bodies=["earth"], config_path=settings)
        assert summary["status"] == OK and summary["solution_id"] == solution_id
        stored = assessments.latest_assessment(engine, "2024 BX1")
        assert stored["cumulative_ip"] > 0.99 and stored["n_vi"] == 1
        vi = stored["virtual_impactors"][0]
        assert vi["date_utc"].startswith("2024-01-21T00:3")
        assert vi["entry"]["alt_km"] == 100.0 and 52.0 < vi["entry"]["lat_deg"] < 53.0
        assert stored["observation_set_hash"] == solution.observation_set_hash
        assert stored["cross_check"]["cumulative_ip"] == 1.0
        # the alert rules ran in the transaction that stored it: on the risk list, imminent
        from neodefense.catalog import alerts
        from neodefense.provenance import reproduce

        (row,) = alerts.risk_list(engine)
        assert row["assessment_id"] == stored["id"] and row["solution_id"] == solution_id
        (alert,) = alerts.alerts(engine)
        assert alert["kinds"][0] == "new_object" and "imminent" in alert["kinds"]
        assert alert["payload"]["imminent"]["entry"]["time_utc"].startswith("2024-01-21T00:3")
        # the same solution, observations, settings and code give the same result (here
        # without Dask: the flow ran on a worker)
        again = reproduce(engine, stored["id"])
        assert again["identical"], again["differences"]
        assert again["stored"]["n_samples"] == 11 and len(again["recomputed"]
                                                           ["virtual_impactors"]) == 1
    finally:
        engine.dispose()
