"""The ``neodefense`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neodefense import config as config_mod


def _settings(args: argparse.Namespace) -> config_mod.Settings:
    settings = config_mod.load(getattr(args, "config", None))
    if getattr(args, "catalog", None):
        settings = settings.with_overrides(catalog={"url": args.catalog})
    return settings


def _engine(args: argparse.Namespace):
    from neodefense.catalog import db

    return db.connect(_settings(args).catalog_url)


def _print_receipt_text(receipt: dict[str, Any]) -> None:
    extra = ""
    if receipt.get("duplicate_of"):
        extra = f" (same bytes as submission {receipt['duplicate_of']})"
    print(f"{receipt['file']}: submission {receipt['submission_id']}{extra}: "
          f"{receipt['accepted']} accepted, {receipt['duplicates']} duplicates, "
          f"{len(receipt['rejected'])} rejected")
    for rej in receipt["rejected"][:50]:
        print(f"  {receipt['file']}:{rej['line']}: {rej['field']}: {rej['reason']}")
    if len(receipt["rejected"]) > 50:
        print(f"  ... {len(receipt['rejected']) - 50} more rejections (see --json)")


def cmd_ingest(args: argparse.Namespace) -> int:
    from neodefense import inbox
    from neodefense.catalog import ingest

    settings = _settings(args)
    engine = _engine(args)
    receipts = []
    status = 0
    for path in inbox.iter_files(args.paths):
        if not path.exists():
            print(f"{path}: no such file", file=sys.stderr)
            status = 2
            continue
        receipt = ingest.ingest(engine, path, filename=str(path), submitter=args.submitter,
                                fmt=args.format,
                                chunk_bytes=int(settings.get("ingest", "chunk_bytes")))
        data = receipt.as_json()
        receipts.append(data)
        if not args.json:
            _print_receipt_text(data)
    if args.json:
        print(json.dumps(receipts[0] if len(receipts) == 1 else receipts, indent=2))
    return status


def cmd_observations(args: argparse.Namespace) -> int:
    from neodefense.catalog import queries

    engine = _engine(args)
    try:
        batch = queries.observations_for(engine, args.designation)
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if args.format == "psv":
        from neodefense.observations import ades

        sys.stdout.write(ades.write_psv(batch))
    elif args.format == "obs80":
        from neodefense.observations import obs80

        sys.stdout.write(obs80.write(batch))
    else:
        rows = [{k: v for k, v in r.items() if k != "raw"} for r in batch.records()]
        print(json.dumps(rows, indent=1))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from neodefense.catalog import queries

    summary = queries.summary(_engine(args))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_summary(summary)
    return 0


def _print_summary(summary: dict[str, Any]) -> None:
    for key, value in summary.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {v}" for k, v in value.items())
            print(f"{key}: {inner}")
        elif isinstance(value, list):
            print(f"{key}:")
            for row in value:
                print(f"  {row}")
        else:
            print(f"{key}: {value}")


def cmd_inbox(args: argparse.Namespace) -> int:
    settings = _settings(args)
    config_mod.apply_prefect_environment(settings)
    from flows.ingest import ingest_inbox

    receipts = ingest_inbox(inbox_root=args.inbox, catalog_url=settings.catalog_url,
                            config_path=args.config)
    if args.json:
        print(json.dumps(receipts, indent=2))
    else:
        for receipt in receipts:
            _print_receipt_text(receipt)
    return 0


def cmd_orbits(args: argparse.Namespace) -> int:
    settings = _settings(args)
    config_mod.apply_prefect_environment(settings)
    from flows.orbits import fit_changed_objects

    summaries = fit_changed_objects(catalog_url=settings.catalog_url, config_path=args.config)
    if args.json:
        print(json.dumps(summaries, indent=2, default=str))
    else:
        if not summaries:
            print("no object has a new observation set: nothing to fit")
        for row in summaries:
            print(f"{row['designation']}: {row['status']} (solution {row['solution_id']}), "
                  f"{row['n_used']}/{row['n_obs']} observations used, "
                  f"RMS {row['rms_arcsec']:.2f}\" {row['message']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from neodefense import demo

    return demo.run(data_dir=Path(args.data_dir) if args.data_dir else None,
                    keep=args.keep, use_prefect=not args.no_prefect)


def cmd_fetch_mpc(args: argparse.Namespace) -> int:
    from neodefense import mpc_fetch

    text = mpc_fetch.fetch_obs80(args.designation)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {len(text.splitlines())} lines to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _fit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a ``fit`` was asked to do, as stored with the solution."""
    return {"nongrav": args.nongrav, "exclude": [], "epoch_tdb_jd": args.epoch,
            "requested_by": "cli"}


