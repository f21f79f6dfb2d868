"""The main job on embedded defaults (README command 1): the whole pipeline on bundled real data.

``neodefense demo`` runs, on one machine and with nothing configured:

1. a fresh SQLite catalog in ``var/demo/``, embedded Prefect (a temporary local server whose state
   lives in ``var/demo/prefect``) and one Dask LocalCluster shared by every pipeline run;
2. the dashboard (:func:`neodefense.api.app.create_app` under uvicorn, in a thread) on the
   ``[api]`` port, or a free one when that is taken; its address is printed first so the run can
   be watched;
3. a local webhook receiver and SMTP mail sink (:mod:`neodefense.demo_sinks`) and a subscriber
   with a webhook and an e-mail channel, subscribed through ``POST /v1/subscriptions`` — the
   webhook verified by the real challenge;
4. **2008 TC3 replayed in time order**: its observations are dropped into the inbox in the order
   they were made, in a few steps (:func:`tc3_replay_steps`: the discovery tracklet, then every
   :data:`TC3_STEP_HOURS` hours the observations made meanwhile) and after each step the pipeline
   runs — ingest → fit → monitor → alerts → delivery — with a short horizon
   (:data:`REPLAY_MONITORING`: an imminent impactor's impact is days away);
5. Apophis, Bennu, 2024 BX1 and the short arc 2023 QR6, one submission and one pipeline run each,
   monitored over 100 years (:data:`SEARCH_MONITORING`: :data:`DEMO_LOV_SAMPLES` points on the
   line of variations instead of production's 1,001, and no Monte Carlo cross-check, to keep
   the demo within 10 minutes on 2 cores);
6. every alert is printed as the webhook and the mail sink receive it; then a summary: orbits, the
   impact assessments and the risk list, 2008 TC3's predicted entry beside the recorded fireball
   (:data:`TC3_FIREBALL`), alerts raised and delivered, the dashboard address.

Each step is one run of :func:`flows.pipeline.pipeline` (one Prefect flow, a subflow per stage) on
the demo's cluster (its address in the settings file). ``use_prefect=False`` (``--no-prefect``) runs the
same stages by calling the package functions in this process: no Prefect, no Dask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from neodefense import config

#: the inbox folder (submitter) the bundled files are dropped into
SUBMITTER = "MPC"
#: 2008 TC3's bundled observations, replayed in time order
TC3_FILE = "2008_TC3.obs80"
#: the other bundled files, in the order they are submitted after the replay
OTHER_FILES: tuple[str, ...] = ("99942_Apophis.obs80", "101955_Bennu.obs80", "2024_BX1.obs80",
                                "2023_QR6.obs80")
#: every bundled file → the inbox folder it is dropped into
DEMO_FILES: dict[str, str] = {name: SUBMITTER for name in (TC3_FILE, *OTHER_FILES)}

#: real time between two steps of the TC3 replay (hours): 6 steps, 4 → 15 → 23 → 65 → 471 → 883
#: observations (1 h, as ``neodefense alerts replay``, would be 20 steps)
TC3_STEP_HOURS = 4.0
#: the discovery tracklet: the discovery station's observations within this many hours
TC3_TRACKLET_HOURS = 1.0
#: demo monitoring settings (production defaults in config/neodefense.toml [monitoring])
DEMO_LOV_SAMPLES = 101
#: no Monte Carlo cross-check in the demo: its propagations are ~1/3 of the monitoring time, and
#: 50 samples (the previous demo's) bound an IP only to < 0.06 (production: 200, [monitoring])
DEMO_CROSS_CHECK_SAMPLES = 0
#: the replay steps: impacts within ~18 days after the last observation (as ``alerts replay``)
TC3_REPLAY_YEARS = 0.05
TC3_REPLAY_SAMPLES = 101
REPLAY_MONITORING: dict[str, Any] = {"method": "lov", "years": TC3_REPLAY_YEARS,
                                     "n_samples": TC3_REPLAY_SAMPLES, "bodies": ["earth"],
                                     "seed": 0, "cross_check_samples": 0}
#: the other objects: the 100-year search for Earth and Moon impacts
SEARCH_MONITORING: dict[str, Any] = {"method": "lov", "years": 100.0,
                                     "n_samples": DEMO_LOV_SAMPLES, "bodies": ["earth", "moon"],
                                     "seed": 0, "cross_check_samples": DEMO_CROSS_CHECK_SAMPLES}
#: the demo's subscriber (every alert, to the local webhook and the local mail sink)
SUBSCRIBER_EMAIL = "planetary-defence@demo.localhost"
#: the recorded 2008 TC3 fireball (CNEOS fireball table)
TC3_FIREBALL = {"time_utc": "2008-10-07T02:45:45", "alt_km": 38.9, "lat_deg": 20.9,
                "lon_deg": 31.4}

StageRunner = Callable[[str, Path, dict[str, Any]], dict[str, Any]]


def _data_file(name: str) -> Path:
    return Path(str(resources.files("neodefense.data").joinpath("demo").joinpath(name)))


def demo_files() -> list[tuple[str, Path]]:
    """(submitter, path) of every bundled observation file."""
    return [(submitter, _data_file(name)) for name, submitter in DEMO_FILES.items()]


# -- the TC3 replay ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReplayStep:
    """One step of the replay: the observations made up to ``cutoff_utc`` that had not arrived
    yet (``indices`` into the batch, time order), the time of the newest of them
    (``last_obs_utc``) and how many have arrived with them (``n_total``)."""

    number: int
    cutoff_mjd_utc: float
    cutoff_utc: str
    indices: Any  # numpy int array
    last_obs_utc: str
    n_total: int


def tc3_observations() -> Any:
    """2008 TC3's bundled observations (an :class:`~neodefense.observations.batch.ObservationBatch`)."""
    from neodefense.observations import io as obs_io

    path = _data_file(TC3_FILE)
    return obs_io.read(path.read_bytes(), file=path.name, fmt="obs80").batch


