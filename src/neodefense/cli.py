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

    p = sub.add_parser("demo", help="the main job on embedded defaults, on bundled real data")
    p.add_argument("--data-dir", help="where to put the demo catalog (default: <data_dir>/demo)")
    p.add_argument("--keep", action="store_true", help="keep an existing demo catalog")
    p.add_argument("--no-prefect", action="store_true", help="call the package directly")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fetch-mpc", help="download an object's observations from the MPC (online)")
    p.add_argument("designation", metavar="DESIGNATION")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_fetch_mpc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
