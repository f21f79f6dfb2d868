"""The pipeline flow (flows/pipeline.py) on embedded Prefect with a LocalCluster, its deployments
(flows/deploy.py, prefect.yaml), the stale-assessment query behind the nightly ``scope="all"``,
and the Prefect event the API emits for an accepted submission.

End to end on a small real case: a quarter of 2024 BX1's observations (every 4th line of the
bundled file, discovery to impact) dropped into the inbox, ingested, fitted, monitored (short
horizon, few samples: the ``monitoring`` overrides) and its alerts delivered to a real webhook
receiver; a second run with nothing new does nothing and starts no Dask cluster; an assessment
made by another code version is re-monitored by ``scope="all"`` only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from alert_receivers import WebhookReceiver

from neodefense import compute, config
from neodefense.catalog import alerts, assessments, db, ingest, models, queries, solutions
from neodefense.impacts.assessment import FAILED, OK, ImpactAssessment
from neodefense.orbits.solution import CONVERGED, OrbitSolution, code_version

ROOT = Path(__file__).resolve().parents[1]
BX1 = ROOT / "src" / "neodefense" / "data" / "demo" / "2024_BX1.obs80"
#: monitoring overrides of the end-to-end runs: days, not a century; a handful of LOV samples
SMALL = {"years": 0.01, "n_samples": 11, "bodies": ["earth"], "cross_check_samples": 0}


def _settings_file(tmp_path: Path) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path.as_posix()}"\n[catalog]\nurl = ""\n'
                    '[dask]\naddress = ""\nn_workers = 1\nthreads_per_worker = 1\n')
    return str(path)


def bx1_subset() -> str:
    """Every 4th line of the bundled 2024 BX1 file: 82 real observations over the whole arc."""
    return "".join(BX1.read_text().splitlines(keepends=True)[::4])


@contextlib.contextmanager
def _no_heartbeats() -> Iterator[None]:
    """Flow runs without the heartbeat thread (each sync flow run otherwise waits up to ~1 s
    for it to stop; STACK-NOTES)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


class _CountingLocalCluster:
    """Wraps ``neodefense.compute.LocalCluster`` to count the clusters started."""

    def __init__(self, real: type) -> None:
        self.real = real
        self.started = 0

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        self.started += 1
        return self.real(*args, **kwargs)


# -- the pipeline end to end ---------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_embedded")
def test_pipeline_ingests_fits_monitors_and_delivers_once(tmp_path: Path, monkeypatch):
    from flows.pipeline import pipeline

    settings = _settings_file(tmp_path)
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    (tmp_path / "inbox" / "G96").mkdir(parents=True)
    (tmp_path / "inbox" / "G96" / "bx1.obs80").write_text(bx1_subset())
    clusters = _CountingLocalCluster(compute.LocalCluster)
    monkeypatch.setattr(compute, "LocalCluster", clusters)
    engine = db.connect(url)
    try:
        with WebhookReceiver() as hook, _no_heartbeats():
            alerts.add_subscriber(engine, "agency", {}, [{"kind": "webhook", "target": hook.url}])

            first = pipeline(config_path=settings, monitoring=SMALL)

            [receipt] = first["receipts"]
            assert (receipt["file"], receipt["accepted"], receipt["rejected"]) == (
                "bx1.obs80", 82, [])
            [fit] = first["fits"]
            assert (fit["designation"], fit["status"], fit["n_obs"]) == ("2024 BX1", CONVERGED, 82)
            [assessed] = first["assessments"]
            assert (assessed["status"], assessed["solution_id"], assessed["n_vi"]) == (
                OK, fit["solution_id"], 1)
            assert assessed["cumulative_ip"] > 0.99  # it hit the Earth on 2024-01-21
            stored = assessments.latest_assessment(engine, "2024 BX1")
            assert stored["id"] == assessed["assessment_id"]
            assert (stored["years"], stored["n_samples"], stored["bodies"]) == (0.01, 11, ["earth"])
            delivery = first["delivery"]
            assert delivery["sent"] == delivery["delivered"] >= 1 and delivery["failed"] == 0
            hook.wait_for(delivery["delivered"])
            bodies = [json.loads(r.body) for r in hook.requests]
            assert len(bodies) == delivery["delivered"]
            assert all("2024 BX1" in json.dumps(b) for b in bodies)
            assert set(first["timings_s"]) == {"ingest", "fit", "monitor", "deliver", "total"}
            assert clusters.started == 1  # one LocalCluster shared by the fit and monitor stages
            assert not any((tmp_path / "inbox" / "G96").iterdir())  # the file was settled

            # nothing new, even for the nightly scope: nothing done, no cluster, no alert
            second = pipeline(config_path=settings, scope="all", monitoring=SMALL)
            assert (second["receipts"], second["fits"], second["assessments"]) == ([], [], [])
            assert second["delivery"]["sent"] == 0 and len(hook.requests) == len(bodies)
            assert clusters.started == 1

            # an assessment made by another code version: stale for the nightly run only
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE impact_assessments SET code_version = :v WHERE id = :i"),
                             {"v": "neodefense 0.0.1", "i": stored["id"]})
            assert assessments.solutions_to_monitor(engine) == []
            third = pipeline(config_path=settings, ingest=False, scope="all", monitoring=SMALL)
            assert third["receipts"] == [] and third["fits"] == []
            [again] = third["assessments"]
            assert (again["status"], again["solution_id"]) == (OK, fit["solution_id"])
            assert "ingest" not in third["timings_s"]
            history = assessments.assessment_history(engine, "2024 BX1")
            assert [(h["version"], h["code_version"], h["is_current"]) for h in history] == [
                (1, "neodefense 0.0.1", False), (2, code_version(), True)]
            assert clusters.started == 2
    finally:
        engine.dispose()


