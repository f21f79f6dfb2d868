"""Production set-up on loopback (docs/deploy.md): a Prefect server on PostgreSQL, a Dask scheduler
with two workers, the catalog on PostgreSQL, and the pipeline run against them as an operator
would (``python -m flows.pipeline`` with the environment variables of the docs).

Everything is started here, in subprocesses, and removed at the end: the Prefect server
(``prefect server start``, its own PREFECT_HOME, its database a throwaway
``prefect_test_<hex>`` on the local PostgreSQL through asyncpg), ``dask scheduler`` and two
``dask worker`` processes, the catalog database ``neodefense_prod_<hex>``. Checked: the results
(a quarter of 2024 BX1's real observations ingested from the inbox, fitted, monitored, the alert
delivered to a webhook receiver), the flow run and its four subflow runs as the server recorded
them, that both Dask workers executed tasks, and that the server runs the
``pipeline-on-submission`` deployment when the API's event arrives.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alert_receivers import WebhookReceiver

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]
BX1 = ROOT / "src" / "neodefense" / "data" / "demo" / "2024_BX1.obs80"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BIN = Path(sys.executable).parent
#: How long the services may take to come up, and the pipeline to run (s).
STARTUP_TIMEOUT_S = 60.0
PIPELINE_TIMEOUT_S = 100.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _database(prefix: str) -> Iterator[str]:
    """A throwaway database on the local PostgreSQL; its name. Dropped (connections closed) at
    the end."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 10})
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class _Services:
    """Subprocesses, each in its own session (process group: a Dask nanny's worker, the Prefect
    server's children); stopped by their group ids, in reverse order of start."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(cmd, env=env, cwd=self.log_dir, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")[-4000:]

    def check_running(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def stop(self) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in reversed(self.started):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _wait(what: str, ready: Callable[[], bool], services: _Services,
          timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        services.check_running()
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.25)
    pytest.fail(f"{what} not ready after {timeout_s:.0f} s")


def _base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "NEODEFENSE_", "DASK_"))}
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}, **extra)
    return env


def _prefect_database_url(name: str, tmp_path: Path) -> str:
    if importlib.util.find_spec("asyncpg") is None:  # prefect's PostgreSQL driver
        print("asyncpg missing: the Prefect server falls back to SQLite")
        return f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def _settings_file(data_dir: Path) -> Path:
    """The operator's settings file ($NEODEFENSE_CONFIG): data directory, and a short monitoring
    horizon with few samples for the test (the catalog and Dask come from the environment)."""
    path = data_dir / "neodefense.toml"
    path.write_text(f'[paths]\ndata_dir = "{data_dir.as_posix()}"\n'
                    '[monitoring]\nyears = 0.01\nn_samples = 21\nbodies = ["earth"]\n'
                    'cross_check_samples = 0\n')
    return path


def _executed_counts(scheduler: str) -> dict[str, int]:
    from distributed import Client

    with Client(scheduler, timeout=30) as client:
        return client.run(lambda dask_worker: dask_worker.state.executed_count)


def test_pipeline_on_prefect_server_dask_cluster_and_postgresql(tmp_path: Path):
    from neodefense.catalog import alerts, db

    data_dir = tmp_path / "data"
    (data_dir / "inbox" / "G96").mkdir(parents=True)
    (data_dir / "inbox" / "G96" / "bx1.obs80").write_text(
        "".join(BX1.read_text().splitlines(keepends=True)[::4]))
    (tmp_path / "logs").mkdir()
    services = _Services(tmp_path / "logs")
    api_port, scheduler_port = _free_port(), _free_port()
    api_url = f"http://127.0.0.1:{api_port}/api"
    scheduler = f"tcp://127.0.0.1:{scheduler_port}"
    t0 = time.monotonic()
    with _database("prefect_test") as prefect_db, _database("neodefense_prod") as catalog_db, \
            WebhookReceiver() as hook:
        catalog_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{catalog_db}"
        try:
            services.start("prefect-server", [
                str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                "--port", str(api_port), "--no-ui", "--analytics-off"], _base_env(
                PREFECT_HOME=str(tmp_path / "prefect-home"),
                PREFECT_SERVER_DATABASE_CONNECTION_URL=_prefect_database_url(prefect_db,
                                                                             tmp_path)))
            services.start("dask-scheduler", [
                sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                "--port", str(scheduler_port), "--no-dashboard"], _base_env())
            for name in ("worker-1", "worker-2"):
                services.start(name, [
                    sys.executable, "-m", "dask", "worker", scheduler, "--host", "127.0.0.1",
                    "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--name", name],
                    _base_env())
            # meanwhile: the catalog (migrations run on connect) and a webhook subscriber
            engine = db.connect(catalog_url)
            try:
                alerts.add_subscriber(engine, "agency", {},
                                      [{"kind": "webhook", "target": hook.url}])
            finally:
                engine.dispose()
            _wait("Prefect server", lambda: httpx.get(f"{api_url}/health", timeout=2)
                  .status_code == 200, services)
            _wait("two Dask workers", lambda: len(_executed_counts(scheduler)) == 2, services)
            assert set(_executed_counts(scheduler).values()) == {0}
            print(f"services ready after {time.monotonic() - t0:.1f} s")

            started = time.monotonic()
            run = subprocess.run(
                [sys.executable, "-m", "flows.pipeline"], cwd=ROOT, capture_output=True,
                text=True, timeout=PIPELINE_TIMEOUT_S, env=_base_env(
                    PREFECT_API_URL=api_url, NEODEFENSE_DASK_ADDRESS=scheduler,
                    NEODEFENSE_CATALOG_URL=catalog_url,
                    NEODEFENSE_CONFIG=str(_settings_file(data_dir)),
                    PREFECT_HOME=str(tmp_path / "client-home")))
            assert run.returncode == 0, run.stderr[-4000:]
            result = json.loads(run.stdout)
            print(f"pipeline subprocess: {time.monotonic() - started:.1f} s; "
                  f"stages {result['timings_s']}")

            [receipt] = result["receipts"]
            assert (receipt["accepted"], receipt["rejected"]) == (82, [])
            [fit] = result["fits"]
            assert (fit["designation"], fit["status"]) == ("2024 BX1", "converged")
            [assessed] = result["assessments"]
            assert assessed["status"] == "ok" and assessed["cumulative_ip"] > 0.99
            assert result["delivery"]["delivered"] >= 1 and result["delivery"]["failed"] == 0
            hook.wait_for(result["delivery"]["delivered"])
            assert "2024 BX1" in hook.requests[0].body.decode()

            executed = _executed_counts(scheduler)
            assert len(executed) == 2 and min(executed.values()) > 0, executed

            _check_recorded_runs(api_url)
            started = time.monotonic()
            _check_submission_trigger(api_url)
            print(f"deployments and event trigger: {time.monotonic() - started:.1f} s")
        finally:
            services.stop()


@contextlib.contextmanager
def _prefect_client(api_url: str) -> Iterator[Any]:
    """A synchronous Prefect client of the server at ``api_url``."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), \
            get_client(sync_client=True) as client:
        yield client


