"""Faults (issue 7): the pipeline's parts survive the failures a production run meets.

* **A Dask worker killed in the middle of monitoring** (SIGKILL, as the kernel's OOM killer
  would): the scheduler reruns the chunk it held on the other worker (its nanny starts a new
  one) and :func:`~neodefense.impacts.monitor.monitor_solution` returns the same assessment,
  value for value, as an undisturbed run with the same seed.
* **PostgreSQL stopped in the middle of an ingest** (``pg_ctl stop -m immediate`` on a private
  cluster, :mod:`pg_server`): the submission's observations, rejections and objects vanish with
  the transaction, the raw bytes (committed before) are whole; once the server is back, the inbox
  flow's own retry of transient errors ingests the file into the same submission row, with the
  counts of an undisturbed ingest.
* **A process crash between an assessment and the delivery of its alert** (``os._exit`` in a
  subprocess; also after claiming the delivery, and after sending it but before recording the
  outcome): a fresh deliverer sends the alert once the crashed one's lease has run out, with the
  same ``Idempotency-Key`` on any repeat, and the catalog records exactly one delivery.

Real data throughout: 2024 BX1's 328 observations (fitted here), the demo files repeated as a
big submission.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alert_receivers import WebhookReceiver
from distributed.diagnostics.plugin import SchedulerPlugin
from pg_server import PgServer

import neodefense.data
from neodefense.alerts.signing import IDEMPOTENCY_HEADER
from neodefense.catalog import alerts, assessments, db, ingest, queries, solutions
from neodefense.catalog.assessments import _aware
from neodefense.catalog.models import Delivery
from neodefense.impacts.assessment import ImpactAssessment
from neodefense.impacts.monitor import monitor_solution
from neodefense.observations import io
from neodefense.orbits.fit import fit_orbit
from neodefense.orbits.solution import OrbitSolution

DEMO = Path(neodefense.data.__file__).resolve().parent / "demo"
DESIGNATION = "2024 BX1"


@pytest.fixture(scope="module")
def bx1_fit() -> tuple[OrbitSolution, Any]:
    """2024 BX1 fitted to its 328 observations (the demo file): (solution, batch)."""
    batch = io.read(DEMO / "2024_BX1.obs80").batch
    solution = fit_orbit(batch, DESIGNATION, close_approach_years=None)
    assert solution.ok, solution.message
    return solution, batch


def _comparable(a: ImpactAssessment) -> dict[str, Any]:
    """The assessment's JSON without what depends on the clock (run time, time stamp)."""
    out = a.as_json()
    for key in ("runtime_s", "assessed_utc"):
        out.pop(key, None)
    return out


# -- 1. a Dask worker killed in the middle of monitoring -------------------------------------------

class KillWorkerMidway(SchedulerPlugin):
    """Scheduler plugin: once ``after`` tasks whose key starts with ``prefix`` have finished, kill
    (SIGKILL) the process of a worker that is computing another one of them right then. Runs in
    the scheduler's event loop, so the moment is exact, whatever the machine's load."""

    name = "neodefense-test-kill-worker"

    def __init__(self, prefix: str, after: int) -> None:
        self.prefix = prefix
        self.after = after
        self.done = 0
        self.killed: dict[str, Any] | None = None
        self.scheduler: Any = None

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def _ours(self, key: Any) -> bool:
        return str(key).startswith(self.prefix)

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish != "memory" or not self._ours(key) or self.killed is not None:
            return
        self.done += 1
        if self.done < self.after:
            return
        finished_on = kwargs.get("worker")
        busy = [ws for ws in self.scheduler.workers.values()
                if any(self._ours(ts.key) for ts in ws.processing)]
        busy.sort(key=lambda ws: ws.address == finished_on)  # rather the one mid-chunk
        if not busy:
            return  # nothing in flight at this instant: try at the next completion
        victim = busy[0]
        left = sum(1 for ts in self.scheduler.tasks.values()
                   if self._ours(ts.key) and ts.state in ("processing", "queued", "no-worker",
                                                          "waiting"))
        self.killed = {"address": victim.address, "pid": victim.pid, "done": self.done,
                       "in_flight": sorted(str(ts.key) for ts in victim.processing
                                           if self._ours(ts.key)),
                       "left": left}
        os.kill(victim.pid, signal.SIGKILL)