def test_pipeline_parameters_are_checked_before_anything_runs():
    from flows.pipeline import pipeline

    with pytest.raises(ValueError, match="scope"):
        pipeline.fn(scope="everything")
    with pytest.raises(ValueError, match="unknown monitoring setting"):
        pipeline.fn(monitoring={"yeras": 1.0})


@pytest.mark.usefixtures("prefect_embedded")
def test_the_flow_task_runner_and_the_stage_clients_share_one_cluster(tmp_path: Path):
    """Inside :func:`compute.shared_cluster` a task submitted to the pipeline's task runner and
    a stage's :func:`compute.client` run on the same (one-worker) LocalCluster."""
    from prefect import flow, task

    from flows.pipeline import SharedClusterTaskRunner

    @task
    def where() -> str:
        from distributed import get_worker

        return get_worker().address

    @flow(task_runner=SharedClusterTaskRunner())
    def probe(config_path: str) -> tuple[str, list[str], str]:
        settings = config.load(config_path)
        with compute.shared_cluster(settings) as cluster, compute.client(settings) as client:
            workers = sorted(client.scheduler_info()["workers"])
            worker = where.submit().result()
            return worker, workers, cluster.address

    with _no_heartbeats():
        worker, workers, _ = probe(_settings_file(tmp_path))
    assert len(workers) == 1 and worker == workers[0]


# -- stale assessments (the nightly scope) ---------------------------------------------------------

def _assessment(solution_id: int, engine: sa.Engine, settings: dict, *, status: str = OK,
                version: str | None = None) -> int:
    solution = solutions.load_solution(engine, solution_id)
    assessment = ImpactAssessment(
        designation="2024 BX1", status=status, method=settings["method"],
        years=settings["years"], bodies=tuple(settings["bodies"]), seed=settings["seed"],
        settings=settings, solution_epoch_tdb_jd=solution.epoch_tdb_jd,
        observation_set_hash=solution.observation_set_hash)
    if version is not None:
        assessment.code_version = version
    return assessments.store_assessment(engine, solution_id, assessment)


def test_stale_solutions(catalog_engine: sa.Engine):
    from flows.impact_monitoring import monitor_settings, monitoring_options

    engine = catalog_engine
    ingest.ingest(engine, BX1, "bx1.obs80")
    object_id = queries.resolve(engine, "2024 BX1")
    _, ids = solutions.observations_with_ids(engine, object_id)

    def solve(x_au: float) -> int:
        return solutions.store_solution(engine, object_id, OrbitSolution(
            designation="2024 BX1", status=CONVERGED, epoch_tdb_jd=2460330.5,
            state_icrf_au=np.array([x_au, 0.87, 0.38, -0.017, -0.007, -0.004])), ids)

    now = code_version()
    nightly = monitor_settings(monitoring_options(config.load()))
    short = monitor_settings(monitoring_options(config.load(), **SMALL))
    assert short["years"] == 0.01 and short["cross_check"] is False
    due = [(object_id, "2024 BX1", solve(-0.46))]
    first = due[0][2]

    assert assessments.stale_solutions(engine, now, nightly) == []  # not assessed: "changed"
    _assessment(first, engine, nightly)
    assert assessments.solutions_to_monitor(engine) == []
    assert assessments.stale_solutions(engine, now, nightly) == []
    assert assessments.stale_solutions(engine, now, short) == due  # other settings
    assert assessments.stale_solutions(engine, "neodefense 9.9", nightly) == due  # other code
    # a run with the new settings that failed is not repeated every night (but would be
    # after an upgrade); the current assessment stays the old one
    _assessment(first, engine, short, status=FAILED)
    assert assessments.stale_solutions(engine, now, short) == []
    assert assessments.stale_solutions(engine, "neodefense 9.9", short) == due
    assert assessments.latest_assessment(engine, object_id)["settings"] == nightly
    # assessed before settings were recorded: stale whatever the settings asked for
    _assessment(first, engine, {**nightly, "years": 50.0}, version=now)
    table = models.ImpactAssessmentRecord.__table__
    with engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.version == 3)
                     .values(result={"cross_check": None}))
    assert assessments.stale_solutions(engine, now, nightly) == due
    # a new orbit is the changed scope's, not a stale one
    second = solve(-0.4600001)
    assert assessments.stale_solutions(engine, now, nightly) == []
    assert assessments.solutions_to_monitor(engine) == [(object_id, "2024 BX1", second)]