def _check_recorded_runs(api_url: str) -> None:
    """The pipeline's flow run and its four subflow runs, completed, as the server has them."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    with _prefect_client(api_url) as client:
        names = {f.id: f.name for f in client.read_flows()}
        runs = client.read_flow_runs()
        [parent] = [r for r in runs if names[r.flow_id] == "neodefense-pipeline"]
        assert parent.state.is_completed() and parent.parent_task_run_id is None
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])))
        assert sorted(names[r.flow_id] for r in children) == [
            "deliver-alerts", "fit-changed-objects", "ingest-inbox", "monitor-changed-objects"]
        assert all(r.state.is_completed() for r in children)
        assert len(runs) == 5


def _check_submission_trigger(api_url: str) -> None:
    """The deployments of flows/deploy.py registered with the server; the event the API posts
    for a submission makes the server schedule a run of ``pipeline-on-submission``."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        DeploymentFilterName,
    )

    from flows.deploy import build_deployments
    from neodefense.api.submissions import announce_submission, submission_event

    with _prefect_client(api_url) as client:
        for deployment in build_deployments():
            deployment.apply()
        [on_submission] = client.read_deployments(deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["pipeline-on-submission"])))
        answer = {"submission_id": 4242, "file": "bx1.obs80", "accepted": 82, "duplicates": 0,
                  "status": "ingested"}
        deadline = time.monotonic() + 45.0
        runs: list[Any] = []
        sent = 0
        while not runs and time.monotonic() < deadline:
            if sent < 3:  # the triggers service may still be loading the new automation
                assert announce_submission(api_url, submission_event(answer, "G96"))
                sent += 1
            time.sleep(2.0)
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[on_submission.id])))
        assert runs, "no run of pipeline-on-submission after the submission event"
        assert runs[0].parameters == {"scope": "changed"}