def _plugin_report(dask_scheduler: Any) -> dict[str, Any]:
    plugin = dask_scheduler.plugins[KillWorkerMidway.name]
    return {"done": plugin.done, "killed": plugin.killed}


def _worker_pid() -> int:
    return os.getpid()


@pytest.mark.slow
def test_worker_killed_mid_monitoring_gives_identical_assessment(bx1_fit):
    """2024 BX1 monitored with the default method (LOV, 41 virtual asteroids, and a 40-sample
    Monte Carlo cross-check) on a LocalCluster of two single-thread worker processes; in a second
    run with the same seed, once three of the LOV run's seven chunks have finished, the worker
    computing another one is killed. The run completes, and its assessment (cumulative IP, virtual impactors,
    entry point and corridor, close approaches, cross-check, target planes) is identical to the
    undisturbed one's."""
    from neodefense import compute

    solution, batch = bx1_fit
    kwargs = {"batch": batch, "method": "lov", "years": 1.0, "n_samples": 41,
              "cross_check_samples": 40, "seed": 7}
    with compute.client(address="", n_workers=2) as client:
        undisturbed = monitor_solution(solution, client=client, **kwargs)
        assert undisturbed.status == "ok", undisturbed.message
        assert undisturbed.cumulative_ip > 0.99  # it struck Berlin's outskirts 2.7 h later
        pids_before = set(client.run(_worker_pid).values())
        assert len(pids_before) == 2

        client.register_plugin(KillWorkerMidway("propagate_chunk-", after=3))
        disturbed = monitor_solution(solution, client=client, **kwargs)
        report = client.run_on_scheduler(_plugin_report)

        killed = report["killed"]
        assert killed is not None, f"no worker was killed ({report['done']} chunks finished)"
        assert killed["pid"] in pids_before and killed["in_flight"], killed
        assert killed["left"] >= 2, killed  # the run was in its middle
        # the nanny replaced the dead worker; the other one worked on
        client.wait_for_workers(2, timeout=60)
        pids_after = set(client.run(_worker_pid).values())
        assert killed["pid"] not in pids_after and len(pids_after) == 2
        assert len(pids_after & pids_before) == 1

    assert disturbed.status == "ok", disturbed.message
    assert _comparable(disturbed) == _comparable(undisturbed)
    assert disturbed.n_samples == 41 and disturbed.cross_check["n_samples"] == 40


# -- 2. PostgreSQL stopped in the middle of an ingest ----------------------------------------------

#: The role the ingest logs in as (the test inspects as 'postgres').
INGESTER = "ingester"
#: Small parse/insert chunks: the file spans ~100 COPYs inside the one ingest transaction.
CHUNK_BYTES = 64 * 1024
#: The server is stopped once the ingest has run this many COPYs (at least).
COPIES_BEFORE_CRASH = 5


def _big_submission() -> bytes:
    """The five demo files (each ending in a newline), the whole repeated six times: 6.2 MB,
    76,878 lines, 11,400 distinct observations, each of the other five copies a duplicate."""
    parts = []
    for path in sorted(DEMO.glob("*.obs80")):
        data = path.read_bytes()
        parts.append(data if data.endswith(b"\n") else data + b"\n")
    return b"".join(parts) * 6


@pytest.fixture()
def pg() -> Iterator[PgServer]:
    """A private PostgreSQL cluster (never the shared one on 5432), removed after the test."""
    server = PgServer().start()
    try:
        yield server
    finally:
        server.remove()


def _admin(pg: PgServer, database: str) -> sa.Engine:
    return sa.create_engine(pg.url(database), poolclass=sa.pool.NullPool,
                            isolation_level="AUTOCOMMIT")


def _scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def _settings_file(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path.as_posix()}"\n[catalog]\nurl = "{url}"\n'
                    f"[ingest]\nchunk_bytes = {CHUNK_BYTES}\n")
    return path


