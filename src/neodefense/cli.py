"""The ``neodefense`` command."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neodefense import config as config_mod
from neodefense.alerts.messages import cell, removals_table, risk_table, short_utc, text_table


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
                    keep=args.keep, use_prefect=not args.no_prefect,
                    dashboard=not args.no_dashboard, serve_seconds=args.serve_seconds)


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
            from neodefense.catalog.alerts import AlertConfig

            stored = assessments.store_assessment(
                engine, solution_id, assessment,
                alert_config=AlertConfig.from_settings(_settings(args).raw.get("alerts", {})))
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


# -- issue 5: risk list, history, subscribers, alerts, removals ------------------------------------

_RELATIVE_SINCE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
#: columns of ``neodefense risk-list --removed --csv``, in order
REMOVAL_COLUMNS = (
    "designation", "removed_utc", "reason", "reason_text", "note", "alert_id",
    "last_cumulative_ip", "last_palermo_cum", "last_torino_max", "last_assessment_id",
    "removing_assessment_id", "object_id", "id",
)


def since_utc(text: str, now_utc: dt.datetime | None = None) -> dt.datetime:
    """An aware UTC instant from ``--since`` text: ISO 8601 ('2026-12-01' = midnight UTC,
    '2026-12-01T10:00:00Z', an offset is converted, no offset = UTC) or a time before ``now_utc``
    (default now): '90s', '30m', '24h', '7d', '2w'. Raises argparse.ArgumentTypeError."""
    found = _RELATIVE_SINCE.match(text)
    if found:
        now_utc = now_utc or dt.datetime.now(dt.UTC)
        return now_utc - dt.timedelta(seconds=float(found[1]) * _UNIT_S[found[2].lower()])
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO UTC time (2026-12-01, 2026-12-01T10:00:00Z) nor a relative time "
            f"(24h, 7d): {text!r}") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _iso_z(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _removal_csv_row(r: dict[str, Any]) -> dict[str, Any]:
    last = r.get("last_values") or {}
    return {**{k: r.get(k) for k in REMOVAL_COLUMNS},
            "last_cumulative_ip": last.get("cumulative_ip"),
            "last_palermo_cum": last.get("palermo_cum"),
            "last_torino_max": last.get("torino_max")}


def _write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def cmd_risk_list(args: argparse.Namespace) -> int:
    """The risk list (Sentry-like table, --json, --csv), or with --removed the removals."""
    from neodefense.catalog import alerts as catalog_alerts

    engine = _engine(args)
    if args.removed:
        rows = catalog_alerts.removals(engine)
        if args.json:
            print(json.dumps(rows, indent=2))
        elif args.csv:
            _write_csv([_removal_csv_row(r) for r in rows], REMOVAL_COLUMNS)
        elif not rows:
            print("no object has been removed from the risk list")
        else:
            print(f"{len(rows)} removal{'s' if len(rows) != 1 else ''} from the risk list "
                  "(newest first)")
            print("\n".join(removals_table(rows)))
        return 0
    rows = catalog_alerts.risk_list(engine)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.csv:
        _write_csv(rows, catalog_alerts.RISK_LIST_COLUMNS)
    elif not rows:
        print("the risk list is empty: no object has virtual impactors")
    else:
        print(f"risk list: {len(rows)} object{'s' if len(rows) != 1 else ''} with virtual "
              "impactors, by cumulative Palermo scale")
        print("\n".join(risk_table(rows)))
    return 0


def _jsonable_history(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (_iso_z(v) if isinstance(v, dt.datetime) else v) for k, v in row.items()}


def _history_text(data: dict[str, Any], rank: int | None) -> list[str]:
    name = data["designation"]
    n_a, n_al, n_r = len(data["assessments"]), len(data["alerts"]), len(data["removals"])
    lines = [f"{name}: {n_a} impact assessment{'s' if n_a != 1 else ''}, {n_al} alert"
             f"{'s' if n_al != 1 else ''}, {n_r} removal{'s' if n_r != 1 else ''}; "
             + (f"on the risk list (rank {rank})" if rank else "not on the risk list")]
    if data["assessments"]:
        lines.append("impact-probability history:")
        cells = [[cell(a["version"]), short_utc(a["created_at"]), a["status"],
                  a["method"] or "-", cell(a["cumulative_ip"], ".2e"),
                  cell(a["palermo_cum"], ".2f"), cell(a["torino_max"]), cell(a["n_vi"]),
                  "*" if a.get("is_current") else ""] for a in data["assessments"]]
        lines += ["  " + ln for ln in text_table(
            ("ver", "created (UTC)", "status", "method", "cum IP", "PS cum", "TS", "VIs", "cur"),
            cells, frozenset({0, 4, 5, 6, 7}))]
    if data["alerts"]:
        from neodefense.alerts.messages import summary_line

        lines.append("alerts:")
        lines += [f"  {summary_line(a['payload'])}" for a in data["alerts"]]
    if data["removals"]:
        lines.append("removals:")
        for r in data["removals"]:
            note = f" — {r['note']}" if r["note"] else ""
            alert = f" (alert {r['alert_id']})" if r["alert_id"] else ""
            lines.append(f"  {r['removed_utc']} {r['reason']}: {r['reason_text']}{note}{alert}")
    prov = data["provenance"]
    if prov:
        sol, asm = prov["solution"], prov["assessment"]
        lines.append(f"current assessment {asm['id']} (version {asm['version']}, "
                     f"{asm['method']}, code {asm['code_version'] or '-'}) from orbit solution "
                     f"{sol['id']} (version {sol['version']}, {sol['n_used']}/{sol['n_obs']} "
                     f"observations, set {str(sol['observation_set_hash'])[:12]}), "
                     f"{len(prov['submissions'])} submission(s)")
    return lines


def cmd_history(args: argparse.Namespace) -> int:
    """An object's impact-probability history, its alerts and removals (exit 1: unknown)."""
    from neodefense.catalog import alerts as catalog_alerts
    from neodefense.catalog import assessments

    engine = _engine(args)
    try:
        history = assessments.assessment_history(engine, args.designation)
        found = catalog_alerts.alerts(engine, designation=args.designation)
        removed = catalog_alerts.removals(engine, designation=args.designation)
    except LookupError:
        print(f"{args.designation}: no such object in the catalog", file=sys.stderr)
        return 1
    try:
        prov = catalog_alerts.provenance(engine, args.designation)
    except LookupError:  # no current assessment
        prov = None
    if history:
        name = history[0]["designation"]
    else:
        from neodefense.catalog import queries

        name = queries.object_info(engine, args.designation)["designation"]
    data = {"designation": name, "assessments": [_jsonable_history(a) for a in history],
            "alerts": found, "removals": removed, "provenance": prov}
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        rank = next((r["rank"] for r in catalog_alerts.risk_list(engine)
                     if r["designation"] == name), None)
        print("\n".join(_history_text(data, rank)))
    return 0