def _fit_text(solution: Any, stored: tuple[int, int] | None) -> str:
    """A readable summary of an OrbitSolution: elements ± 1σ, RMS, counts, status."""
    from neodefense import timescales

    units = {"a_au": "au", "q_au": "au", "i_deg": "deg", "node_deg": "deg",
             "argperi_deg": "deg", "M_deg": "deg", "tp_tdb_jd": "TDB JD", "e": ""}
    lines = [f"{solution.designation or '(no designation)'}: {solution.status}"
             + (f" — {solution.message}" if solution.message else "")]
    if solution.ok:
        epoch = solution.epoch_tdb_jd
        utc = timescales.tdb_jd_to_utc_iso(epoch, precision=0)
        lines.append(f"epoch TDB JD {epoch:.6f} ({str(utc.ravel()[0])} UTC); heliocentric "
                     "ecliptic J2000 elements ± 1σ:")
        for key, value in solution.elements.items():
            sigma = solution.sigmas.get(key, float("nan"))
            lines.append(f"  {key:<12} {value:>20.12g} ± {sigma:<9.2g} {units.get(key, '')}"
                         .rstrip())
        for key, value in solution.nongrav.items():
            sigma = solution.nongrav_sigmas.get(key)
            text = f"± {sigma:<9.2g}" if sigma is not None else "(fixed)"
            lines.append(f"  {key:<12} {value:>20.6g} {text} au/day²")
        lines.append(f"RMS {solution.rms_arcsec:.3g}\" (normalized "
                     f"{getattr(solution, 'rms_normalized', float('nan')):.3g}), "
                     f"χ² {solution.chi2:.5g}; {solution.n_obs} observations, {solution.n_used} "
                     f"used, {solution.n_rejected} rejected; {solution.iterations} iterations, "
                     f"{solution.runtime_s:.2f} s")
        extra = []
        if solution.H is not None:
            extra.append(f"H {solution.H:.2f}")
        if solution.moid_au is not None:
            extra.append(f"Earth MOID {solution.moid_au:.3g} au")
        if extra:
            lines.append(", ".join(extra))
    ranging = solution.ranging or {}
    parts = []
    if ranging.get("rho_2.5_au") is not None and ranging.get("rho_97.5_au") is not None:
        parts.append(f"distance from the observer {ranging['rho_2.5_au']:.3g}–"
                     f"{ranging['rho_97.5_au']:.3g} au (95 %)")
    for key, label in (("neo_probability", "P(NEO)"), ("p_moid_lt_0.05_au", "P(MOID < 0.05 au)")):
        if ranging.get(key) is not None:
            parts.append(f"{label} {ranging[key]:.2f}")
    if not solution.ok and parts:
        lines.append("ranging: " + ", ".join(parts))
    if stored is not None:
        lines.append(f"stored in the catalog as solution {stored[0]} (version {stored[1]})")
    return "\n".join(lines)