def tc3_replay_steps(batch: Any, step_hours: float = TC3_STEP_HOURS,
                     tracklet_hours: float = TC3_TRACKLET_HOURS) -> list[ReplayStep]:
    """The observations in the order they were made, as submissions: the discovery tracklet, then
    every ``step_hours`` the observations made since (steps that bring nothing are left out). The
    split is :func:`neodefense.impacts.replay.replay_steps`'s, so the demo replays exactly what
    ``neodefense alerts replay`` does."""
    import numpy as np

    from neodefense import timescales
    from neodefense.impacts.replay import replay_steps

    t_mjd_utc = np.asarray(batch.columns["obsTime_mjd"], dtype=float)
    fed = np.zeros(len(batch), dtype=bool)
    steps: list[ReplayStep] = []
    for cutoff, idx in replay_steps(batch, step_hours, tracklet_hours):
        new = idx[~fed[idx]]
        if not len(new):
            continue
        fed[new] = True
        cutoff_utc, last_utc = timescales.utc_mjd_to_iso(
            np.array([cutoff, t_mjd_utc[new].max()]), 0)
        steps.append(ReplayStep(len(steps) + 1, float(cutoff), str(cutoff_utc), new,
                                str(last_utc), int(fed.sum())))
    return steps


def drop_in_inbox(inbox_dir: Path, name: str, data: bytes) -> Path:
    """Write a submission into an inbox folder the way an uploader should: as ``.part``, then
    renamed (the ingest skips ``.part`` files), so a half-written file is never ingested."""
    inbox_dir.mkdir(parents=True, exist_ok=True)
    part = inbox_dir / f"{name}.part"
    part.write_bytes(data)
    target = inbox_dir / name
    part.replace(target)
    return target