def _subscriber_text(s: dict[str, Any], secrets_once: bool = False) -> list[str]:
    from neodefense.alerts.criteria import Criteria

    try:
        wants = Criteria.from_json(s["criteria"]).describe()
    except ValueError:
        wants = json.dumps(s["criteria"])
    state = "active" if s["active"] else f"removed {s['removed_utc']}"
    lines = [f"subscriber {s['id']} {s['name']!r} ({state}, since {s['created_utc']}): {wants}"]
    for c in s["channels"]:
        counts = ", ".join(f"{k} {c.get(k, 0)}" for k in ("delivered", "pending", "held"))
        lines.append(f"  channel {c['id']}: {c['kind']} {c['target']} ({c['format']}), "
                     f"{c['status']}; {counts}")
        if c.get("paused_reason"):
            lines.append(f"    paused {c.get('paused_utc') or ''}: {c['paused_reason']} "
                         f"(`neodefense subscribers resume {c['id']}`)")
        if secrets_once and c.get("secret"):
            lines.append(f"    signing secret: {c['secret']}")
    if secrets_once and any(c.get("secret") for c in s["channels"]):
        lines.append("  keep the secret: it is shown once; it verifies the X-Neodefense-Signature "
                     "header (HMAC-SHA256) of every webhook POST")
    return lines


