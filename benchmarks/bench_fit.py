"""Benchmark: wall time of a full orbit fit (differential correction) on real observations.

Cases (obs80 files in ../shared/data/observations):

* 2008 TC3, 883 observations over 0.8 day, gravity only — from scratch (Gauss → full model).
* (99942) Apophis, 9,528 observations 2004–2022, A2 fitted — from scratch (Gauss on the best
  30-day window, arc extension, final fit), and "warm" from a previous solution
  (``initial=``, as a refit after new observations would start).

Each case runs once to warm up (IERS tables, DE440, ASSIST), then ``--repeat`` times (default 3);
the median is printed with the status, iterations, RMS and rejections. One core:

    taskset -c 0 .venv/bin/python benchmarks/bench_fit.py [--repeat N] [--case NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from neodefense.observations import io
from neodefense.orbits.fit import fit_orbit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
TARGET_S = {"tc3": 2.0, "apophis": 10.0, "apophis-warm": 10.0}


def _cases():
    tc3 = io.read(DATA / "2008_TC3.obs80").batch
    apophis = io.read(DATA / "99942_Apophis.obs80").batch
    previous = {}

    def apophis_warm():
        if "sol" not in previous:
            previous["sol"] = fit_orbit(apophis, nongrav="a2")
        return fit_orbit(apophis, nongrav="a2", initial=previous["sol"])

    return {
        "tc3": lambda: fit_orbit(tc3),
        "apophis": lambda: fit_orbit(apophis, nongrav="a2"),
        "apophis-warm": apophis_warm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", action="append", choices=sorted(TARGET_S))
    args = parser.parse_args()
    cases = _cases()
    for name in args.case or list(cases):
        run = cases[name]
        sol = run()  # warm-up
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            sol = run()
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"{name:13s} median {med:6.2f} s (target {TARGET_S[name]:.0f} s) "
              f"runs {[round(t, 2) for t in times]} | {sol.status}, {sol.iterations} iterations, "
              f"{sol.n_used}/{sol.n_obs} used, {sol.n_rejected} rejected, "
              f"RMS {sol.rms_arcsec:.3f}\" (normalized {sol.rms_normalized:.3f})")


if __name__ == "__main__":
    main()
