"""Alert delivery: alerts per second delivered to 1,000 webhook subscribers on loopback, and the
latency from an assessment change to delivery (issue 5 benchmark).

A fresh catalog (an SQLite file in a temporary directory, or a fresh PostgreSQL database created
on ``--pg-admin`` and dropped afterwards) gets one real object (2024 BX1: its observations are
ingested) with a stored orbit solution, and ``--subscribers`` webhook subscribers
(``catalog.alerts.add_subscriber``, empty criteria: every alert) pointing at one receiver on
127.0.0.1. The receiver runs in a separate process (this file with ``--serve``: an asyncio HTTP/1.1
server with keep-alive), so its CPU does not share our GIL; it answers 200, records the wall-clock
receipt time (``time.time()``, same machine) and ``Idempotency-Key`` of every request, checks the
HMAC signature of every ``--verify-every``-th one (``neodefense.alerts.signing.verify``) and hands
the record back on ``GET /_bench/stats``.

Assessments are hand-built (as in tests/test_alert_outbox.py) with a cumulative IP alternating
between 1e-3 and 2e-2, so every ``store_assessment`` raises one alert (new_object, then ip_up,
ip_down, ...) and queues one delivery per subscriber.

* **Throughput**: raise ``--alerts`` alerts (not timed), then time ``deliver_due`` over the whole
  outbox (alerts × subscribers deliveries). Figures: deliveries/s and alerts/s (= deliveries/s ÷
  subscribers); the median of ``--repeats`` repeats, each with fresh alerts. Every repeat checks
  that each delivery arrived exactly once (distinct Idempotency-Keys == deliveries, the expected
  keys, no duplicate), that the sampled signatures verify, and that the catalog records every
  delivery as delivered. The time inside ``deliver_due`` is split into claim / send / record,
  with the CPU seconds of this process, of the receiver and (PostgreSQL on this machine) of the
  database server backends.
* **Latency**: for each of ``--latency-alerts`` single alerts, t0 is taken right after
  ``store_assessment`` returns (the commit), then ``deliver_due`` runs at once (what the pipeline
  does after monitoring); per delivery latency = receipt time at the receiver − t0. Printed:
  p50, p99 and max over all deliveries, and the time until the last of the subscribers' copies
  arrived (median over the alerts).

Each ``--concurrency`` value (DeliveryOptions.concurrency) gets its own throughput and latency
runs; ``--profile`` adds one cProfile'd throughput run (top functions by own time).

    .venv/bin/python benchmarks/bench_alert_delivery.py [--catalog sqlite|postgresql|URL]
        [--subscribers 1000] [--alerts 10] [--repeats 3] [--latency-alerts 5]
        [--concurrency 64 [128 ...]] [--batch-size 500] [--verify-every 10] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import datetime as dt
import io
import json
import os
import pstats
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa

from neodefense.alerts import channels
from neodefense.alerts.deliver import DeliveryOptions, deliver_due
from neodefense.alerts.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify
from neodefense.catalog import alerts as catalog_alerts
from neodefense.catalog import assessments, db, ingest, queries, solutions
from neodefense.impacts.assessment import OK, ImpactAssessment, VirtualImpactor
from neodefense.orbits.solution import CONVERGED, OrbitSolution

SHARED_OBS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
PACKAGE_OBS = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
DEFAULT_OBS = SHARED_OBS / "2024_BX1.obs80"
if not DEFAULT_OBS.is_file():  # the copy shipped for the demo
    DEFAULT_OBS = PACKAGE_OBS / "2024_BX1.obs80"
DESIGNATION = "2024 BX1"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: cumulative IPs the stored assessments alternate between: every store crosses the 1e-2
#: threshold (up, or down past 1e-2 / hysteresis 2), so every store raises one alert
IP_LEVELS = (1e-3, 2e-2)


# -- the receiver (its own process) ----------------------------------------------------------------

_OK_REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
             b'{"ok":true}')


class _ReceiverState:
    """What the receiver saw since the last reset: (receipt unix time s, Idempotency-Key) per
    webhook request, body bytes, and the signature checks of every ``verify_every``-th one."""

    def __init__(self, verify_every: int) -> None:
        self.verify_every = max(1, verify_every)
        self.secrets: dict[int, str] = {}  # channel id -> HMAC secret
        self.reset()

    def reset(self) -> None:
        self.records: list[tuple[float, str]] = []
        self.body_bytes = 0
        self.verified = self.bad_signatures = self.unverifiable = 0

    def hook(self, headers: dict[str, str], body: bytes, received_s: float) -> None:
        key = headers.get(IDEMPOTENCY_HEADER.lower(), "")
        self.records.append((received_s, key))
        self.body_bytes += len(body)
        if len(self.records) % self.verify_every:
            return
        channel = key.rpartition(":")[2]
        secret = self.secrets.get(int(channel)) if channel.isdigit() else None
        if secret is None:
            self.unverifiable += 1
        elif verify(secret, headers.get(SIGNATURE_HEADER.lower(), ""), body):
            self.verified += 1
        else:
            self.bad_signatures += 1

    def control(self, method: str, path: str, body: bytes) -> bytes:
        """The benchmark's own endpoints: secrets, reset, stats. Returns the JSON reply."""
        if path == "/_bench/secrets" and method == "POST":
            self.secrets.update({int(k): v for k, v in json.loads(body).items()})
            return b'{"ok":true}'
        if path == "/_bench/reset" and method == "POST":
            self.reset()
            return b'{"ok":true}'
        if path == "/_bench/stats":
            return json.dumps({"records": self.records, "body_bytes": self.body_bytes,
                               "verified": self.verified, "bad_signatures": self.bad_signatures,
                               "unverifiable": self.unverifiable,
                               "cpu_s": time.process_time()}).encode()
        return b'{"error":"unknown endpoint"}'