class _CrashDuringIngest(threading.Thread):
    """Waits until the ingest (role ``ingester``) has run ``COPIES_BEFORE_CRASH`` COPYs into
    ``observations``, then: locks the role out (new logins refused, the ingest's own session
    goes on), stops the server as a crash would, starts it again (crash recovery), records what
    the catalog holds of the submission while nothing can write to it, and lets the role in
    again — the inbox flow's next retry then gets through."""

    def __init__(self, pg: PgServer, database: str, raw: bytes) -> None:
        super().__init__(name="crash-during-ingest", daemon=True)
        self.pg, self.database, self.raw = pg, database, raw
        self.copies_seen = 0
        self.outage_s = 0.0  # from the crash until the ingest may log in again
        self.after_crash: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.flow_done = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            if not self.pg.running:
                self.pg.start()
            _set_login(self.pg, True)

    def _run(self) -> None:
        watcher = _admin(self.pg, self.database)
        starts: set[Any] = set()
        deadline = time.monotonic() + 120
        while len(starts) < COPIES_BEFORE_CRASH:
            if self.flow_done.is_set() or time.monotonic() > deadline:
                raise TimeoutError(f"saw {len(starts)} COPYs before the ingest ended")
            with watcher.connect() as conn:  # autocommit: a fresh statistics snapshot each time
                starts.update(conn.execute(sa.text(
                    "SELECT query_start FROM pg_stat_activity WHERE usename = :u "
                    "AND state = 'active' AND query LIKE 'COPY observations%'"),
                    {"u": INGESTER}).scalars())
            time.sleep(0.005)
        self.copies_seen = len(starts)
        _set_login(self.pg, False)
        crashed = time.monotonic()
        self.pg.stop("immediate")
        self.pg.start()
        self.after_crash = _submission_state(_admin(self.pg, self.database), self.raw)
        _set_login(self.pg, True)
        self.outage_s = time.monotonic() - crashed


def _set_login(pg: PgServer, allowed: bool) -> None:
    with _admin(pg, "postgres").connect() as conn:
        conn.execute(sa.text(f"ALTER ROLE {INGESTER} {'LOGIN' if allowed else 'NOLOGIN'}"))


def _submission_state(engine: sa.Engine, raw: bytes) -> dict[str, Any]:
    """What the catalog holds of the submission of ``raw``: its rows, and whether its raw bytes
    are stored whole (None when absent)."""
    sha = hashlib.sha256(raw).hexdigest()
    with engine.connect() as conn:
        subs = [dict(r) for r in conn.execute(sa.text(
            "SELECT id, status, n_accepted FROM submissions WHERE sha256 = :s ORDER BY id"),
            {"s": sha}).mappings()]
        size = conn.execute(sa.text("SELECT size FROM raw_blobs WHERE sha256 = :s"),
                            {"s": sha}).scalar()
        chunks = conn.execute(sa.text("SELECT data FROM raw_chunks WHERE sha256 = :s "
                                      "ORDER BY seq"), {"s": sha}).scalars().all()
        stored = hashlib.sha256(b"".join(bytes(c) for c in chunks)).hexdigest()
        counts = {table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
                  for table in ("observations", "rejections", "objects", "designations")}
    return {"submissions": subs, "raw_whole": None if size is None else
            (size == len(raw) and stored == sha), **counts}


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_embedded")
def test_postgres_stopped_mid_ingest_leaves_no_partial_submission(pg, tmp_path):
    """The demo files six times over (6.2 MB, ~100 COPYs of 64 KiB chunks in one transaction),
    ingested by the inbox flow into a private PostgreSQL cluster that is stopped with
    ``pg_ctl stop -m immediate`` after five COPYs. After recovery: one submission row, 'stored'
    (or 'failed', had the server come back in time to say so), its raw bytes whole, and not one
    observation, rejection, object or designation. The flow's retry of the transient error then
    ingests the file into that same submission with the receipt of an undisturbed ingest into
    another database."""
    from flows.ingest import ingest_inbox

    raw = _big_submission()
    lines = raw.count(b"\n")

    calm = db.connect(pg.create_database("calm"))
    try:
        expected = ingest.ingest(calm, raw, "big.obs80", "K88", chunk_bytes=CHUNK_BYTES)
    finally:
        calm.dispose()
    assert expected.lines == lines and expected.accepted == 11_400
    assert expected.accepted + expected.duplicates + expected.n_rejected == 11_400 * 6

    with _admin(pg, "postgres").connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {INGESTER} LOGIN SUPERUSER"))
        conn.execute(sa.text(f"CREATE DATABASE faulty OWNER {INGESTER}"))
    url = pg.url("faulty").set(username=INGESTER).render_as_string(hide_password=False)
    inbox = tmp_path / "inbox" / "K88"
    inbox.mkdir(parents=True)
    (inbox / "big.obs80").write_bytes(raw)

    crash = _CrashDuringIngest(pg, "faulty", raw)
    crash.start()
    try:
        receipts = ingest_inbox(config_path=str(_settings_file(tmp_path, url)))
    finally:
        crash.flow_done.set()
        crash.join(timeout=60)
    assert crash.error is None, repr(crash.error)
    assert crash.copies_seen >= COPIES_BEFORE_CRASH

    # after the crash, before any retry could get in: no partial submission
    seen = crash.after_crash
    assert [s["status"] for s in seen["submissions"]] in (["stored"], ["failed"]), seen
    assert seen["raw_whole"] is True  # committed before the parse began: all of it
    assert seen["observations"] == seen["rejections"] == 0, seen
    assert seen["objects"] == seen["designations"] == 0, seen

    # the retry went through, into the same submission row, every line accounted for
    (receipt,) = receipts
    assert "error" not in receipt, (receipt, f"outage {crash.outage_s:.1f} s")
    first_id = seen["submissions"][0]["id"]
    assert receipt["submission_id"] == first_id
    comparable = ("accepted", "duplicates", "n_rejected", "rejected", "lines", "format",
                  "sha256", "size")
    assert {k: receipt[k] for k in comparable} == {k: expected.as_json()[k] for k in comparable}
    final = _submission_state(_admin(pg, "faulty"), raw)
    assert final["submissions"] == [{"id": first_id, "status": "ingested", "n_accepted": 11_400}]
    assert final["observations"] == 11_400 and final["rejections"] == expected.n_rejected
    assert (tmp_path / "processed" / "K88" / "big.obs80").read_bytes() == raw