# -- settings, dashboard, subscriber --------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_settings(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A settings file (``$NEODEFENSE_CONFIG`` layout) with ``sections`` (``"alerts.smtp"`` is a
    sub-table); the flows read it by ``config_path`` in whatever process they run."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, or on a free port when that one is taken."""
    for candidate in (port, 0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(128)
        return sock
    raise OSError(f"cannot listen on {host}")


class Dashboard:
    """The API and dashboard (``create_app``) under uvicorn in a daemon thread."""

    def __init__(self, settings: config.Settings) -> None:
        import uvicorn

        from neodefense.api.app import create_app

        api = settings.raw.get("api", {})
        host = str(api.get("host") or "127.0.0.1")
        self._sock = _listening_socket(host, int(api.get("port") or 0))
        self.url = f"http://{host}:{self._sock.getsockname()[1]}/"
        self._server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning",
                                                     access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="demo-dashboard", daemon=True)

    def start(self, timeout_s: float = 30.0) -> Dashboard:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def subscribe(hook: Any, email: str, *, dashboard_url: str | None, engine: Any,
              settings: config.Settings, name: str = "demo") -> dict[str, Any]:
    """Subscribe ``name`` to every alert with a webhook (``hook.url``) and an e-mail channel.

    Through the running API (``POST /v1/subscriptions``: the server sends the verification
    challenge, the hook answers it) when ``dashboard_url`` is given, else with the same catalog
    and challenge functions the API uses. Sets ``hook.secret`` so the hook checks signatures.
    Returns ``{"id", "channels": [{"kind", "target", "status"}], "verified": bool}``.
    """
    if dashboard_url:
        import httpx

        resp = httpx.post(dashboard_url + "v1/subscriptions", timeout=30.0, json={
            "name": name, "email": email, "webhook": {"url": hook.url, "format": "json"},
            "criteria": {}})
        resp.raise_for_status()
        body = resp.json()
        channels = body["channels"]
    else:
        from neodefense.api.subscriptions import send_challenge
        from neodefense.catalog import alerts as catalog_alerts

        sub = catalog_alerts.add_subscriber(engine, name, {}, [
            {"kind": "email", "target": email},
            {"kind": "webhook", "target": hook.url, "format": "json",
             "status": catalog_alerts.UNVERIFIED}])
        timeout_s = float(settings.raw.get("api", {}).get("webhook_verify_timeout_s", 5.0))
        for ch in sub["channels"]:
            if ch["kind"] == "webhook" and send_challenge(ch, sub["id"], timeout_s)[0]:
                catalog_alerts.verify_channel(engine, ch["id"])
        body = {"id": sub["id"]}
        secrets = {ch["id"]: ch.get("secret") for ch in sub["channels"]}
        channels = [{**ch, "secret": secrets.get(ch["id"])} for ch in
                    catalog_alerts.subscribers(engine, subscriber_id=sub["id"])[0]["channels"]]
    webhook = next(ch for ch in channels if ch["kind"] == "webhook")
    hook.secret = webhook.get("secret")
    return {"id": body["id"], "channels": [{k: ch.get(k) for k in ("kind", "target", "status")}
                                           for ch in channels],
            "verified": webhook.get("status") == "active"}


# -- one pipeline run ----------------------------------------------------------------------------

def _run_pipeline(catalog_url: str, config_path: Path, monitoring: dict[str, Any]) -> dict[str, Any]:
    """One run of :func:`flows.pipeline.pipeline`: ingest → fit → monitor → alerts → delivery,
    on the cluster at the settings file's ``[dask] address``."""
    from flows.pipeline import pipeline

    return pipeline(catalog_url=catalog_url, config_path=str(config_path), ingest=True,
                    scope="changed", deliver=True, deliver_wait_s=0.0, monitoring=monitoring)