class _Http(asyncio.Protocol):
    """Minimal HTTP/1.1 with keep-alive: requests with a Content-Length body (what httpx sends)."""

    def __init__(self, state: _ReceiverState) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still on its way
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            received_s = time.time()
            method, path = lines[0].split(" ")[:2]
            assert self.transport is not None
            if path.startswith("/_bench/"):
                reply = self.state.control(method, path, body)
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: %d\r\n\r\n" % len(reply) + reply)
            else:
                self.state.hook(headers, body, received_s)
                self.transport.write(_OK_REPLY)


def serve(verify_every: int) -> None:
    """Run the receiver on an ephemeral 127.0.0.1 port (printed as the first line of stdout)
    until killed."""
    async def main() -> None:
        state = _ReceiverState(verify_every)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Http(state), "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _process_cpu_s(pid: int) -> float:
    """CPU seconds used so far by process ``pid``; NaN when it cannot be read (not on this
    machine)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Receiver:
    """The receiver process, seen from the benchmark: start/stop, secrets, reset, stats."""

    def __init__(self, verify_every: int) -> None:
        self.verify_every = verify_every

    def __enter__(self) -> Receiver:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve",
                                         "--verify-every", str(self.verify_every)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/hook"
        self.client = httpx.Client(base_url=self.base, timeout=60.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(10)

    def set_secrets(self, by_channel: dict[int, str]) -> None:
        self.client.post("/_bench/secrets", content=json.dumps(by_channel)).raise_for_status()

    def reset(self) -> None:
        self.client.post("/_bench/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self.client.get("/_bench/stats").raise_for_status().json()

    def cpu_s(self) -> float:
        return _process_cpu_s(self.process.pid)


# -- the catalog ---------------------------------------------------------------------------------

@contextlib.contextmanager
def fresh_catalog(which: str, pg_admin: str) -> Iterator[sa.Engine]:
    """An engine on a new, empty catalog: 'sqlite' (a file in a temporary directory),
    'postgresql' (a new database on ``pg_admin``, dropped afterwards) or a URL (used as is: it
    must be an empty catalog)."""
    if which == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench_alerts_") as tmp:
            engine = db.connect(f"sqlite:///{tmp}/catalog.sqlite")
            try:
                yield engine
            finally:
                engine.dispose()
        return
    if which != "postgresql":
        engine = db.connect(which)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    name = f"neodefense_bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = db.connect(sa.make_url(pg_admin).set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def db_server_cpu(engine: sa.Engine) -> dict[int, float]:
    """CPU seconds of every PostgreSQL backend serving this database, by pid (empty for SQLite,
    NaN values for a server not on this machine)."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        pids = conn.exec_driver_sql("SELECT pid FROM pg_stat_activity "
                                    "WHERE datname = current_database()").scalars().all()
    return {pid: _process_cpu_s(pid) for pid in pids}


def server_cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    if not after:
        return float("nan")
    return float(sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()))