# -- 3. a crash between an assessment and the delivery of its alert --------------------------------

#: The crashing process (``step``: what it does before ``os._exit(1)``) and the fresh deliverer.
CHILD = r"""
import json, os, sys

args = json.loads(sys.argv[1])
from neodefense.catalog import alerts, assessments, db

engine = db.connect(args["url"])
if args["step"] == "deliver":
    from neodefense.alerts.deliver import DeliveryOptions, deliver_due

    options = DeliveryOptions(webhook_timeout_s=5.0)
    print(json.dumps(deliver_due(engine, options, wait_s=args["wait_s"])), flush=True)
    engine.dispose()
    sys.exit(0)
assessment = assessments.assessment_from_dict(args["assessment"])
assessment_id = assessments.store_assessment(engine, args["solution_id"], assessment)
report = {"assessment_id": assessment_id}
if args["step"] in ("claimed", "sent"):
    claimed = alerts.claim_deliveries(engine, lease_s=args["lease_s"])
    report["claimed"] = [m.delivery_id for m in claimed]
    if args["step"] == "sent":
        from neodefense.alerts import channels

        report["sent_ok"] = [o.ok for o in channels.send(claimed, timeout_s=5.0)]
print(json.dumps(report), flush=True)
os._exit(1)  # the crash: no clean-up, no delivery, no recording
"""
#: The crashed deliverer's claim: short, so the test waits little for it to run out.
LEASE_S = 1.0


def _child(args: dict[str, Any], timeout_s: float = 120.0) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    last = done.stdout.strip().splitlines()[-1:] or ["{}"]
    try:
        report = json.loads(last[0])
    except ValueError:
        report = {}
    if not report:
        raise AssertionError(f"the child said nothing (exit {done.returncode}):\n{done.stderr}")
    return done.returncode, report


@pytest.fixture(scope="module")
def bx1_assessment(bx1_fit) -> ImpactAssessment:
    """A real assessment of 2024 BX1 (Monte Carlo, 20 samples): an imminent impactor, IP 1."""
    solution, batch = bx1_fit
    a = monitor_solution(solution, batch=batch, method="mc", years=1.0, n_samples=20, seed=2)
    assert a.status == "ok" and a.cumulative_ip > 0.99, a.message
    return a