def _read_obs_file(name: str, note: str):  # noqa: ANN202 - ObservationBatch | None
    """The valid observations of an obs80 / ADES file; every rejected line is printed (file,
    line, field, reason) followed by ``note``. None (after saying why) if it cannot be read."""
    from neodefense.observations import io as obs_io
    from neodefense.observations.validate import validate
    from neodefense.observatories.codes import known_codes

    path = Path(name)
    try:
        parsed = obs_io.read(path)
    except (OSError, ValueError) as exc:
        print(f"{path}: cannot read: {exc}", file=sys.stderr)
        return None
    batch, invalid = validate(parsed.batch, str(path), known_codes())
    for rejection in [*parsed.rejections, *invalid]:
        print(f"{rejection} ({note})", file=sys.stderr)
    return batch


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit an orbit to a file (``--obs``, no catalog) or to an object's catalog observations
    (stored as the object's next solution version). Exit status 1 when the fit fails."""
    from neodefense.compute import prepare_process
    from neodefense.orbits.fit import fit_orbit, solution_at_epoch
    from neodefense.orbits.solution import FAILED, OrbitSolution

    prepare_process()
    designation = ""
    catalog = None
    if args.obs:
        batch = _read_obs_file(args.obs, "not fitted")
        if batch is None:
            return 1
    else:
        from neodefense.catalog import queries, solutions

        engine = _engine(args)
        try:
            info = queries.object_info(engine, args.designation)
            batch, ids = solutions.observations_with_ids(engine, args.designation)
        except LookupError:
            print(f"{args.designation}: no such object in the catalog", file=sys.stderr)
            return 1
        designation = info["designation"]
        catalog = (engine, info["id"], ids, solutions)
    try:
        solution = fit_orbit(batch, designation=designation, nongrav=args.nongrav)
    except Exception as exc:  # noqa: BLE001 - report, never a traceback
        solution = OrbitSolution(designation=designation or args.obs, status=FAILED,
                                 message=f"internal error: {type(exc).__name__}: {exc}")
    stored = None
    if catalog is not None:
        engine, object_id, ids, solutions = catalog
        try:
            solution_id = solutions.store_solution(engine, object_id, solution, ids,
                                                   _fit_settings(args))
        except Exception as exc:  # noqa: BLE001 - a database problem: say so, no traceback
            print(f"{designation}: the solution could not be stored: {exc}", file=sys.stderr)
            return 1
        stored = (solution_id, solutions.latest_solution(
            engine, designation, ok_only=False)["version"])
    report = solution
    if solution.ok and args.epoch is not None:
        try:
            report = solution_at_epoch(solution, args.epoch)
        except Exception as exc:  # noqa: BLE001 - e.g. an epoch outside DE440
            print(f"{solution.designation}: cannot report the orbit at TDB JD {args.epoch}: "
                  f"{exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(_fit_text(report, stored))
    return 0 if solution.ok else 1


def _monitor_text(a: dict[str, Any], stored: int | None) -> str:
    lines = [f"{a['designation']}: {a['status']}" + (f" — {a['message']}" if a["message"] else ""),
             f"  method {a['method']}, {a['n_samples']} virtual asteroids, {a['years']:g} years "
             f"({', '.join(a['bodies'])}), {a['runtime_s']:.1f} s"]
    if a["status"] == "ok":
        pc = "—" if a["palermo_cum"] is None else f"{a['palermo_cum']:.2f}"
        pm = "—" if a["palermo_max"] is None else f"{a['palermo_max']:.2f}"
        lines.append(f"  cumulative IP {a['cumulative_ip']:.3g}, Palermo cum {pc} max {pm}, "
                     f"Torino max {a['torino_max']}, IAWN {'yes' if a['iawn_notify'] else 'no'}, "
                     f"SMPAG {'yes' if a['smpag'] else 'no'}")
        for vi in a["virtual_impactors"]:
            lines.append(f"  VI {vi['body']:5s} {vi['date_utc']}  IP {vi['ip']:.3g}  "
                         f"PS {vi['palermo'] if vi['palermo'] is None else round(vi['palermo'], 2)}"
                         f"  TS {vi['torino']}  v∞ {vi['v_inf_km_s']:.2f} km/s  "
                         f"E {vi['energy_mt']:.3g} Mt  σ {vi['sigma_lov']}")
            if vi.get("entry") and "error" in vi["entry"]:
                lines.append(f"     entry point not computed: {vi['entry']['error']}")
            elif vi.get("entry"):
                e = vi["entry"]
                lines.append(f"     entry {e['time_utc']} at {e['alt_km']:g} km: "
                             f"{e['lat_deg']:.3f}°, {e['lon_deg']:.3f}°")
        for ca in a["close_approaches"][:10]:
            sig = "" if ca.get("dist_sigma_km") is None else f" ± {ca['dist_sigma_km']:.4g}"
            lines.append(f"  approach {ca['body']:5s} {ca['date_utc']}  {ca['dist_km']:.6g}{sig} km")
        if a.get("cross_check"):
            cc = a["cross_check"]
            lines.append(f"  cross-check {cc['method']} N={cc['n_samples']}: IP "
                         f"{cc['cumulative_ip']:.3g} ± {cc['ip_sigma']:.2g} "
                         f"({'agrees' if cc['agrees'] else 'DISAGREES'})")
    if stored is not None:
        lines.append(f"  stored in the catalog as assessment {stored}")
    return "\n".join(lines)


def cmd_monitor(args: argparse.Namespace) -> int:
    """Impact monitoring of one object: a file (``--obs``: fitted first, nothing stored) or a
    catalog object (its current solution; the assessment is stored). Exit 1 unless status ok."""
    import contextlib

    from neodefense import compute
    from neodefense.impacts.monitor import monitor_solution
    from neodefense.orbits.fit import fit_orbit
    from neodefense.orbits.solution import ARC_TOO_SHORT

    compute.prepare_process()
    settings = _settings(args)
    bodies = tuple(b.strip().lower() for b in args.bodies.split(",") if b.strip())
    catalog = None
    if args.obs:
        batch = _read_obs_file(args.obs, "not used")
        if batch is None:
            return 1
        solution = fit_orbit(batch, nongrav=args.nongrav)
    else:
        from neodefense.catalog import solutions

        engine = _engine(args)
        try:
            row = solutions.latest_solution(engine, args.designation, ok_only=True)
            if row is None:
                row = solutions.latest_solution(engine, args.designation, ok_only=False)
            batch, _ids = solutions.observations_with_ids(engine, args.designation)
        except LookupError:
            print(f"{args.designation}: no such object in the catalog", file=sys.stderr)
            return 1
        if row is None:
            print(f"{args.designation}: no orbit solution yet (run `neodefense fit "
                  f"{args.designation}` first)", file=sys.stderr)
            return 1
        solution = solutions.load_solution(engine, row["id"])
        if row["status"] not in ("converged", ARC_TOO_SHORT):
            print(f"{args.designation}: newest solution is {row['status']}", file=sys.stderr)
        catalog = (engine, row["id"])
    workers = settings.raw.get("dask", {}).get("n_workers", 2) if args.workers is None \
        else args.workers
    ctx = compute.client(settings, n_workers=workers) if workers else contextlib.nullcontext()
    with ctx as client:
        assessment = monitor_solution(
            solution, batch=batch, method=args.method, years=args.years,
            n_samples=args.samples, bodies=bodies, seed=args.seed,
            entry_altitude_km=args.entry_altitude_km, cross_check=not args.no_cross_check,
            cross_check_samples=args.cross_check_samples, client=client,
            progress=not args.json and sys.stderr.isatty())
    stored = None
    if catalog is not None and not args.no_store:
        from neodefense.catalog import assessments

        engine, solution_id = catalog
        try:
            stored = assessments.store_assessment(engine, solution_id, assessment)
        except Exception as exc:  # noqa: BLE001 - a database problem: say so, no traceback
            print(f"{assessment.designation}: the assessment could not be stored: {exc}",
                  file=sys.stderr)
            return 1
    data = assessment.as_json()
    if stored is not None:
        data["assessment_id"] = stored
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(_monitor_text(data, stored))
    return 0 if assessment.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neodefense", description=__doc__)
    parser.add_argument("--config", help="settings file (TOML) over config/neodefense.toml")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest obs80 / ADES files into the catalog")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--catalog", metavar="URL", help="catalog database URL")
    p.add_argument("--json", action="store_true", help="print the receipt(s) as JSON")
    p.add_argument("--submitter", default="cli", help="who submits (observatory or person)")
    p.add_argument("--format", choices=["obs80", "ades_psv", "ades_xml"], default=None,
                   help="input format (detected when omitted)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("observations", help="print the stored observations of an object")
    p.add_argument("designation", metavar="DESIGNATION")
    p.add_argument("--catalog", metavar="URL")
    p.add_argument("--format", choices=["psv", "obs80", "json"], default="psv")
    p.set_defaults(func=cmd_observations)

    p = sub.add_parser("summary", help="what the catalog holds")
    p.add_argument("--catalog", metavar="URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("inbox", help="run the Prefect ingest flow over the inbox once")
    p.add_argument("--catalog", metavar="URL")
    p.add_argument("--inbox", metavar="DIR", help="inbox root (default from config)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inbox)

    p = sub.add_parser("orbits", help="run the Prefect orbit flow: refit every changed object")
    p.add_argument("--catalog", metavar="URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_orbits)

    p = sub.add_parser("demo", help="the main job on embedded defaults, on bundled real data")
    p.add_argument("--data-dir", help="where to put the demo catalog (default: <data_dir>/demo)")
    p.add_argument("--keep", action="store_true", help="keep an existing demo catalog")
    p.add_argument("--no-prefect", action="store_true", help="call the package directly")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fetch-mpc", help="download an object's observations from the MPC (online)")
    p.add_argument("designation", metavar="DESIGNATION")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_fetch_mpc)
    p = sub.add_parser("fit", help="fit an orbit (catalog object, or a file with --obs)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("designation", nargs="?", metavar="DESIGNATION",
                        help="object in the catalog: fit its observations, store the solution")
    target.add_argument("--obs", metavar="FILE",
                        help="fit the observations in FILE (obs80 / ADES) without any catalog")
    p.add_argument("--catalog", metavar="URL", help="catalog database URL")
    p.add_argument("--nongrav", choices=["none", "a2", "a1a2a3"], default="none",
                   help="non-gravitational parameters to fit (Marsden A1/A2/A3)")
    p.add_argument("--epoch", type=float, metavar="TDB_JD",
                   help="report the orbit at this epoch (TDB Julian date)")
    p.add_argument("--json", action="store_true", help="print the solution as JSON")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("monitor", help="impact monitoring: virtual impactors over the next years")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("designation", nargs="?", metavar="DESIGNATION",
                        help="object in the catalog: monitor its current solution, store it")
    target.add_argument("--obs", metavar="FILE",
                        help="fit the observations in FILE and monitor (no catalog)")
    p.add_argument("--catalog", metavar="URL", help="catalog database URL")
    p.add_argument("--years", type=float, default=100.0, help="horizon after the last observation")
    p.add_argument("--method", choices=["lov", "is", "mc"], default="lov",
                   help="line of variations (default), importance sampling, Monte Carlo")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="virtual asteroids (default: 1001 for lov, 1000 for mc)")
    p.add_argument("--bodies", default="earth,moon", help="comma-separated: earth, moon")
    p.add_argument("--entry-altitude-km", type=float, default=100.0,
                   help="altitude of the entry point of imminent impactors")
    p.add_argument("--seed", type=int, default=0, help="random seed (Monte Carlo)")
    p.add_argument("--nongrav", choices=["none", "a2", "a1a2a3"], default="none",
                   help="with --obs: non-gravitational parameters to fit")
    p.add_argument("--workers", type=int, default=None,
                   help="Dask workers (default from config; 0: this process only)")
    p.add_argument("--cross-check-samples", type=int, default=None, metavar="N",
                   help="Monte Carlo samples of the cross-check of an lov run (default 200)")
    p.add_argument("--no-cross-check", action="store_true", help="skip the Monte Carlo check")
    p.add_argument("--no-store", action="store_true", help="do not store the assessment")
    p.add_argument("--json", action="store_true", help="print the assessment as JSON")
    p.set_defaults(func=cmd_monitor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
