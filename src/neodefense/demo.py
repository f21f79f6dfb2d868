"""The main job on embedded defaults: a fresh SQLite catalog fed with the bundled real observations.

Today it runs the ingest, orbit and impact-monitoring stages of the pipeline (alerts and the
dashboard join as they are built): the bundled real MPC files are dropped into the inbox as
submissions, the Prefect ingest flow stores and parses them, the Prefect orbit flow fits every
object on a Dask LocalCluster, the Prefect monitoring flow searches each orbit's uncertainty
region for Earth and Moon impacts over 100 years (``DEMO_LOV_SAMPLES`` points along the line of
variations instead of the production 1,001, to keep the demo to a few minutes on 2 cores), and a
summary is printed: the risk list, and 2008 TC3's predicted entry beside the recorded fireball.
"""

from __future__ import annotations

import json
import shutil
import time
from importlib import resources
from pathlib import Path

from neodefense import config

#: bundled files → the inbox folder (submitter) they are dropped into
DEMO_FILES: dict[str, str] = {
    "2008_TC3.obs80": "MPC",
    "2024_BX1.obs80": "MPC",
    "99942_Apophis.obs80": "MPC",
    "101955_Bennu.obs80": "MPC",
    "2023_QR6.obs80": "MPC",
}


#: demo monitoring settings (production defaults in config/neodefense.toml [monitoring])
DEMO_LOV_SAMPLES = 101
DEMO_CROSS_CHECK_SAMPLES = 50
#: the recorded 2008 TC3 fireball (CNEOS fireball table)
TC3_FIREBALL = {"time_utc": "2008-10-07T02:45:45", "alt_km": 38.9, "lat_deg": 20.9,
                "lon_deg": 31.4}


def demo_files() -> list[tuple[str, Path]]:
    root = resources.files("neodefense.data").joinpath("demo")
    return [(submitter, Path(str(root.joinpath(name)))) for name, submitter in DEMO_FILES.items()]


def run(data_dir: Path | None = None, keep: bool = False, use_prefect: bool = True) -> int:
    base = config.load()
    data_dir = (data_dir or base.data_dir / "demo").resolve()
    if data_dir.exists() and not keep:
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = base.with_overrides(paths={"data_dir": str(data_dir)}, catalog={"url": ""})
    print(f"neodefense demo: catalog {settings.catalog_url}")

    for submitter, path in demo_files():
        target = settings.inbox_root / submitter
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.name)

    started = time.perf_counter()
    override = data_dir / "demo-settings.toml"
    override.write_text(f'[paths]\ndata_dir = "{data_dir.as_posix()}"\n[catalog]\nurl = ""\n'
                        f'[monitoring]\nn_samples = {DEMO_LOV_SAMPLES}\n'
                        f'cross_check_samples = {DEMO_CROSS_CHECK_SAMPLES}\n')
    if use_prefect:
        config.apply_prefect_environment(settings)
        from flows.ingest import ingest_inbox

        receipts = ingest_inbox(config_path=str(override))
    else:
        from neodefense import inbox
        from neodefense.catalog import db, ingest

        engine = db.connect(settings.catalog_url)
        receipts = []
        for item in inbox.scan(settings.inbox_root):
            receipt = ingest.ingest(engine, item.path, filename=item.path.name,
                                    submitter=item.submitter).as_json()
            inbox.settle(item, receipt, settings.processed_dir, settings.quarantine_dir)
            receipts.append(receipt)
    elapsed = time.perf_counter() - started

    print(f"\ningested {len(receipts)} submissions in {elapsed:.1f} s")
    for r in receipts:
        print(f"  {r['file']:<24} submission {r['submission_id']}: {r['accepted']:>6} accepted, "
              f"{r['duplicates']:>4} duplicates, {len(r['rejected']):>3} rejected")

    from neodefense.catalog import db, queries, solutions

    started = time.perf_counter()
    if use_prefect:
        from flows.orbits import fit_changed_objects

        fits = fit_changed_objects(config_path=str(override))
    else:
        fits = _fit_directly(settings)
    elapsed = time.perf_counter() - started
    engine = db.connect(settings.catalog_url)
    print(f"\nfitted {len(fits)} orbits in {elapsed:.1f} s (full n-body, ASSIST on DE440)")
    print(f"  {'object':<12} {'status':<14} {'a [au]':>9} {'e':>7} {'i [deg]':>8} "
          f"{'RMS [as]':>8} {'used/obs':>11} {'H':>6} {'MOID [au]':>10}")
    for row in sorted(fits, key=lambda r: r["designation"]):
        sol = solutions.latest_solution(engine, row["designation"], ok_only=False) or {}
        el = sol.get("elements") or {}
        h, moid = sol.get("H"), sol.get("moid_au")
        print(f"  {row['designation']:<12} {row['status']:<14} "
              f"{el.get('a_au', float('nan')):>9.5f} {el.get('e', float('nan')):>7.4f} "
              f"{el.get('i_deg', float('nan')):>8.3f} {row['rms_arcsec'] or float('nan'):>8.2f} "
              f"{row['n_used']:>5}/{row['n_obs']:<5} "
              f"{h if h is not None else float('nan'):>6.2f} "
              f"{moid if moid is not None else float('nan'):>10.6f}")

    started = time.perf_counter()
    if use_prefect:
        from flows.impact_monitoring import monitor_changed_objects

        monitored = monitor_changed_objects(config_path=str(override))
    else:
        monitored = _monitor_directly(settings)
    elapsed = time.perf_counter() - started
    _print_risk(engine, monitored, elapsed)
    _print_alerts(engine)

    summary = queries.summary(engine)
    print("\ncatalog summary")
    print(json.dumps(summary, indent=2, default=str))
    return 0 if all(not r.get("error") for r in receipts) else 1


