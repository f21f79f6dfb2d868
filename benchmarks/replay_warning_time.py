"""Benchmark: warning time of a discovery replay (impact probability as the observations came in).

Feeds an impactor's observations in time order — the discovery tracklet, then every further hour
of real time (:mod:`neodefense.impacts.replay`) — refitting and monitoring at each step, and
prints per step the observations in, the fit, the cumulative impact probability (IP) and the
earliest Earth virtual impactor, then when the IP first reached 1 %, 50 % and 99 % and the
warning time before the recorded impact.

Cases (obs80 files in ../shared/data/observations):

* ``tc3``: 2008 TC3, 883 observations; fireball 2008-10-07 02:45:45 UTC (CNEOS). Discovered
  2008-10-06 06:39 UTC at Mt. Lemmon (G96, Catalina Sky Survey).
* ``bx1``: 2024 BX1, 328 observations; bolide 2024-01-21 00:32:38 UTC (Spurný et al. 2024).
  Discovered 2024-01-20 21:48 UTC at Piszkéstető (K88).

    .venv/bin/python benchmarks/replay_warning_time.py [--case tc3 --case bx1] [--method lov|is|mc]
        [--samples N] [--years Y] [--step-hours H] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from neodefense.impacts.replay import (
    DEFAULT_YEARS,
    STEP_HOURS,
    THRESHOLDS,
    TRACKLET_HOURS,
    replay,
    warning_times,
)
from neodefense.observations import io

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
CASES = {
    "tc3": ("2008 TC3", DATA / "2008_TC3.obs80", "2008-10-07T02:45:45"),
    "bx1": ("2024 BX1", DATA / "2024_BX1.obs80", "2024-01-21T00:32:38"),
}
HEADER = (f"{'step':>4} {'cutoff (UTC)':>19} {'n_obs':>5} {'new':>4} {'arc h':>6} "
          f"{'fit':>13} {'rms':>5} {'method':>6} {'IP':>9} {'±':>7} {'VI date (UTC)':>19} "
          f"{'entry (UTC)':>19} {'s':>6}")


def _fmt(value: Any, spec: str, width: int) -> str:
    return f"{value:{spec}}".rjust(width) if value is not None else "-".rjust(width)


def _row(r: dict[str, Any]) -> str:
    vi = (r["vi_date_utc"] or "-")[:19]
    entry = (r["entry"] or {}).get("time_utc") or "-"
    ip = (_fmt(r["cumulative_ip"], ".6f", 9) if r["cumulative_ip"] is not None
          else ("invalid" if r["status"] == "ok" else r["status"][:9]).rjust(9))
    return (f"{r['step']:>4} {r['cutoff_utc'][:19]:>19} {r['n_obs']:>5} {r['n_new']:>4} "
            f"{r['arc_hours']:>6.2f} {r['fit_status'][:13]:>13} {_fmt(r['rms_arcsec'], '.2f', 5)} "
            f"{r['method']:>6} {ip} {_fmt(r['ip_sigma'], '.4f', 7)} {vi:>19} {entry[:19]:>19} "
            f"{r['runtime_s'] if r['recomputed'] else 0.0:>6.1f}"
            + ("" if r["recomputed"] else "  (no new obs)")
            + ("" if r.get("cross_check_ip") is None else
               f"  MC check {r['cross_check_ip']:.3f}±{r['cross_check_sigma']:.3f}"
               f"{'' if r['cross_check_agrees'] else ' DISAGREES'}"))


def run_case(name: str, args: argparse.Namespace) -> dict[str, Any]:
    designation, path, impact_utc = CASES[name]
    batch = io.read(path).batch
    print(f"\n{designation}: {len(batch)} observations from {path.name}; impact {impact_utc} UTC;"
          f" method {args.method}, samples {args.samples or 'default'}, years {args.years},"
          f" steps of {args.step_hours} h after a {args.tracklet_hours} h discovery tracklet")
    print(HEADER)
    t0 = time.perf_counter()
    steps = replay(batch, designation, method=args.method, years=args.years,
                   n_samples=args.samples, step_hours=args.step_hours,
                   tracklet_hours=args.tracklet_hours, seed=args.seed,
                   cross_check=args.cross_check,
                   max_steps=args.max_steps, on_step=lambda r: print(_row(r), flush=True))
    wall = time.perf_counter() - t0
    warnings = warning_times(steps, impact_utc, THRESHOLDS)
    print(f"warning times before the impact at {impact_utc} UTC (first cutoff with IP ≥ level):")
    for w in warnings:
        if w["step"] is None:
            print(f"  IP ≥ {w['threshold']:>5.0%}: never reached")
        else:
            print(f"  IP ≥ {w['threshold']:>5.0%}: step {w['step']:>2} at {w['cutoff_utc']} UTC"
                  f" ({w['n_obs']} obs, IP {w['ip']:.4f}) -> {w['warning_hours']:.1f} h before"
                  f" impact{'' if w['stays_above'] else ' (drops below later)'}")
    entry = next((r["entry"] for r in reversed(steps) if r["entry"]), None)
    if entry:
        print(f"  last step's entry: {entry}")
    print(f"  {len(steps)} steps, {sum(r['recomputed'] for r in steps)} fitted and monitored,"
          f" {wall:.1f} s wall")
    return {"case": name, "designation": designation, "impact_utc": impact_utc,
            "method": args.method, "n_samples": args.samples, "years": args.years,
            "step_hours": args.step_hours, "tracklet_hours": args.tracklet_hours,
            "seed": args.seed, "wall_s": wall, "steps": steps, "warning_times": warnings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="tc3 (default) and/or bx1")
    parser.add_argument("--method", choices=("lov", "is", "mc"), default="lov")
    parser.add_argument("--samples", type=int, default=None, help="default: monitor's")
    parser.add_argument("--years", type=float, default=DEFAULT_YEARS)
    parser.add_argument("--step-hours", type=float, default=STEP_HOURS)
    parser.add_argument("--tracklet-hours", type=float, default=TRACKLET_HOURS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cross-check", action="store_true",
                        help="also run the Monte Carlo cross-check of each LOV step")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    results = [run_case(name, args) for name in (args.case or ["tc3"])]
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