def _count(engine: sa.Engine, sql: str) -> int:
    return int(_scalar(engine, sql))


@pytest.mark.parametrize("crash_after", ["stored", "claimed", "sent"])
def test_alert_delivered_once_after_a_crash(catalog_engine, bx1_fit, bx1_assessment, crash_after):
    """A process stores BX1's assessment (its alert and one delivery are committed with it) and
    dies (``os._exit(1)``): right after storing it; after claiming the delivery for
    ``LEASE_S``; after sending it but before recording the outcome. A fresh process's
    ``deliver_due`` then sends it — not before the crashed claim has run out — and the catalog
    records it delivered once. Sent twice in the last case (at least once is the promise), the
    receiver sees the same ``Idempotency-Key`` both times and can drop the repeat."""
    engine = catalog_engine
    solution, _ = bx1_fit
    ingest.ingest(engine, DEMO / "2024_BX1.obs80", "bx1.obs80", submitter="K88")
    object_id = queries.resolve(engine, DESIGNATION)
    _, ids = solutions.observations_with_ids(engine, DESIGNATION)
    assert len(ids) == solution.n_obs
    solution_id = solutions.store_solution(engine, object_id, solution, ids)
    url = engine.url.render_as_string(hide_password=False)
    with WebhookReceiver() as hook:
        sub = alerts.add_subscriber(engine, "duty-officer", {}, [{"kind": "webhook",
                                                                   "target": hook.url}])
        channel_id = sub["channels"][0]["id"]
        code, report = _child({"url": url, "step": crash_after, "solution_id": solution_id,
                               "assessment": bx1_assessment.as_json(), "lease_s": LEASE_S})
        assert code == 1, report  # it died
        # the assessment, its alert and the delivery were committed before the crash
        stored = assessments.latest_assessment(engine, DESIGNATION)
        assert stored is not None and stored["id"] == report["assessment_id"]
        assert _count(engine, "SELECT count(*) FROM alerts") == 1
        alert_id = _scalar(engine, "SELECT alert_id FROM alerts")
        assert _count(engine, "SELECT count(*) FROM deliveries WHERE status = 'pending'") == 1
        assert _count(engine, "SELECT count(*) FROM delivery_attempts") == 0
        sent_before = len(hook.requests)
        assert sent_before == (1 if crash_after == "sent" else 0)
        if crash_after in ("claimed", "sent"):
            assert len(report["claimed"]) == 1
            with engine.connect() as conn:  # typed column: SQLite hands back a naive datetime
                until = _aware(conn.execute(sa.select(Delivery.__table__.c.claimed_until))
                               .scalar_one())
            # while the dead deliverer's claim lives, no one else takes the delivery
            assert alerts.claim_deliveries(engine, now=until - dt.timedelta(seconds=0.5)) == []
        else:
            until = None

        code, totals = _child({"url": url, "step": "deliver", "wait_s": LEASE_S + 30.0})
        assert code == 0
        assert totals["delivered"] == 1 and totals["sent"] == 1 and totals["failed"] == 0
        requests = hook.wait_for(sent_before + 1)

    assert len(requests) == sent_before + 1
    keys = {r.headers[IDEMPOTENCY_HEADER] for r in requests}
    assert keys == {f"{alert_id}:{channel_id}"}  # a repeat carries the same key
    assert {json.loads(r.body)["alert_id"] for r in requests} == {alert_id}
    if until is not None:  # the redelivery waited for the lease to run out
        wall = time.time() - (time.monotonic() - requests[-1].received_monotonic)
        assert wall >= until.timestamp() - 0.05
    # exactly once in the catalog: one delivery delivered, one attempt recorded (the crashed
    # send was never recorded; the receiver's repeat is its own to drop)
    assert _count(engine, "SELECT count(*) FROM deliveries WHERE status = 'delivered'") == 1
    assert _count(engine, "SELECT count(*) FROM deliveries") == 1
    assert _count(engine, "SELECT count(*) FROM delivery_attempts WHERE ok") == 1
