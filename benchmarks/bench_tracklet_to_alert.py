"""Latency from an observatory's submission of a new tracklet to the alert at a subscriber's
webhook, on the embedded defaults (issue 7 benchmark).

What runs is what a single-machine deployment runs: a SQLite catalog file, embedded Prefect (no
server configured: Prefect's temporary local server, started once by the first flow of this
process and kept for the whole benchmark), a Dask LocalCluster (``[dask]`` of
config/neodefense.toml: 2 single-threaded workers) and the production ``[monitoring]`` and
``[alerts]`` settings of config/neodefense.toml (100 years, LOV with 1,001 samples plus the
200-sample Monte Carlo cross-check, Earth and Moon) unless ``--years`` / ``--samples`` /
``--cross-check-samples`` say otherwise.

Two cases (``--cases``), each on the real observations of one object (``--object``, a file of
src/neodefense/data/demo; 2008 TC3 by default), cut into the steps of
:func:`neodefense.impacts.replay.replay_steps` (the discovery tracklet, then every
``--step-hours`` of real time):

* **known**: the catalog already knows the object: the observations of the first
  ``--known-steps`` steps were ingested (as MPC submissions), fitted, monitored and their alerts
  raised before the run (the *template* catalog, built once, not timed, copied for every
  repeat). The timed tracklet is the next step that brought new observations. For 2008 TC3 with
  the defaults the catalog knows the discovery tracklet (four G96 positions over 43 minutes,
  monitored by systematic ranging: on the risk list already) and the next hour's five
  observations arrive (three more by G96, two by 854): the first least-squares orbit, an LOV
  assessment, and an alert (IP threshold passed upwards, imminent impact).
* **new**: a catalog that does not know the object receives its discovery tracklet (2008 TC3:
  four G96 positions over 43 minutes, too short for a least-squares orbit: the fit says
  ``arc_too_short`` and the monitor samples the systematic-ranging region with Monte Carlo).

One repeat of a case (``--repeats`` of each; the median is printed):

1. (not timed) the template catalog is copied to a fresh directory; the HTTP API
   (:func:`neodefense.api.create_app` under uvicorn, a subprocess on 127.0.0.1) is started over
   it; every station of the tracklet gets an observatory account and token
   (:mod:`neodefense.catalog.access`); a webhook receiver of this file (a small HTTP server on
   127.0.0.1 in a thread of this process: it answers the subscription's verification challenge
   and records each POST with its arrival time) subscribes to every alert through
   ``POST /v1/subscriptions``.
2. (timed, t0 = just before the first POST) each station's observations are POSTed to
   ``/v1/submissions`` with its token (one submission per station, one after the other, as the
   observatories would send them); the receipts must show every record accepted.
3. the pipeline runs at once: ``flows.pipeline.pipeline(ingest=False, scope="changed")`` when
   flows/pipeline.py exists (one LocalCluster for the run, started by the fit stage; its
   ``timings_s`` are printed as ``pipeline:fit`` etc.), else the three stage flows in order,
   each timed and each with its own LocalCluster: ``fit_changed_objects``,
   ``monitor_changed_objects``, ``deliver_alerts`` (the API already ingested the submission, so
   no inbox ingest runs; ``--no-pipeline`` forces the separate flows).
4. the total latency is the arrival time of the first alert for the object at the receiver
   (``time.time()``, same machine) minus t0. Every alert received must carry a valid HMAC
   signature and the object's designation; its kinds are printed.

CPU: the CPU seconds of the stages (this process, and the LocalCluster's worker and nanny
processes once they have exited: ``RUSAGE_CHILDREN``; the embedded Prefect server and the API
server are not counted) vary much less with the load than the wall times: on an idle machine
with 2 workers the stages take at least about half of them.

Stage times: ``ingest`` = the POSTs (request sent to the last receipt read), ``fit``,
``monitor`` and ``deliver`` = each stage's wall time (Prefect overhead included, and the
LocalCluster start in the first stage that needs it), ``pipeline`` = the whole pipeline call
(it returns after the cluster has stopped, so it can end after the alert arrived), ``total`` =
arrival at the webhook − t0. Also printed once: the first flow run of the process (the embedded Prefect
server starting) and a bare LocalCluster start/stop, for context.

What this does not include: the time until the pipeline is started. On the embedded defaults
nothing starts it by itself; with a Prefect server, the deployments run it hourly (scope
"changed") or on the ``neodefense.submission.received`` event (see docs/scale.md).

Wall times depend on what else runs on the machine: the load average is printed before and
after every run.

    .venv/bin/python benchmarks/bench_tracklet_to_alert.py [--repeats 3] [--cases known new]
        [--object 2008_TC3.obs80] [--known-steps 1] [--step-hours 1] [--years Y] [--samples N]
        [--cross-check-samples N] [--no-pipeline] [--keep DIR] [--timeout 60]
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import importlib.util
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "src" / "neodefense" / "data" / "demo"
STAGES = ("ingest", "fit", "monitor", "deliver")


# -- the webhook receiver ---------------------------------------------------------------------------

@dataclass
class Arrival:
    """One POST the receiver answered: unix time of arrival, headers, body."""

    time_s: float
    headers: dict[str, str]
    body: bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _ReceiverServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = b'{"ok":true}'
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("type") == "neodefense.verification":
            reply = json.dumps({"challenge": data.get("challenge")}).encode()
        else:
            self.server.record(Arrival(arrived, {k.lower(): v for k, v in self.headers.items()},
                                       body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class _ReceiverServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.arrivals: list[Arrival] = []
        self.arrived = threading.Condition()

    def record(self, arrival: Arrival) -> None:
        with self.arrived:
            self.arrivals.append(arrival)
            self.arrived.notify_all()


class Receiver:
    """A webhook endpoint on ``http://127.0.0.1:<port>/hook`` (a thread of this process) that
    answers verification challenges and records every alert POST with its arrival time."""

    def __init__(self) -> None:
        self._server = _ReceiverServer()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def clear(self) -> None:
        with self._server.arrived:
            self._server.arrivals.clear()

    def wait_for(self, n: int, timeout_s: float) -> list[Arrival]:
        """The arrivals once there are at least ``n`` (fewer after ``timeout_s``)."""
        with self._server.arrived:
            self._server.arrived.wait_for(lambda: len(self._server.arrivals) >= n, timeout_s)
            return list(self._server.arrivals)


# -- the API server (a subprocess running this file with --serve) ------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(catalog_url: str, port: int) -> None:
    """Run uvicorn over the catalog at ``catalog_url`` (the subprocess's job)."""
    import uvicorn

    os.environ["NEODEFENSE_BENCH_CATALOG"] = catalog_url
    uvicorn.run("bench_tracklet_to_alert:make_app", factory=True, host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


def make_app():  # noqa: ANN201 - uvicorn factory
    from neodefense.api import create_app

    return create_app(catalog_url=os.environ["NEODEFENSE_BENCH_CATALOG"])


@contextlib.contextmanager
def api_server(catalog_url: str) -> Iterator[str]:
    """The API over ``catalog_url`` on 127.0.0.1 in a subprocess; its base URL."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, __file__, "--serve", catalog_url,
                                "--port", str(port)], env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the API server exited with status {process.returncode}")
            try:
                if httpx.get(f"{base}/openapi.json", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API server did not come up within 180 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- observations, settings, catalogs ---------------------------------------------------------------

def load_steps(name: str, step_hours: float) -> tuple[Any, str, list[np.ndarray]]:
    """The object's batch, its designation and the new observation indices of every replay step
    that brought some (discovery tracklet first)."""
    from neodefense.impacts.replay import TRACKLET_HOURS, replay_steps
    from neodefense.observations import io as obs_io

    batch = obs_io.read(DEMO / name).batch
    designation = Path(name).stem.replace("_", " ")
    steps, fed = [], np.zeros(len(batch), dtype=bool)
    for _, idx in replay_steps(batch, step_hours, TRACKLET_HOURS):
        new = idx[~fed[idx]]
        if len(new):
            fed[new] = True
            steps.append(new)
    return batch, designation, steps


def by_station(batch: Any, idx: np.ndarray) -> dict[str, np.ndarray]:
    stations = batch["stn"][idx]
    return {str(s): idx[stations == s] for s in sorted(set(stations.tolist()))}


def write_settings(data_dir: Path, args: argparse.Namespace) -> Path:
    """The settings file of one catalog directory: data_dir, the embedded catalog, and the
    monitoring overrides given on the command line (none: production settings)."""
    lines = ["[paths]", f'data_dir = "{data_dir.as_posix()}"', "[catalog]", 'url = ""']
    monitoring = {"years": args.years, "n_samples": args.samples,
                  "cross_check_samples": args.cross_check_samples}
    given = {k: v for k, v in monitoring.items() if v is not None}
    if given:
        lines.append("[monitoring]")
        lines += [f"{k} = {v}" for k, v in given.items()]
    path = data_dir / "bench-settings.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def catalog_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'catalog.sqlite'}"


def pipeline_available(args: argparse.Namespace) -> bool:
    return not args.no_pipeline and importlib.util.find_spec("flows.pipeline") is not None


def run_stages(url: str, settings_path: Path, use_pipeline: bool) -> dict[str, Any]:
    """Fit, monitor and deliver (the pipeline, or the three flows in order); wall times (s)
    and what each returned."""
    if use_pipeline:
        from flows.pipeline import pipeline

        t0 = time.perf_counter()
        result = pipeline(catalog_url=url, config_path=str(settings_path), ingest=False,
                          scope="changed", deliver=True)
        return {"pipeline": time.perf_counter() - t0,
                "pipeline_timings_s": dict(result.get("timings_s") or {}),
                "fits": result.get("fits") or [], "assessments": result.get("assessments") or []}
    from flows.alerts import deliver_alerts
    from flows.impact_monitoring import monitor_changed_objects
    from flows.orbits import fit_changed_objects

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    out["fits"] = fit_changed_objects(catalog_url=url, config_path=str(settings_path))
    t1 = time.perf_counter()
    out["assessments"] = monitor_changed_objects(catalog_url=url, config_path=str(settings_path))
    t2 = time.perf_counter()
    out["delivery"] = deliver_alerts(catalog_url=url, config_path=str(settings_path))
    t3 = time.perf_counter()
    out.update(fit=t1 - t0, monitor=t2 - t1, deliver=t3 - t2)
    return out


def build_template(directory: Path, batch: Any, preload: list[np.ndarray],
                   args: argparse.Namespace) -> dict[str, Any]:
    """A catalog in ``directory`` holding ``preload`` (one MPC submission per step) fitted,
    monitored and alerted by the pipeline (not timed; returns what the stages said)."""
    from neodefense.alerts.replay import submission
    from neodefense.catalog import db
    from neodefense.catalog.ingest import ingest

    directory.mkdir(parents=True)
    settings_path = write_settings(directory, args)
    url = catalog_url(directory)
    engine = db.connect(url)
    try:
        for k, idx in enumerate(preload):
            data, ext = submission(batch.take(idx))
            ingest(engine, data, f"step-{k}.{ext}", "MPC")
    finally:
        engine.dispose()
    if not preload:
        return {}
    return run_stages(url, settings_path, pipeline_available(args))


# -- one timed run ----------------------------------------------------------------------------------

@dataclass
class Run:
    case: str
    stages_s: dict[str, float] = field(default_factory=dict)
    total_s: float = float("nan")
    alert_kinds: list[list[str]] = field(default_factory=list)
    alert_ids: list[str] = field(default_factory=list)
    fit_status: list[str] = field(default_factory=list)
    monitor: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()
    error: str = ""


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished (and waited-for) descendants: after a pipeline
    run, its LocalCluster's worker and nanny processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _subscribe(http: Any, hook_url: str) -> str:
    """Subscribe the receiver to every alert through the API; the channel's signing secret."""
    answer = http.post("/v1/subscriptions", json={"name": "bench-receiver",
                                                  "webhook": {"url": hook_url}, "criteria": {}})
    answer.raise_for_status()
    body = answer.json()
    if not all(v["verified"] for v in body["verification"]):
        raise RuntimeError(f"webhook not verified: {body['verification']}")
    (channel,) = [ch for ch in body["channels"] if ch["kind"] == "webhook"]
    return str(channel["secret"])


def _accounts(url: str, stations: list[str]) -> dict[str, str]:
    """One observatory account and token per station: station → token."""
    from neodefense.catalog import access, db

    engine = db.connect(url)
    try:
        tokens = {}
        for stn in stations:
            account = access.create_account(engine, f"bench-{stn}", stations=[stn])
            tokens[stn] = access.create_token(engine, f"bench-{stn}", access.OBSERVATORY,
                                              account["id"])[1]
        return tokens
    finally:
        engine.dispose()


def one_run(case: str, template: Path, run_dir: Path, batch: Any, designation: str,
            tracklet: np.ndarray, receiver: Receiver, args: argparse.Namespace) -> Run:
    import httpx

    from neodefense.alerts.replay import submission
    from neodefense.alerts.signing import verify

    shutil.copytree(template, run_dir)
    settings_path = write_settings(run_dir, args)
    url = catalog_url(run_dir)
    parts = by_station(batch, tracklet)
    tokens = _accounts(url, list(parts))
    run = Run(case)
    receiver.clear()
    with api_server(url) as base, httpx.Client(base_url=base, timeout=600.0) as http:
        secret = _subscribe(http, receiver.url)
        run.load_before = os.getloadavg()
        t0_unix, t0 = time.time(), time.perf_counter()
        for stn, idx in parts.items():
            data, ext = submission(batch.take(idx))
            answer = http.post("/v1/submissions", content=data,
                               params={"filename": f"{stn}-tracklet.{ext}"},
                               headers={"Authorization": f"Bearer {tokens[stn]}",
                                        "Content-Type": "text/plain"})
            receipt = answer.json()
            if answer.status_code != 201 or receipt["accepted"] != len(idx):
                raise RuntimeError(f"{stn}: HTTP {answer.status_code}: {receipt}")
        run.stages_s["ingest"] = time.perf_counter() - t0
        cpu_me0, cpu_kids0 = time.process_time(), _children_cpu_s()
        stages = run_stages(url, settings_path, pipeline_available(args))
        run.cpu_s = {"here": time.process_time() - cpu_me0,
                     "cluster": _children_cpu_s() - cpu_kids0}
    for key in ("fit", "monitor", "deliver", "pipeline"):
        if key in stages:
            run.stages_s[key] = stages[key]
    for key, value in (stages.get("pipeline_timings_s") or {}).items():
        run.stages_s[f"pipeline:{key}"] = float(value)
    run.fit_status = [f"{f.get('designation')}: {f.get('status')}" for f in stages.get("fits", [])]
    run.monitor = [f"{a.get('designation')}: {a.get('status')}, IP {a.get('cumulative_ip')}, "
                   f"{a.get('n_vi')} VI, {a.get('runtime_s')} s"
                   for a in stages.get("assessments", [])]
    arrivals = receiver.wait_for(1, args.timeout)
    run.load_after = os.getloadavg()
    mine = []
    for arrival in arrivals:
        if not verify(secret, arrival.headers.get("x-neodefense-signature", ""), arrival.body):
            raise RuntimeError("an alert arrived with a bad signature")
        payload = json.loads(arrival.body)
        if payload["designation"] == designation:
            mine.append((arrival, payload))
    if not mine:
        run.error = "no alert for the object reached the webhook"
        return run
    run.total_s = mine[0][0].time_s - t0_unix
    run.alert_ids = [p["alert_id"] for _, p in mine]
    run.alert_kinds = [list(p["kinds"]) for _, p in mine]
    return run


# -- report -----------------------------------------------------------------------------------------

def _load(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"


def report(case: str, runs: list[Run]) -> None:
    good = [r for r in runs if not r.error]
    print(f"\n== {case}: {len(good)} of {len(runs)} runs reached the webhook")
    for r in runs:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r.stages_s.items())
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in r.cpu_s.items())
        print(f"  run: total {r.total_s:.2f} s | {stages} | CPU s of the stages: {cpu} | "
              f"load {_load(r.load_before)} -> {_load(r.load_after)} {r.error}")
        print(f"       fit {r.fit_status}; monitor {r.monitor}")
        print(f"       alerts {list(zip(r.alert_ids, r.alert_kinds, strict=True))}")
    if not good:
        return
    keys = [k for k in (*STAGES, "pipeline") if any(k in r.stages_s for r in good)]
    keys += sorted({k for r in good for k in r.stages_s if k.startswith("pipeline:")})
    print(f"  median of {len(good)}:")
    for key in keys:
        values = [r.stages_s[key] for r in good if key in r.stages_s]
        print(f"    {key:<22} {statistics.median(values):8.2f} s   "
              f"(min {min(values):.2f}, max {max(values):.2f})")
    totals = [r.total_s for r in good]
    print(f"    {'total (POST -> webhook)':<22} {statistics.median(totals):8.2f} s   "
          f"(min {min(totals):.2f}, max {max(totals):.2f})")
    cpu = [sum(r.cpu_s.values()) for r in good if r.cpu_s]
    if cpu:
        print(f"    {'CPU s of the stages':<22} {statistics.median(cpu):8.2f} s   (this process "
              f"+ the LocalCluster's processes; the Prefect and API servers not counted)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=("known", "new"), default=["known", "new"])
    parser.add_argument("--object", default="2008_TC3.obs80",
                        help="a file of src/neodefense/data/demo")
    parser.add_argument("--known-steps", type=int, default=1,
                        help="replay steps (with new observations) the catalog knows already")
    parser.add_argument("--step-hours", type=float, default=1.0)
    parser.add_argument("--years", type=float, default=None, help="monitoring horizon override")
    parser.add_argument("--samples", type=int, default=None, help="monitoring n_samples override")
    parser.add_argument("--cross-check-samples", type=int, default=None)
    parser.add_argument("--no-pipeline", action="store_true",
                        help="run the fit, monitor and deliver flows even if flows/pipeline.py exists")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for the webhook after the stages returned (the "
                             "delivery stage sends synchronously: the alert is normally there)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="work in this directory and keep it (default: a temporary one)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-tracklet-"))
    work.mkdir(parents=True, exist_ok=True)
    from neodefense import config

    # embedded Prefect: its temporary server's state lives in the work directory; on a busy
    # machine the server needs more than Prefect's default start-up timeout (as the demo)
    config.apply_prefect_environment(config.load().with_overrides(
        paths={"data_dir": str(work)}))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    batch, designation, steps = load_steps(args.object, args.step_hours)
    if args.known_steps >= len(steps):
        parser.error(f"{args.object} has {len(steps)} steps with new observations")
    print(f"object {designation}: {len(batch)} observations in {len(steps)} steps of "
          f"{args.step_hours:g} h; pipeline: "
          f"{'flows.pipeline' if pipeline_available(args) else 'fit, monitor, deliver flows'}; "
          f"monitoring overrides: years={args.years} n_samples={args.samples} "
          f"cross_check_samples={args.cross_check_samples} (None: config/neodefense.toml)")
    print(f"load average at start: {_load(os.getloadavg())} on {os.cpu_count()} CPUs; work {work}")

    from neodefense import compute

    t0 = time.perf_counter()
    with compute.client(config.load()):
        pass
    print(f"LocalCluster start + stop (2 workers, per-worker set-up): "
          f"{time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    from flows.alerts import deliver_alerts

    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    deliver_alerts(catalog_url=catalog_url(empty), config_path=str(write_settings(empty, args)))
    print(f"first flow run of the process (embedded Prefect server start): "
          f"{time.perf_counter() - t0:.1f} s")

    cases: dict[str, tuple[list[np.ndarray], np.ndarray]] = {
        "known": (steps[:args.known_steps], steps[args.known_steps]),
        "new": ([], steps[0]),
    }
    with Receiver() as receiver:
        for case in args.cases:
            preload, tracklet = cases[case]
            template = work / f"template-{case}"
            t0 = time.perf_counter()
            setup = build_template(template, batch, preload, args)
            print(f"\n{case}: template catalog with {sum(len(i) for i in preload)} observations "
                  f"built in {time.perf_counter() - t0:.1f} s (not timed) "
                  f"{[a.get('status') for a in setup.get('assessments', [])]}; tracklet: "
                  f"{len(tracklet)} observations by "
                  f"{', '.join(f'{s} ({len(i)})' for s, i in by_station(batch, tracklet).items())}")
            runs = []
            for k in range(args.repeats):
                run_dir = work / f"run-{case}-{k}"
                try:
                    run = one_run(case, template, run_dir, batch, designation, tracklet,
                                  receiver, args)
                finally:
                    if args.keep is None:
                        shutil.rmtree(run_dir, ignore_errors=True)
                print(f"  {case} run {k + 1}: total {run.total_s:.2f} s "
                      f"{ {s: round(v, 2) for s, v in run.stages_s.items()} } CPU s "
                      f"{ {s: round(v, 1) for s, v in run.cpu_s.items()} } "
                      f"alerts {run.alert_kinds} {run.error}", flush=True)
                runs.append(run)
            report(case, runs)
    print(f"\nload average at end: {_load(os.getloadavg())}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