def _run_direct(catalog_url: str, config_path: Path, monitoring: dict[str, Any]) -> dict[str, Any]:
    """The same stages without Prefect or Dask (``--no-prefect``): the package functions the flows
    call, in this process."""
    from neodefense import inbox
    from neodefense.alerts.deliver import DeliveryOptions, deliver_due
    from neodefense.catalog import db, ingest

    settings = config.load(config_path)
    engine = db.connect(catalog_url)
    try:
        t0 = time.perf_counter()
        receipts = []
        for item in inbox.scan(settings.inbox_root):
            receipt = ingest.ingest(engine, item.path, filename=item.path.name,
                                    submitter=item.submitter).as_json()
            inbox.settle(item, receipt, settings.processed_dir, settings.quarantine_dir)
            receipts.append(receipt)
        t1 = time.perf_counter()
        fits = _fit_directly(engine, settings)
        t2 = time.perf_counter()
        assessed = _monitor_directly(engine, settings, monitoring)
        t3 = time.perf_counter()
        delivery = deliver_due(engine, DeliveryOptions.from_settings(settings.raw["alerts"]))
        t4 = time.perf_counter()
    finally:
        engine.dispose()
    return {"receipts": receipts, "fits": fits, "assessments": assessed, "delivery": delivery,
            "timings_s": {"ingest": t1 - t0, "fit": t2 - t1, "monitor": t3 - t2,
                          "deliver": t4 - t3}}


def _fit_directly(engine: Any, settings: config.Settings) -> list[dict[str, Any]]:
    """The orbit stage in this process: every object whose fit set changed."""
    from neodefense.catalog import solutions
    from neodefense.orbits.fit import fit_orbit

    options = settings.raw["orbits"]
    rows = []
    for object_id, designation in solutions.objects_to_fit(engine):
        batch, ids = solutions.observations_with_ids(engine, object_id)
        solution = fit_orbit(batch, designation, nongrav=options["nongrav"],
                             time_limit_s=float(options["time_limit_s"]))
        solution_id = solutions.store_solution(
            engine, object_id, solution, ids,
            {"nongrav": options["nongrav"], "exclude": [], "epoch_tdb_jd": None,
             "requested_by": "demo"})
        rows.append({"object_id": object_id, "designation": designation, "status": solution.status,
                     "solution_id": solution_id, "rms_arcsec": solution.rms_arcsec,
                     "n_used": solution.n_used, "n_obs": solution.n_obs,
                     "message": solution.message})
    return rows


def _monitor_directly(engine: Any, settings: config.Settings,
                      monitoring: dict[str, Any]) -> list[dict[str, Any]]:
    """The monitoring stage in this process: every object whose current solution has no
    assessment; alerts raised as each assessment is stored."""
    from neodefense.catalog import assessments, solutions
    from neodefense.catalog.alerts import AlertConfig
    from neodefense.impacts.monitor import monitor_solution

    options = {**settings.raw["monitoring"], **monitoring}
    alert_config = AlertConfig.from_settings(settings.raw["alerts"])
    cross = int(options.get("cross_check_samples") or 0)
    rows = []
    for object_id, designation, solution_id in assessments.solutions_to_monitor(engine):
        solution = solutions.load_solution(engine, solution_id)
        batch, _ = solutions.observations_with_ids(engine, object_id)
        a = monitor_solution(solution, batch=batch, method=str(options["method"]),
                             years=float(options["years"]),
                             n_samples=int(options["n_samples"] or 0) or None,
                             bodies=tuple(options["bodies"]), seed=int(options["seed"]),
                             entry_altitude_km=float(options["entry_altitude_km"]),
                             cross_check=cross > 0, cross_check_samples=cross or None)
        assessment_id = assessments.store_assessment(engine, solution_id, a,
                                                     alert_config=alert_config)
        rows.append({"object_id": object_id, "designation": designation,
                     "solution_id": solution_id, "assessment_id": assessment_id,
                     "status": a.status, "message": a.message, "cumulative_ip": a.cumulative_ip,
                     "torino_max": a.torino_max, "n_vi": len(a.virtual_impactors),
                     "runtime_s": a.runtime_s})
    return rows


# -- output ---------------------------------------------------------------------------------------