# -- deployments -----------------------------------------------------------------------------------

def test_deployments_schedules_and_submission_trigger():
    """Built without a server; prefect.yaml declares the same four deployments."""
    from prefect.events import DeploymentEventTrigger

    from flows import deploy

    built = {d.name: d for d in deploy.build_deployments()}
    assert set(built) == {"pipeline-hourly", "pipeline-nightly", "pipeline-on-submission",
                          "deliver-alerts"}

    def schedule(d) -> tuple:  # noqa: ANN001
        [s] = d.schedules
        s = s.schedule
        return (getattr(s, "cron", None), getattr(s, "interval", None), s.timezone)

    assert schedule(built["pipeline-hourly"])[::2] == ("0 * * * *", "UTC")
    assert schedule(built["pipeline-nightly"])[::2] == ("30 2 * * *", "UTC")
    assert schedule(built["deliver-alerts"])[1].total_seconds() == 60
    assert built["pipeline-on-submission"].schedules == []
    assert {n: d.parameters for n, d in built.items()} == {
        "pipeline-hourly": {"scope": "changed"}, "pipeline-nightly": {"scope": "all"},
        "pipeline-on-submission": {"scope": "changed"}, "deliver-alerts": {}}
    assert {n: d.entrypoint for n, d in built.items()} == {
        "pipeline-hourly": "flows.pipeline.pipeline", "pipeline-nightly": "flows.pipeline.pipeline",
        "pipeline-on-submission": "flows.pipeline.pipeline",
        "deliver-alerts": "flows.alerts.deliver_alerts"}
    for name in ("pipeline-hourly", "pipeline-nightly", "deliver-alerts"):
        assert built[name].triggers == []
    [trigger] = built["pipeline-on-submission"].triggers
    assert trigger.expect == {"neodefense.submission.received"}
    assert trigger.match.root == {"prefect.resource.id": "neodefense.submission.*"}
    assert (trigger.posture, trigger.threshold) == ("Reactive", 1)

    declared = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())[
        "deployments"]}
    assert set(declared) == set(built)
    for name, d in declared.items():
        assert d["entrypoint"].replace(".py:", ".").replace("/", ".") == built[name].entrypoint
        assert d.get("parameters", {}) == built[name].parameters
        assert d["work_pool"]["name"] == "neodefense"
        if built[name].schedules:
            [s] = d["schedules"]
            cron, interval, tz = schedule(built[name])
            assert (s.get("cron"), s["timezone"]) == (cron, tz)
            if interval is not None:
                assert s["interval"] == interval.total_seconds()
        else:
            assert "schedules" not in d
        assert (d.get("concurrency_limit") or {}).get("limit") == built[name].concurrency_limit
    [yaml_trigger] = declared["pipeline-on-submission"]["triggers"]
    parsed = DeploymentEventTrigger.model_validate(yaml_trigger)
    assert parsed.model_dump() == trigger.model_dump()


# -- the API's event ------------------------------------------------------------------------------

def test_an_accepted_submission_emits_the_prefect_event(tmp_path: Path):
    """With a Prefect API configured, a submission that added observations is announced by a
    POST to its events endpoint (a real loopback receiver stands in for the server); a
    duplicate is not; a Prefect server that is down changes nothing for the observatory."""
    from fastapi.testclient import TestClient
    from test_api_submissions import Api, add_observatory, bearer, stations_of

    from neodefense.api import create_app
    from neodefense.catalog import access

    data = bx1_subset().encode()
    more = "".join(BX1.read_text().splitlines(keepends=True)[1::4]).encode()
    engine = db.connect(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    try:
        with WebhookReceiver(path="/api") as prefect_api:
            settings = config.load().with_overrides(paths={"data_dir": str(tmp_path)},
                                                    prefect={"api_url": prefect_api.url})
            admin = bearer(access.bootstrap_admin(engine, "test admin"))
            with TestClient(create_app(settings, engine=engine)) as client:
                _, token = add_observatory(Api(client, engine, admin), "Sonneberg",
                                           stations_of(data + more))
                headers = {**token, "Content-Type": "text/plain"}
                answer = client.post("/v1/submissions", content=data, headers=headers,
                                     params={"filename": "bx1.obs80"})
                assert answer.status_code == 201, answer.text
                submission_id = answer.json()["submission_id"]
                [request] = prefect_api.wait_for(1)
                assert (request.method, request.path) == ("POST", "/api/events")
                [event] = json.loads(request.body)
                assert event["event"] == "neodefense.submission.received"
                assert event["resource"] == {
                    "prefect.resource.id": f"neodefense.submission.{submission_id}",
                    "prefect.resource.name": "bx1.obs80"}
                assert (event["payload"]["accepted"], event["payload"]["submitter"]) == (
                    82, "Sonneberg")

                again = client.post("/v1/submissions", content=data, headers=headers)
                assert again.status_code == 201 and again.json()["status"] == "duplicate"
                prefect_api.down()
                late = client.post("/v1/submissions", content=more, headers=headers)
                assert late.status_code == 201 and late.json()["accepted"] == 82
                assert len(prefect_api.requests) == 1
    finally:
        engine.dispose()