def cmd_subscribers_add(args: argparse.Namespace) -> int:
    """Add a subscriber; prints it with each webhook's signing secret (shown once)."""
    from neodefense.alerts.criteria import Criteria
    from neodefense.catalog import alerts as catalog_alerts

    if not args.webhook and not args.email:
        print("a subscriber needs at least one channel: --webhook URL or --email ADDRESS",
              file=sys.stderr)
        return 2
    if args.secret and not args.webhook:
        print("--secret signs webhook POSTs: give a --webhook", file=sys.stderr)
        return 2
    channels = [{"kind": "webhook", "target": url, "format": args.format,
                 "secret": args.secret or None} for url in args.webhook or ()]
    channels += [{"kind": "email", "target": addr, "format": args.format}
                 for addr in args.email or ()]
    try:
        criteria = Criteria(torino_min=args.torino_min, ip_min=args.ip_min,
                            palermo_min=args.palermo_min, iawn_only=args.iawn_only,
                            imminent_only=args.imminent_only, objects=tuple(args.object or ()))
        added = catalog_alerts.add_subscriber(_engine(args), args.name, criteria, channels)
    except ValueError as exc:
        print(f"subscriber not added: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(added, indent=2))
    else:
        print("\n".join(_subscriber_text(added, secrets_once=True)))
    return 0


def cmd_subscribers_list(args: argparse.Namespace) -> int:
    from neodefense.catalog import alerts as catalog_alerts

    rows = catalog_alerts.subscribers(_engine(args), include_removed=args.all)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no subscribers")
    else:
        for s in rows:
            print("\n".join(_subscriber_text(s)))
    return 0


def cmd_subscribers_remove(args: argparse.Namespace) -> int:
    from neodefense.catalog import alerts as catalog_alerts

    try:
        cancelled = catalog_alerts.remove_subscriber(_engine(args), args.subscriber)
    except LookupError as exc:
        print(str(exc).strip("'\""), file=sys.stderr)
        return 1
    print(f"subscriber {args.subscriber!r} removed; {cancelled} undelivered deliver"
          f"{'y' if cancelled == 1 else 'ies'} cancelled")
    return 0


def cmd_subscribers_resume(args: argparse.Namespace) -> int:
    from neodefense.catalog import alerts as catalog_alerts

    try:
        released = catalog_alerts.resume_channel(_engine(args), args.channel_id)
    except LookupError as exc:
        print(str(exc).strip("'\""), file=sys.stderr)
        return 1
    print(f"channel {args.channel_id} resumed; {released} held deliver"
          f"{'y' if released == 1 else 'ies'} released (sent by the next `neodefense alerts "
          "deliver`)")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    """The alerts issued (oldest first), optionally since a time and for one object."""
    from neodefense.catalog import alerts as catalog_alerts

    try:
        rows = catalog_alerts.alerts(_engine(args), since=args.since,
                                     designation=args.designation)
    except LookupError:
        print(f"{args.designation}: no such object in the catalog", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        where = (f" since {_iso_z(args.since)}" if args.since else "") + (
            f" for {args.designation}" if args.designation else "")
        print(f"no alerts{where}")
        return 0
    from neodefense.alerts.messages import summary_line

    for row in rows:
        print(summary_line(row["payload"]))
    return 0


def cmd_alerts_show(args: argparse.Namespace) -> int:
    """One alert: readable text, the record as JSON (--json) or its VOEvent XML (--voevent)."""
    from neodefense.catalog import alerts as catalog_alerts

    try:
        record = catalog_alerts.alert(_engine(args), args.alert_id)
    except LookupError:
        print(f"{args.alert_id}: no such alert", file=sys.stderr)
        return 1
    if args.voevent:
        sys.stdout.write(record["voevent"] if record["voevent"].endswith("\n")
                         else record["voevent"] + "\n")
    elif args.json:
        print(json.dumps(record, indent=2))
    else:
        from neodefense.alerts.messages import email_text

        print(email_text(record["payload"]).rstrip("\n"))
        counts = ", ".join(f"{k} {v}" for k, v in sorted(record["deliveries"].items()))
        print(f"\ndeliveries: {counts or 'none (no subscriber matched)'}")
    return 0


def _deliver_text(result: dict[str, Any]) -> str:
    outbox = result.get("outbox") or {}
    queued = ", ".join(f"{k} {v}" for k, v in sorted((outbox.get("deliveries") or {}).items()))
    text = (f"sent {result['sent']} (delivered {result['delivered']}, already delivered "
            f"{result['already']}, failed {result['failed']}) in {result['rounds']} round(s); "
            f"{result['paused']} channel(s) paused; outbox: {queued or 'empty'}")
    if outbox.get("next_due_utc"):
        text += f"; next retry due {outbox['next_due_utc']}"
    return text


def cmd_alerts_deliver(args: argparse.Namespace) -> int:
    """Deliver the due alerts of the outbox (the Prefect flow, or directly with --no-prefect)."""
    settings = _settings(args)
    if args.no_prefect:
        from neodefense.alerts.deliver import DeliveryOptions, deliver_due
        from neodefense.catalog import alerts as catalog_alerts

        engine = _engine(args)
        totals = deliver_due(engine, DeliveryOptions.from_settings(settings.raw.get("alerts", {})),
                             wait_s=args.wait, max_rounds=args.max_rounds)
        result = {**totals, "outbox": catalog_alerts.delivery_summary(engine)}
    else:
        config_mod.apply_prefect_environment(settings)
        from flows.alerts import deliver_alerts

        result = deliver_alerts(catalog_url=settings.catalog_url, config_path=args.config,
                                wait_s=args.wait, max_rounds=args.max_rounds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_deliver_text(result))
    return 0


def _batch_designation(batch: Any, fallback: str) -> str:
    """The designation a file's observations carry, as the catalog will know it: the most
    frequent permanent, else provisional designation (canonical form), else the most frequent
    tracklet alias (``trkSub:<stn>:<trkSub>``); ``fallback`` when there is none."""
    from collections import Counter

    from neodefense.catalog.ingest import canonical_designation, trksub_alias

    cols = batch.columns
    for key in ("permID", "provID"):
        names = Counter(str(v) for v in cols[key] if str(v))
        if names:
            return canonical_designation(names.most_common(1)[0][0])
    tracklets = Counter((str(s), str(t)) for s, t in zip(cols["stn"], cols["trkSub"], strict=True)
                        if str(t))
    return trksub_alias(*tracklets.most_common(1)[0][0]) if tracklets else fallback


def _replay_alert_line(a: dict[str, Any]) -> str:
    from neodefense.alerts.rules import format_ip

    payload = a.get("payload") or {}
    risk = payload.get("risk") or payload.get("previous") or {}
    kinds = ",".join(a.get("kinds") or payload.get("kinds") or ()) or "-"
    line = (f"{a.get('cutoff_utc')}  step {a.get('step')}  {a.get('alert_id')}  {kinds}  "
            f"IP {format_ip(risk.get('cumulative_ip'))}")
    if a.get("lead_hours") is not None:
        line += f"  lead time {float(a['lead_hours']):.1f} h"
    return line


def _replay_step_line(record: Any) -> str:
    """The progress line of one replay step (a dict; unknown keys are skipped)."""
    if not isinstance(record, dict):
        return f"replay: {record}"
    from neodefense.alerts.rules import format_ip

    parts = [f"step {record.get('step', '?')}"]
    for key, label in (("cutoff_utc", ""), ("n_obs", "obs"), ("fit_status", "fit"),
                       ("status", "monitor"), ("cumulative_ip", "IP"), ("n_vi", "VIs")):
        value = record.get(key)
        if value is None:
            continue
        value = format_ip(value) if key == "cumulative_ip" else value
        parts.append(f"{label} {value}".strip())
    raised = record.get("alerts") or record.get("alert_ids")
    if raised:
        parts.append("alerts " + ",".join(str(a.get("alert_id", a)) if isinstance(a, dict)
                                          else str(a) for a in raised))
    return "replay: " + ", ".join(parts)


def cmd_alerts_replay(args: argparse.Namespace) -> int:
    """Replay an object's discovery (catalog object or file) through the alerting: step the
    observation cutoff forward, fit, monitor, store into a separate catalog, print each alert
    with its simulated time and lead time. Exit 1 when the observations cannot be read."""
    import contextlib
    import tempfile

    settings = _settings(args)
    if args.obs:
        batch = _read_obs_file(args.obs, "not used")
        if batch is None:
            return 1
        designation = _batch_designation(batch, Path(args.obs).stem)
    else:
        from neodefense.catalog import queries, solutions

        engine = _engine(args)
        try:
            designation = queries.object_info(engine, args.designation)["designation"]
            batch, _ids = solutions.observations_with_ids(engine, args.designation)
        except LookupError:
            print(f"{args.designation}: no such object in the catalog", file=sys.stderr)
            return 1
    if len(batch) == 0:
        print(f"{args.obs or args.designation}: no usable observations", file=sys.stderr)
        return 1
    catalog_out = args.catalog_out
    if catalog_out is None:
        folder = tempfile.mkdtemp(prefix="neodefense-replay-")
        catalog_out = f"sqlite:///{Path(folder) / 'replay.sqlite'}"
    elif not args.obs and catalog_out == settings.catalog_url:
        print("--catalog-out must not be the catalog the observations are read from",
              file=sys.stderr)
        return 2
    print(f"replay catalog: {catalog_out}", file=sys.stderr if args.json else sys.stdout)
    channels = [{"kind": "webhook", "target": url, "format": args.format}
                for url in args.webhook or ()]
    channels += [{"kind": "email", "target": addr, "format": args.format}
                 for addr in args.email or ()]

    from neodefense import compute
    from neodefense.alerts.deliver import DeliveryOptions
    from neodefense.alerts.replay import alert_replay
    from neodefense.catalog.alerts import AlertConfig

    compute.prepare_process()
    section = settings.raw.get("alerts", {})
    bodies = tuple(b.strip().lower() for b in args.bodies.split(",") if b.strip())
    workers = settings.raw.get("dask", {}).get("n_workers", 2) if args.workers is None \
        else args.workers
    ctx = compute.client(settings, n_workers=workers) if workers else contextlib.nullcontext()

    def on_step(record: Any) -> None:
        print(_replay_step_line(record), file=sys.stderr, flush=True)

    try:
        with ctx as client:
            result = alert_replay(
                batch, designation, catalog_url=catalog_out, step_hours=args.step_hours,
                tracklet_hours=args.tracklet_hours, method=args.method, years=args.years,
                n_samples=args.samples, seed=args.seed, bodies=bodies,
                cross_check=args.cross_check, nongrav=args.nongrav, client=client,
                alert_config=AlertConfig.from_settings(section), subscribers=channels,
                deliver=bool(channels),
                delivery_options=DeliveryOptions.from_settings(section) if channels else None,
                max_steps=args.max_steps, on_step=on_step)
    except ValueError as exc:  # e.g. a bad subscriber channel
        print(f"replay not run: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    raised = result.get("alerts") or []
    for a in raised:
        print(_replay_alert_line(a))
    n_steps = len(result.get("steps") or [])
    print(f"{designation}: {n_steps} step{'s' if n_steps != 1 else ''}, {len(raised)} alert"
          f"{'s' if len(raised) != 1 else ''} (catalog {result.get('catalog_url', catalog_out)})")
    for sub in result.get("subscribers") or ():
        for c in sub.get("channels") or ():
            secret = f", signing secret {c['secret']}" if c.get("secret") else ""
            print(f"subscriber {sub['name']}: {c['kind']} {c['target']}{secret}")
    if result.get("deliveries"):
        d = result["deliveries"]
        print(f"deliveries: sent {d.get('sent', 0)}, delivered {d.get('delivered', 0)}, "
              f"failed {d.get('failed', 0)}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Take an object off the risk list by hand (raises the removal alert)."""
    from neodefense.catalog import alerts as catalog_alerts

    engine = _engine(args)
    try:
        alert_id = catalog_alerts.remove_object(engine, args.designation, args.reason,
                                                note=args.note)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except LookupError:
        print(f"{args.designation}: no such object in the catalog", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"designation": args.designation, "reason": args.reason,
                          "note": args.note, "alert_id": alert_id}, indent=2))
    elif alert_id:
        print(f"{args.designation}: removed from the risk list ({args.reason}); alert {alert_id}")
    elif args.reason in ("artificial", "reassigned"):
        print(f"{args.designation}: not on the risk list; recorded as {args.reason}: later "
              "assessments raise no alerts for it")
    else:
        print(f"{args.designation}: not on the risk list; nothing removed")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Recompute an object's current (or a given) assessment from its provenance and compare."""
    from neodefense.catalog import assessments
    from neodefense.provenance import reproduce

    engine = _engine(args)
    try:
        assessment_id = args.assessment
        if assessment_id is None:
            current = assessments.latest_assessment(engine, args.designation)
            if current is None:
                print(f"{args.designation}: no current impact assessment", file=sys.stderr)
                return 1
            assessment_id = current["id"]
        result = reproduce(engine, int(assessment_id))
    except LookupError as exc:
        print(str(exc).strip("'\""), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        old, new = result["stored"], result["recomputed"]
        print(f"{result['designation']}: assessment {assessment_id} (solution "
              f"{result['solution_id']}): stored IP {old['cumulative_ip']:.6g} with "
              f"{len(old['virtual_impactors'])} VI, recomputed IP {new['cumulative_ip']:.6g} "
              f"with {len(new['virtual_impactors'])} VI")
        versions = result["code_version"]
        if versions["stored"] != versions["now"]:
            print(f"  code: stored {versions['stored']}, now {versions['now']}")
        print("  identical" if result["identical"] else "  DIFFERENT:")
        for line in result["differences"]:
            print(f"    {line}")
    return 0 if result["identical"] else 3


def _add_alert_commands(sub: Any) -> None:
    """The issue-5 commands: risk-list, history, subscribers, alerts, remove."""
    p = sub.add_parser("risk-list", help="the objects with virtual impactors (Sentry-like)")
    p.add_argument("--catalog", metavar="URL", help="catalog database URL")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a list of JSON objects")
    fmt.add_argument("--csv", action="store_true", help="print CSV (header + one row per object)")
    p.add_argument("--removed", action="store_true",
                   help="list the removals from the risk list instead (newest first)")
    p.set_defaults(func=cmd_risk_list)

    p = sub.add_parser("history", help="an object's impact-probability history, alerts, removals")
    p.add_argument("designation", metavar="DESIGNATION")
    p.add_argument("--catalog", metavar="URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("reproduce", help="recompute an assessment from its provenance, compare")
    p.add_argument("designation", metavar="DESIGNATION")
    p.add_argument("--assessment", type=int, metavar="ID",
                   help="this stored assessment (default: the object's current one)")
    p.add_argument("--catalog", metavar="URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("remove", help="take an object off the risk list (removal alert)")
    p.add_argument("designation", metavar="DESIGNATION")
    p.add_argument("--reason", required=True, choices=["artificial", "reassigned", "manual"],
                   help="artificial / reassigned also keep it off the list from now on")
    p.add_argument("--note", default="", help="free text carried by the removal alert")
    p.add_argument("--catalog", metavar="URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("subscribers", help="who receives alerts: add, list, remove, resume")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="add a subscriber (prints webhook signing secrets once)")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--webhook", action="append", metavar="URL", help="POST alerts here")
    a.add_argument("--email", action="append", metavar="ADDR", help="mail alerts here")
    a.add_argument("--format", choices=["json", "voevent"], default="json",
                   help="webhook body: alert JSON (default) or the VOEvent XML")
    a.add_argument("--secret", help="HMAC signing key of the webhooks (default: generated)")
    a.add_argument("--torino-min", type=int, metavar="N", help="only Torino ≥ N")
    a.add_argument("--ip-min", type=float, metavar="X", help="only cumulative IP ≥ X")
    a.add_argument("--palermo-min", type=float, metavar="Y", help="only Palermo (cum) ≥ Y")
    a.add_argument("--iawn-only", action="store_true", help="only objects meeting IAWN criteria")
    a.add_argument("--imminent-only", action="store_true", help="only imminent impactors")
    a.add_argument("--object", action="append", metavar="D", help="only these objects")
    a.add_argument("--catalog", metavar="URL")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_subscribers_add)
    a = actions.add_parser("list", help="the subscribers and their channels (no secrets)")
    a.add_argument("--all", action="store_true", help="include removed subscribers")
    a.add_argument("--catalog", metavar="URL")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_subscribers_list)
    a = actions.add_parser("remove", help="remove a subscriber (undelivered alerts cancelled)")
    a.add_argument("subscriber", metavar="NAME_OR_ID")
    a.add_argument("--catalog", metavar="URL")
    a.set_defaults(func=cmd_subscribers_remove)
    a = actions.add_parser("resume", help="resume a paused channel (its held alerts are sent)")
    a.add_argument("channel_id", type=int, metavar="CHANNEL_ID")
    a.add_argument("--catalog", metavar="URL")
    a.set_defaults(func=cmd_subscribers_resume)

    p = sub.add_parser("alerts", help="the alerts issued; show, deliver, replay")
    p.add_argument("--since", type=since_utc, metavar="T",
                   help="issued at or after T: ISO UTC (2026-12-01, 2026-12-01T10:00:00Z) "
                        "or relative (24h, 7d)")
    p.add_argument("--designation", metavar="D", help="only this object's alerts")
    p.add_argument("--catalog", metavar="URL")
    p.add_argument("--json", action="store_true", help="print the alert records as JSON")
    p.set_defaults(func=cmd_alerts, action=None)
    actions = p.add_subparsers(dest="action", required=False)
    # options shared with `alerts` default to SUPPRESS so `alerts --catalog U show X` keeps U
    shared = {"default": argparse.SUPPRESS}
    a = actions.add_parser("show", help="one alert: text, --json record, or --voevent XML")
    a.add_argument("alert_id", metavar="ALERT_ID")
    a.add_argument("--voevent", action="store_true", help="print its VOEvent 2.0 document")
    a.add_argument("--catalog", metavar="URL", **shared)
    a.add_argument("--json", action="store_true", **shared)
    a.set_defaults(func=cmd_alerts_show)
    a = actions.add_parser("deliver", help="deliver the due alerts (Prefect flow deliver-alerts)")
    a.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="also wait for retries falling due within S seconds")
    a.add_argument("--max-rounds", type=int, default=None, metavar="N")
    a.add_argument("--no-prefect", action="store_true", help="call the package directly")
    a.add_argument("--catalog", metavar="URL", **shared)
    a.add_argument("--json", action="store_true", **shared)
    a.set_defaults(func=cmd_alerts_deliver)
    a = actions.add_parser("replay", help="replay a discovery through the alerting "
                                          "(simulated times, separate catalog)")
    target = a.add_mutually_exclusive_group(required=True)
    target.add_argument("designation", nargs="?", metavar="DESIGNATION",
                        help="object in --catalog: replay its observations")
    target.add_argument("--obs", metavar="FILE", help="replay the observations in FILE")
    a.add_argument("--catalog", metavar="URL", help="catalog the observations are read from",
                   **shared)
    a.add_argument("--json", action="store_true", help="print the replay result as JSON",
                   **shared)
    a.add_argument("--step-hours", type=float, default=1.0, metavar="H",
                   help="observation cutoff step (hours)")
    a.add_argument("--tracklet-hours", type=float, default=1.0, metavar="H",
                   help="the first step takes the discovery tracklet: observations within H h")
    a.add_argument("--years", type=float, default=0.05, help="monitoring horizon (years)")
    a.add_argument("--method", choices=["lov", "is", "mc"], default="lov")
    a.add_argument("--samples", type=int, default=None, metavar="N", help="virtual asteroids")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--bodies", default="earth", help="comma-separated: earth, moon")
    a.add_argument("--nongrav", choices=["none", "a2", "a1a2a3"], default="none")
    a.add_argument("--cross-check", action="store_true", help="Monte Carlo check of each run")
    a.add_argument("--max-steps", type=int, default=None, metavar="N")
    a.add_argument("--workers", type=int, default=None,
                   help="Dask workers (default from config; 0: this process only)")
    a.add_argument("--catalog-out", metavar="URL",
                   help="catalog the replay writes (default: a new SQLite file in a temporary "
                        "directory, printed)")
    a.add_argument("--webhook", action="append", metavar="URL",
                   help="deliver the replay's alerts to this webhook")
    a.add_argument("--email", action="append", metavar="ADDR",
                   help="deliver the replay's alerts to this address")
    a.add_argument("--format", choices=["json", "voevent"], default="json",
                   help="webhook body format")
    a.set_defaults(func=cmd_alerts_replay)


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
    p.add_argument("--no-prefect", action="store_true",
                   help="the same stages by calling the package in this process (no Prefect, no Dask)")
    p.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    p.add_argument("--serve-seconds", type=float, default=None, metavar="N",
                   help="keep the dashboard up N s at the end (default: until Enter when stdin "
                        "is a terminal, else stop at once)")
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
    _add_alert_commands(sub)
    from neodefense.api.commands import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