def _say(text: str = "") -> None:
    """Print a line without breaking a progress bar that is being drawn."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stdout)
    sys.stdout.flush()


def _fmt_ip(value: Any) -> str:
    from neodefense.alerts.rules import format_ip

    return format_ip(value) if value is not None else "-"


def _fit_text(fit: dict[str, Any]) -> str:
    if fit["status"] == "arc_too_short":
        return f"arc too short for a fit ({fit['n_obs']} obs): systematic ranging"
    return f"fit {fit['status']} ({fit['n_used']}/{fit['n_obs']} obs, RMS {fit['rms_arcsec']:.2f}\")"


def _result_line(result: dict[str, Any], alerts: list[dict[str, Any]], wall_s: float) -> str:
    """'fit converged (15/15 obs, RMS 0.50") · monitor ok: IP 0.924, 1 VI · 1 alert(s) raised,
    2 deliveries [fit 2 s, monitor 5 s, run 9 s]' for one pipeline run and the alerts it raised."""
    parts = [_fit_text(fit) for fit in result.get("fits") or []]
    for a in result.get("assessments") or []:
        parts.append(f"monitor {a['status']}: IP {_fmt_ip(a.get('cumulative_ip'))}, "
                     f"{a.get('n_vi', 0)} VI")
    delivered = int((result.get("delivery") or {}).get("delivered", 0))
    parts.append(f"{len(alerts)} alert(s) raised, {delivered} deliveries")
    timings = result.get("timings_s") or {}
    stages = [f"{k} {timings[k]:.0f} s" for k in ("fit", "monitor") if timings.get(k, 0) >= 0.5]
    return " · ".join(parts) + f" [{', '.join([*stages, f'run {wall_s:.0f} s'])}]"


def _new_alerts(engine: Any, seen: set[int]) -> list[dict[str, Any]]:
    """The alerts raised since ``seen`` (which is updated)."""
    from neodefense.catalog import alerts as catalog_alerts

    fresh = [a for a in catalog_alerts.alerts(engine) if a["id"] not in seen]
    seen.update(a["id"] for a in fresh)
    return fresh


def _lead_time_note(step: ReplayStep, alerts: list[dict[str, Any]], announced: bool) -> str:
    """The warning time of the first IMMINENT alert: from the step's last observation to the
    recorded fireball (what the alert would have given in 2008)."""
    from astropy.time import Time

    if announced or not any("imminent" in (a.get("kinds") or ()) for a in alerts):
        return ""
    hours = (Time(TC3_FIREBALL["time_utc"], scale="utc")
             - Time(step.last_obs_utc, scale="utc")).to_value("hour")
    return (f"\n    → the first IMMINENT alert: issued on observations up to {step.last_obs_utc} "
            f"UTC, {hours:.1f} h before the recorded fireball")


def _print_orbits(engine: Any, designations: list[str]) -> None:
    from neodefense.catalog import solutions

    _say(f"\norbits (full n-body, ASSIST on DE440)\n  {'object':<12} {'status':<14} {'a [au]':>9} "
         f"{'e':>7} {'i [deg]':>8} {'RMS [as]':>8} {'used/obs':>11} {'H':>6} {'MOID [au]':>10}")
    nan = float("nan")
    for designation in designations:
        sol = solutions.latest_solution(engine, designation, ok_only=False) or {}
        el = sol.get("elements") or {}
        h, moid, rms = sol.get("H"), sol.get("moid_au"), sol.get("rms_arcsec")
        _say(f"  {designation:<12} {sol.get('status', '-'):<14} {el.get('a_au', nan):>9.5f} "
             f"{el.get('e', nan):>7.4f} {el.get('i_deg', nan):>8.3f} "
             f"{rms if rms is not None else nan:>8.2f} "
             f"{sol.get('n_used', 0):>5}/{sol.get('n_obs', 0):<5} "
             f"{h if h is not None else nan:>6.2f} {moid if moid is not None else nan:>10.6f}")