def setup_object(engine: sa.Engine, obs_path: Path) -> int:
    """Ingest the observations, store a converged (hand-made) solution; returns its id."""
    ingest.ingest(engine, obs_path, obs_path.name, submitter="K88")
    _, ids = solutions.observations_with_ids(engine, DESIGNATION)
    object_id = queries.resolve(engine, DESIGNATION)
    sol = OrbitSolution(designation=DESIGNATION, status=CONVERGED, epoch_tdb_jd=2460330.5,
                        state_icrf_au=np.array([-0.46, 0.87, 0.38, -0.017, -0.007, -0.004]),
                        rms_arcsec=0.41, n_obs=len(ids), n_used=len(ids))
    return solutions.store_solution(engine, object_id, sol, ids)


def assessment(ip: float) -> ImpactAssessment:
    """An 'ok' assessment of 2024 BX1 with one virtual impactor of probability ``ip``."""
    vi = VirtualImpactor(body="earth", time_tdb_jd=2482345.1, date_utc="2067-09-14.62", ip=ip,
                         palermo=-2.3, torino=0, v_inf_km_s=11.2, energy_mt=120.0,
                         diameter_m=140.0, method="lov")
    return ImpactAssessment(
        designation=DESIGNATION, status=OK, method="lov", n_samples=1001, seed=0, years=100.0,
        cumulative_ip=ip, palermo_cum=float(np.log10(ip)) - 2.0,
        palermo_max=float(np.log10(ip)) - 2.0, torino_max=0, iawn_notify=False, H=22.0,
        diameter_m=140.0, virtual_impactors=[vi], solution_epoch_tdb_jd=2460330.5,
        solution_code_version="bench")


class AlertSource:
    """Stores assessments that each raise one alert (IP alternating across the 1e-2 level)."""

    def __init__(self, engine: sa.Engine, solution_id: int) -> None:
        self.engine = engine
        self.solution_id = solution_id
        self.count = 0
        self.n_alerts = len(catalog_alerts.alerts(engine))

    def store(self) -> float:
        """Store the next assessment; returns the wall-clock time (unix s) right after the
        commit."""
        assessments.store_assessment(self.engine, self.solution_id,
                                     assessment(IP_LEVELS[self.count % len(IP_LEVELS)]))
        committed_s = time.time()
        self.count += 1
        return committed_s

    def new_alerts(self, expected: int) -> list[str]:
        """The public ids of the alerts raised since the last call; checks there are
        ``expected``."""
        listed = catalog_alerts.alerts(self.engine)
        fresh = [a["alert_id"] for a in listed[self.n_alerts:]]
        self.n_alerts = len(listed)
        if len(fresh) != expected:
            raise AssertionError(f"{len(fresh)} alerts raised, expected {expected}")
        return fresh


def add_subscribers(engine: sa.Engine, url: str, n: int) -> dict[int, str]:
    """``n`` webhook subscribers (every alert) at ``url``; returns {channel id: secret}."""
    out = {}
    for i in range(n):
        sub = catalog_alerts.add_subscriber(engine, f"bench-{i:05d}", {},
                                            [{"kind": "webhook", "target": url}])
        out[sub["channels"][0]["id"]] = sub["channels"][0]["secret"]
    return out


# -- measuring -------------------------------------------------------------------------------------