def _fit_directly(settings: config.Settings) -> list[dict]:
    """The orbit stage without Prefect or Dask (``--no-prefect``): same package functions."""
    from neodefense.catalog import db, solutions
    from neodefense.orbits.fit import fit_orbit

    engine = db.connect(settings.catalog_url)
    rows = []
    for object_id, designation in solutions.objects_to_fit(engine):
        batch, ids = solutions.observations_with_ids(engine, object_id)
        solution = fit_orbit(batch, designation)
        solution_id = solutions.store_solution(engine, object_id, solution, ids,
                                               {"nongrav": "none", "requested_by": "demo"})
        rows.append({"designation": designation, "status": solution.status,
                     "solution_id": solution_id, "rms_arcsec": solution.rms_arcsec,
                     "n_used": solution.n_used, "n_obs": solution.n_obs})
    return rows


def _monitor_directly(settings: config.Settings) -> list[dict]:
    """The monitoring stage without Prefect or Dask (``--no-prefect``)."""
    from neodefense.catalog import assessments, db, solutions
    from neodefense.catalog.alerts import AlertConfig
    from neodefense.impacts.monitor import monitor_solution

    alert_config = AlertConfig.from_settings(settings.raw["alerts"])
    engine = db.connect(settings.catalog_url)
    rows = []
    for object_id, designation, solution_id in assessments.solutions_to_monitor(engine):
        solution = solutions.load_solution(engine, solution_id)
        batch, _ = solutions.observations_with_ids(engine, object_id)
        a = monitor_solution(solution, batch=batch, n_samples=DEMO_LOV_SAMPLES,
                             cross_check_samples=DEMO_CROSS_CHECK_SAMPLES)
        assessment_id = assessments.store_assessment(engine, solution_id, a,
                                                     alert_config=alert_config)
        rows.append({"designation": designation, "assessment_id": assessment_id,
                     "status": a.status, "runtime_s": a.runtime_s})
    return rows


def _print_risk(engine, monitored: list[dict], elapsed: float) -> None:  # noqa: ANN001
    from astropy.time import Time

    from neodefense.catalog import assessments, solutions
    from neodefense.impacts.entry import entry_point

    print(f"\nmonitored {len(monitored)} orbits in {elapsed:.1f} s (100 years, Earth and Moon)")
    print(f"  {'object':<12} {'status':<22} {'method':<6} {'VAs':>5} {'IP cum':>9} {'PS cum':>7} "
          f"{'TS':>3} {'VIs':>4} {'first VI (UTC)':<22}")
    for row in sorted(monitored, key=lambda r: r["designation"]):
        a = assessments.assessment_by_id(engine, row["assessment_id"])
        vis = a.get("virtual_impactors") or []
        first = min((v["date_utc"] for v in vis), default="")
        ps = "" if a["palermo_cum"] is None else f"{a['palermo_cum']:.2f}"
        print(f"  {row['designation']:<12} {a['status']:<22} {a['method']:<6} "
              f"{a['n_samples']:>5} {a['cumulative_ip']:>9.3g} {ps:>7} {a['torino_max']:>3} "
              f"{len(vis):>4} {first:<22}")
        for v in vis:
            if row["designation"] != "2008 TC3" or v["body"] != "earth" or not v.get("entry"):
                continue
            sol = solutions.load_solution(engine, a["solution_id"])
            e = entry_point(sol.epoch_tdb_jd, sol.state_icrf_au, v["time_tdb_jd"],
                            altitude_km=TC3_FIREBALL["alt_km"]) or v["entry"]
            dt_s = (Time(e["time_utc"], scale="utc")
                    - Time(TC3_FIREBALL["time_utc"], scale="utc")).sec
            print(f"    2008 TC3 predicted at {e['alt_km']:g} km: {e['time_utc']} UTC, "
                  f"{e['lat_deg']:.2f}°N {e['lon_deg']:.2f}°E; recorded fireball: "
                  f"{TC3_FIREBALL['time_utc']} UTC, {TC3_FIREBALL['lat_deg']}°N "
                  f"{TC3_FIREBALL['lon_deg']}°E ({dt_s:+.1f} s; the recorded place is the "
                  f"first detection at 65.4 km)")


def _print_alerts(engine) -> None:  # noqa: ANN001
    """The risk list and the alerts the monitoring raised (written with each assessment)."""
    from neodefense.alerts.messages import risk_table, summary_line
    from neodefense.catalog import alerts

    rows = alerts.risk_list(engine)
    print(f"\nrisk list (neodefense risk-list): {len(rows)} object(s) with virtual impactors, "
          "by cumulative Palermo scale")
    for line in risk_table(rows) if rows else ["  (empty)"]:
        print(f"  {line}")
    raised = alerts.alerts(engine)
    print(f"\nalerts raised (neodefense alerts): {len(raised)}; each is in the outbox for the "
          "subscribers whose criteria it meets (neodefense subscribers add, alerts deliver)")
    for a in raised:
        print(f"  {summary_line(a['payload'])}")