def _tc3_comparison(engine: Any, assessment: dict[str, Any]) -> str | None:
    """2008 TC3's predicted entry at the fireball's altitude beside the recorded fireball."""
    from astropy.time import Time

    from neodefense.catalog import solutions
    from neodefense.impacts.entry import entry_point

    for v in assessment.get("virtual_impactors") or []:
        if v["body"] != "earth" or not v.get("entry"):
            continue
        sol = solutions.load_solution(engine, assessment["solution_id"])
        e = entry_point(sol.epoch_tdb_jd, sol.state_icrf_au, v["time_tdb_jd"],
                        altitude_km=TC3_FIREBALL["alt_km"]) or v["entry"]
        dt_s = (Time(e["time_utc"], scale="utc") - Time(TC3_FIREBALL["time_utc"], scale="utc")).sec
        return (f"2008 TC3 predicted at {e['alt_km']:g} km: {e['time_utc']} UTC, "
                f"{e['lat_deg']:.2f}°N {e['lon_deg']:.2f}°E\n"
                f"  recorded fireball:           {TC3_FIREBALL['time_utc']} UTC, "
                f"{TC3_FIREBALL['lat_deg']}°N {TC3_FIREBALL['lon_deg']}°E ({dt_s:+.1f} s; the "
                f"recorded place is the first detection at 65.4 km)")
    return None


def _print_assessments(engine: Any, designations: list[str]) -> str | None:
    """The latest assessment of each object; returns the TC3 comparison (or None)."""
    from neodefense.catalog import assessments

    _say(f"\nimpact monitoring (latest assessment of each object)\n  {'object':<12} {'status':<22} "
         f"{'years':>6} {'VAs':>5} {'IP cum':>9} {'PS cum':>7} {'TS':>3} {'VIs':>4} "
         f"{'first VI (UTC)':<22}")
    comparison = None
    for designation in designations:
        a = assessments.latest_assessment(engine, designation)
        if a is None:
            _say(f"  {designation:<12} (not monitored)")
            continue
        vis = a.get("virtual_impactors") or []
        first = min((v["date_utc"] for v in vis), default="")
        ps = "" if a["palermo_cum"] is None else f"{a['palermo_cum']:.2f}"
        _say(f"  {designation:<12} {a['status']:<22} {a['years']:>6g} {a['n_samples']:>5} "
             f"{a['cumulative_ip']:>9.3g} {ps:>7} {a['torino_max']:>3} {len(vis):>4} {first:<22}")
        if designation == "2008 TC3":
            comparison = _tc3_comparison(engine, a)
    return comparison


def _summary(engine: Any, designations: list[str], hook: Any, mail: Any, url: str | None,
             started: float) -> None:
    from neodefense.alerts.messages import risk_table
    from neodefense.catalog import alerts as catalog_alerts

    _print_orbits(engine, designations)
    comparison = _print_assessments(engine, designations)
    rows = catalog_alerts.risk_list(engine)
    _say(f"\nrisk list ({len(rows)} object(s) with virtual impactors, by cumulative Palermo scale)")
    for line in risk_table(rows) if rows else ["(empty)"]:
        _say(f"  {line}")
    _say("")
    _say(comparison or "2008 TC3: no Earth impact found (no entry to compare with the fireball)")
    raised = catalog_alerts.alerts(engine)
    outbox = catalog_alerts.delivery_summary(engine)["deliveries"]
    others = ", ".join(f"{n} {status}" for status, n in sorted(outbox.items()) if status != "delivered")
    _say(f"\nalerts: {len(raised)} raised, {outbox.get('delivered', 0)} deliveries made"
         f"{f' ({others})' if others else ''}; received: {len(hook.alerts)} by the webhook "
         f"(signatures verified), {len(mail.alerts)} by the mail sink")
    if url:
        _say(f"dashboard: {url}  (risk list; 2008 TC3 at {url}objects/2008%20TC3)")
    _say(f"demo finished in {time.perf_counter() - started:.0f} s")


# -- the demo ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_prefect() -> Iterator[None]:
    """Prefect without the ~1 s heartbeat floor per flow run (STACK-NOTES)."""
    try:
        from prefect.settings import temporary_settings

        ctx = temporary_settings(updates={"flows.heartbeat_frequency": None})
    except Exception:  # noqa: BLE001 - an older or newer Prefect without the setting
        ctx = contextlib.nullcontext()
    with ctx:
        yield