@contextlib.contextmanager
def phase_timers() -> Iterator[dict[str, float]]:
    """Wall seconds spent in claim_deliveries, channels.send and record_outcomes while inside
    (the module attributes deliver_due calls are wrapped, then restored)."""
    spent = {"claim": 0.0, "send": 0.0, "record": 0.0}
    targets = [(catalog_alerts, "claim_deliveries", "claim"), (channels, "send", "send"),
               (catalog_alerts, "record_outcomes", "record")]
    originals = [getattr(module, name) for module, name, _ in targets]

    def timed(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[phase] += time.perf_counter() - t0
        return wrapper

    for (module, name, phase), fn in zip(targets, originals):
        setattr(module, name, timed(fn, phase))
    try:
        yield spent
    finally:
        for (module, name, _), fn in zip(targets, originals):
            setattr(module, name, fn)


@dataclasses.dataclass
class Run:
    """One timed deliver_due over the outbox."""

    deliveries: int
    wall_s: float
    phases: dict[str, float]
    client_cpu_s: float
    receiver_cpu_s: float
    db_cpu_s: float
    rounds: int
    load: float

    @property
    def per_s(self) -> float:
        return self.deliveries / self.wall_s


def check_delivered(engine: sa.Engine, receiver: Receiver, alert_ids: list[str],
                    channel_ids: list[int], totals: dict[str, int]) -> dict[str, Any]:
    """Every (alert, channel) arrived exactly once, the sampled signatures verify, and the
    catalog records each delivered. Returns the receiver's stats."""
    expected = {f"{a}:{c}" for a in alert_ids for c in channel_ids}
    stats = receiver.stats()
    keys = [key for _, key in stats["records"]]
    problems = []
    if len(keys) != len(expected) or len(set(keys)) != len(keys) or set(keys) != expected:
        problems.append(f"receiver got {len(keys)} requests, {len(set(keys))} distinct keys, "
                        f"{len(set(keys) & expected)} of the {len(expected)} expected")
    if stats["bad_signatures"] or stats["unverifiable"] or not stats["verified"]:
        problems.append(f"signatures: {stats['verified']} verified, {stats['bad_signatures']} bad, "
                        f"{stats['unverifiable']} unverifiable")
    if (totals["delivered"], totals["failed"], totals["already"]) != (len(expected), 0, 0):
        problems.append(f"deliver_due totals {totals}")
    recorded = sum(catalog_alerts.alert(engine, a)["deliveries"].get("delivered", 0)
                   for a in alert_ids)
    if recorded != len(expected):
        problems.append(f"catalog records {recorded} of {len(expected)} delivered")
    if problems:
        raise AssertionError("; ".join(problems))
    return stats


def throughput_run(engine: sa.Engine, receiver: Receiver, source: AlertSource,
                   channel_ids: list[int], options: DeliveryOptions, n_alerts: int,
                   profile: cProfile.Profile | None = None) -> Run:
    for _ in range(n_alerts):
        source.store()
    alert_ids = source.new_alerts(n_alerts)
    receiver.reset()
    db_before, receiver_before = db_server_cpu(engine), receiver.cpu_s()
    with phase_timers() as phases:
        cpu0, t0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        totals = deliver_due(engine, options)
        if profile is not None:
            profile.disable()
        wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    run = Run(deliveries=totals["delivered"], wall_s=wall_s, phases=dict(phases),
              client_cpu_s=cpu_s, receiver_cpu_s=receiver.cpu_s() - receiver_before,
              db_cpu_s=server_cpu_delta(db_before, db_server_cpu(engine)),
              rounds=totals["rounds"], load=os.getloadavg()[0])
    check_delivered(engine, receiver, alert_ids, channel_ids, totals)
    return run


@dataclasses.dataclass
class Latency:
    """One alert: store time, then per-delivery latencies (receipt − commit), seconds."""

    store_s: float
    latencies_s: np.ndarray
    deliver_due_s: float


def latency_run(engine: sa.Engine, receiver: Receiver, source: AlertSource,
                channel_ids: list[int], options: DeliveryOptions) -> Latency:
    receiver.reset()
    started_s = time.time()
    committed_s = source.store()
    totals = deliver_due(engine, options)
    returned_s = time.time()
    alert_ids = source.new_alerts(1)
    stats = check_delivered(engine, receiver, alert_ids, channel_ids, totals)
    received = np.array([t for t, _ in stats["records"]])
    return Latency(committed_s - started_s, received - committed_s, returned_s - committed_s)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="sqlite",
                        help="sqlite (temporary file), postgresql (fresh database on --pg-admin, "
                             "dropped after) or the URL of an empty catalog")
    parser.add_argument("--pg-admin", default=PG_ADMIN_URL)
    parser.add_argument("--observations", type=Path, default=DEFAULT_OBS,
                        help="obs80 file of 2024 BX1")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=10, help="alerts per throughput repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-alerts", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+",
                        default=[DeliveryOptions().concurrency])
    parser.add_argument("--batch-size", type=int, default=DeliveryOptions().batch_size)
    parser.add_argument("--timeout", type=float, default=DeliveryOptions().webhook_timeout_s,
                        help="webhook timeout, s")
    parser.add_argument("--verify-every", type=int, default=10,
                        help="the receiver checks the signature of every n-th request")
    parser.add_argument("--profile", action="store_true",
                        help="one more throughput run under cProfile; prints the top functions")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.verify_every)
        return

    print(f"alert delivery benchmark: {args.subscribers} webhook subscribers on loopback "
          f"(receiver in its own process), catalog {args.catalog}; {os.cpu_count()} cores, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    summary = []
    with fresh_catalog(args.catalog, args.pg_admin) as engine, \
            Receiver(args.verify_every) as receiver:
        t0 = time.perf_counter()
        solution_id = setup_object(engine, args.observations)
        t1 = time.perf_counter()
        by_channel = add_subscribers(engine, receiver.url, args.subscribers)
        t2 = time.perf_counter()
        receiver.set_secrets(by_channel)
        channel_ids = sorted(by_channel)
        source = AlertSource(engine, solution_id)
        print(f"setup: {args.observations.name} ingested and a solution stored in {t1 - t0:.1f} s; "
              f"{args.subscribers} subscribers added in {t2 - t1:.1f} s "
              f"({(t2 - t1) / args.subscribers * 1e3:.1f} ms each)", flush=True)
        for concurrency in args.concurrency:
            options = DeliveryOptions(concurrency=concurrency, batch_size=args.batch_size,
                                      webhook_timeout_s=args.timeout)
            print(f"\n== {engine.dialect.name}: concurrency {options.concurrency}, batch_size "
                  f"{options.batch_size}, webhook_timeout_s {options.webhook_timeout_s:g}, "
                  f"lease_s {options.policy.lease_s:g}", flush=True)
            runs = []
            for repeat in range(args.repeats):
                run = throughput_run(engine, receiver, source, channel_ids, options, args.alerts)
                runs.append(run)
                phases = ", ".join(f"{k} {v:.2f} s" for k, v in run.phases.items())
                print(f"  throughput {repeat + 1}: {run.deliveries} deliveries in {run.wall_s:.2f} s "
                      f"= {run.per_s:,.0f}/s = {run.per_s / args.subscribers:.2f} alerts/s "
                      f"({run.rounds} rounds: {phases}; cpu: client {run.client_cpu_s:.2f} s, "
                      f"receiver {run.receiver_cpu_s:.2f} s, db server {run.db_cpu_s:.2f} s; "
                      f"load {run.load:.1f})", flush=True)
            per_s = statistics.median(r.per_s for r in runs)
            print(f"  median: {per_s:,.0f} deliveries/s, {per_s / args.subscribers:.2f} alerts/s "
                  "(all delivered exactly once, signatures verified, recorded delivered)")
            lats = []
            for k in range(args.latency_alerts):
                lat = latency_run(engine, receiver, source, channel_ids, options)
                lats.append(lat)
                q = np.percentile(lat.latencies_s, [50, 99])
                print(f"  latency {k + 1}: store_assessment {_ms(lat.store_s)}; after the commit: "
                      f"first {_ms(lat.latencies_s.min())}, p50 {_ms(q[0])}, p99 {_ms(q[1])}, "
                      f"last {_ms(lat.latencies_s.max())}; deliver_due returned "
                      f"{_ms(lat.deliver_due_s)}", flush=True)
            if lats:
                every = np.concatenate([lat.latencies_s for lat in lats])
                p50, p99 = np.percentile(every, [50, 99])
                last = statistics.median(float(lat.latencies_s.max()) for lat in lats)
                store = statistics.median(lat.store_s for lat in lats)
                print(f"  latency over {len(every)} deliveries: p50 {_ms(p50)}, p99 {_ms(p99)}, "
                      f"max {_ms(every.max())}; all {args.subscribers} arrived after "
                      f"{_ms(last)} (median); store_assessment {_ms(store)} (median)")
                lat_text = f"latency p50 {_ms(p50)} p99 {_ms(p99)} max {_ms(every.max())} " \
                           f"last {_ms(last)}"
            else:
                lat_text = "latency not measured"
            summary.append(f"SUMMARY {engine.dialect.name} concurrency {concurrency} batch "
                           f"{options.batch_size}: {per_s:,.0f} deliveries/s, "
                           f"{per_s / args.subscribers:.2f} alerts/s to {args.subscribers} "
                           f"subscribers (median of {args.repeats}); {lat_text}")
            if args.profile:
                profile = cProfile.Profile()
                run = throughput_run(engine, receiver, source, channel_ids, options, args.alerts,
                                     profile)
                print(f"  profiled run: {run.per_s:,.0f} deliveries/s under cProfile; "
                      "top functions by own time:")
                text = io.StringIO()
                pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(25)
                print("\n".join("    " + line for line in text.getvalue().splitlines()
                                if line.strip()), flush=True)
    print()
    print("\n".join(summary))
    print(f"(load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
