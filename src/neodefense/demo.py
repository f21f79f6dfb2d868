"""The main job on embedded defaults: a fresh SQLite catalog fed with the bundled real observations.

Today it runs the ingest and orbit stages of the pipeline (later stages join as they are built):
the bundled real MPC files are dropped into the inbox as submissions, the Prefect ingest flow
stores and parses them, the Prefect orbit flow fits every object on a Dask LocalCluster and stores
the solutions, and a summary is printed.
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
    override.write_text(f'[paths]\ndata_dir = "{data_dir.as_posix()}"\n[catalog]\nurl = ""\n')
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