def _wait_for_user(serve_seconds: float | None, url: str) -> None:
    """Keep the dashboard up: ``serve_seconds`` if given, else until Enter or Ctrl-C on a
    terminal; not at all when stdin is not a terminal."""
    try:
        if serve_seconds is not None:
            if serve_seconds > 0:
                _say(f"\ndashboard stays up for {serve_seconds:g} s: {url}")
                time.sleep(serve_seconds)
        elif sys.stdin is not None and sys.stdin.isatty():
            input(f"\ndashboard: {url} — press Enter to stop ")
    except (KeyboardInterrupt, EOFError):
        pass


def run(data_dir: Path | None = None, keep: bool = False, use_prefect: bool = True,
        dashboard: bool = True, serve_seconds: float | None = None) -> int:
    """Run the demo (module docstring); 0 when every submission was ingested and every alert
    delivered."""
    started = time.perf_counter()
    base = config.load()
    data_dir = (data_dir or base.data_dir / "demo").resolve()
    if data_dir.exists() and not keep:
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = base.with_overrides(paths={"data_dir": str(data_dir)}, catalog={"url": ""})
    # quiet logs: the demo prints what happens (set PREFECT_LOGGING_LEVEL=INFO to see the flows)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    # the embedded Prefect server migrates a fresh database first: on a busy 2-core machine that
    # takes longer than Prefect's default 20 s wait
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
    if use_prefect:
        config.apply_prefect_environment(settings)

    from neodefense.catalog import db
    from neodefense.demo_sinks import MailSink, WebhookSink

    with contextlib.ExitStack() as stack:
        hook = stack.enter_context(WebhookSink())
        mail = stack.enter_context(MailSink())
        hook.on_arrival = mail.on_arrival = lambda arrival: _say(f"    {arrival.line()}")
        common = {"paths": {"data_dir": data_dir.as_posix()}, "catalog": {"url": ""},
                  "alerts.smtp": {"host": mail.host, "port": mail.port,
                                  "sender": "neodefense@demo.localhost"}}
        settings = settings.with_overrides(alerts={"smtp": common["alerts.smtp"]})
        url = None
        if dashboard:
            board = Dashboard(settings).start()
            stack.callback(board.stop)
            url = board.url
        _say(f"neodefense demo: catalog {settings.catalog_url}")
        _say(f"dashboard: {url or '(off: --no-dashboard)'}" + ("  ← open it to watch" if url else ""))
        engine = db.connect(settings.catalog_url)
        stack.callback(engine.dispose)
        sub = subscribe(hook, SUBSCRIBER_EMAIL, dashboard_url=url, engine=engine, settings=settings,
                        name="demo" if not keep else f"demo-{int(time.time())}")
        _say(f"subscriber {sub['id']} (every alert): webhook {hook.url} "
             f"({'verified by its challenge' if sub['verified'] else 'NOT verified'}), "
             f"e-mail {SUBSCRIBER_EMAIL} via SMTP {mail.host}:{mail.port}")

        if use_prefect:
            from neodefense import compute

            client = stack.enter_context(compute.client(settings))
            common["dask"] = {"address": client.scheduler.address}
            stack.enter_context(_quiet_prefect())
            runner: StageRunner = _run_pipeline
            _say(f"pipeline: flows.pipeline (one Prefect flow, a subflow per stage); embedded "
                 f"Prefect (state in {data_dir / 'prefect'}); "
                 f"Dask LocalCluster {common['dask']['address']} with "
                 f"{len(client.scheduler_info().get('workers', {}))} workers")
        else:
            runner = _run_direct
            _say("pipeline: the package functions in this process (--no-prefect: no Prefect, no Dask)")
        replay_cfg = write_settings(data_dir / "demo-replay.toml",
                                    {**common, "monitoring": REPLAY_MONITORING})
        search_cfg = write_settings(data_dir / "demo-search.toml",
                                    {**common, "monitoring": SEARCH_MONITORING})
        ok = _replay_and_search(settings, engine, runner, replay_cfg, search_cfg)

        _summary(engine, _designations(engine), hook, mail, url, started)
        if url:
            _wait_for_user(serve_seconds, url)
    return 0 if ok else 1


def _designations(engine: Any) -> list[str]:
    """Every object's designation, in the order they entered the catalog."""
    import sqlalchemy as sa

    from neodefense.catalog import models

    with engine.connect() as conn:
        return [str(d) for d in conn.execute(sa.select(models.Object.__table__.c.designation)
                                             .order_by(models.Object.__table__.c.id)).scalars()]


def _replay_and_search(settings: config.Settings, engine: Any, runner: StageRunner,
                       replay_cfg: Path, search_cfg: Path) -> bool:
    """The TC3 replay, then the other objects; True when everything was ingested and every
    delivery went through."""
    from tqdm import tqdm

    inbox_dir = settings.inbox_root / SUBMITTER
    url = settings.catalog_url
    seen: set[int] = set()
    ok = True
    batch = tc3_observations()
    steps = tc3_replay_steps(batch)
    from neodefense.alerts.replay import submission

    _say(f"\n2008 TC3 replayed in time order: {len(batch)} observations in {len(steps)} steps "
          f"(the discovery tracklet, then every {TC3_STEP_HOURS:g} h); after each step the pipeline "
          f"runs (monitoring {TC3_REPLAY_YEARS:g} years ahead, {TC3_REPLAY_SAMPLES} samples); "
          "alerts are printed as the webhook and the mail sink receive them")
    announced = False
    with tqdm(steps, desc="2008 TC3 replay", unit="step", leave=False, disable=None,
              file=sys.stderr) as bar:
        for step in bar:
            data, ext = submission(batch.take(step.indices))
            drop_in_inbox(inbox_dir, f"2008_TC3-step{step.number}.{ext}", data)
            _say(f"  step {step.number}/{len(steps)}: +{len(step.indices)} observations into the "
                 f"inbox ({step.n_total} in all, the last made {step.last_obs_utc} UTC)")
            t0 = time.perf_counter()
            result = runner(url, replay_cfg, REPLAY_MONITORING)
            ok &= _receipts_ok(result)
            fresh = _new_alerts(engine, seen)
            _say(f"    {_result_line(result, fresh, time.perf_counter() - t0)}"
                 + _lead_time_note(step, fresh, announced))
            announced |= any("imminent" in (a.get("kinds") or ()) for a in fresh)
    _say(f"\nApophis, Bennu, 2024 BX1 and the short arc 2023 QR6: one submission and one pipeline "
          f"run each (monitoring 100 years, Earth and Moon, {DEMO_LOV_SAMPLES} LOV samples)")
    _say("  (the long step: Apophis's and Bennu's 100-year searches take a few minutes each)")
    with tqdm(OTHER_FILES, desc="other objects", unit="object", leave=False, disable=None,
              file=sys.stderr) as bar:
        for name in bar:
            bar.set_postfix_str(name)
            drop_in_inbox(inbox_dir, name, _data_file(name).read_bytes())
            _say(f"  {name} into the inbox")
            t0 = time.perf_counter()
            result = runner(url, search_cfg, SEARCH_MONITORING)
            ok &= _receipts_ok(result)
            for r in result.get("receipts") or []:
                _say(f"    submission {r['submission_id']}: {r['accepted']} accepted, "
                     f"{r['duplicates']} duplicates, {len(r['rejected'])} rejected")
            _say(f"    {_result_line(result, _new_alerts(engine, seen), time.perf_counter() - t0)}")
    from neodefense.catalog import alerts as catalog_alerts

    outbox = catalog_alerts.delivery_summary(engine)["deliveries"]
    return ok and not any(v for k, v in outbox.items() if k != "delivered")


def _receipts_ok(result: dict[str, Any]) -> bool:
    return all(not r.get("error") and not r.get("rejected") for r in result.get("receipts") or [])
