"""Benchmark: orbit fits per hour over every shared object, with 1 and with 2 Dask workers.

Objects: every obs80 file in ../shared/data/observations and its short_arc/ folder (8 + 6
files), each fitted from scratch with :func:`neodefense.orbits.fit.fit_orbit` (Gauss or ranging,
arc extension, outlier rejection, radar where present). Non-gravitational model: ``a2``
(transverse Yarkovsky) for (99942) Apophis and (101955) Bennu, whose JPL solutions fit one;
``none`` for the others. ``--skip-eros`` leaves out (433) Eros (19,258 lines, about 35 s per fit
alone, the longest task by far).

Method, for n_workers in (1, 2): a :func:`neodefense.compute.client` LocalCluster (processes, 1
thread each, per-worker set-up: astropy offline + ASSIST ephemeris). The batches are read in
this process and broadcast to every worker before timing. Warm-up: one fit of 85585 (199 obs)
pinned to each worker. Then ``--repeat`` runs (default 3) of the whole batch: all fits
submitted at once (largest first, so the longest task starts first), wall time until every
result is back. Reported: median wall time, fits/hour = objects / median × 3600, and the scaling
efficiency rate₂ / (2·rate₁). Per-object fit time (``OrbitSolution.runtime_s`` measured inside
the worker; median over the runs) and status from the 1-worker runs.

    .venv/bin/python benchmarks/bench_fit_scaling.py [--repeat N] [--skip-eros] [--workers 1 2]

Wall times depend on what else runs on the machine: the script prints the load average before
and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from neodefense import compute
from neodefense.observations import io
from neodefense.observations.batch import ObservationBatch

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
#: files whose JPL solution fits a transverse non-gravitational acceleration
NONGRAV_A2 = {"99942_Apophis.obs80", "101955_Bennu.obs80"}
EROS = "433_Eros.obs80"
WARMUP = "85585.obs80"


def object_files(skip_eros: bool) -> list[Path]:
    """Every obs80 file of the shared observations and short arcs (sorted by path)."""
    files = sorted(DATA.glob("*.obs80")) + sorted((DATA / "short_arc").glob("*.obs80"))
    return [f for f in files if not (skip_eros and f.name == EROS)]


def fit_task(batch: ObservationBatch, nongrav: str, name: str) -> dict[str, Any]:
    """Runs in a worker: one fit from scratch; returns a small summary (not the residuals)."""
    from neodefense.orbits.fit import fit_orbit

    t0 = time.perf_counter()
    sol = fit_orbit(batch, nongrav=nongrav)
    return {"name": name, "designation": sol.designation, "status": sol.status,
            "message": sol.message, "runtime_s": sol.runtime_s,
            "task_s": time.perf_counter() - t0, "n_obs": sol.n_obs, "n_used": sol.n_used,
            "n_rejected": sol.n_rejected, "rms_arcsec": sol.rms_arcsec,
            "nongrav": nongrav, "pid": os.getpid()}


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} CPUs)"


def run_cluster(n_workers: int, jobs: list[tuple[str, ObservationBatch, str]],
                warmup: ObservationBatch, repeat: int) -> tuple[list[float], list[list[dict]]]:
    """Wall times of ``repeat`` whole-batch runs and their per-object summaries."""
    walls: list[float] = []
    results: list[list[dict]] = []
    with compute.client(address="", n_workers=n_workers) as client:
        client.wait_for_workers(n_workers)
        info = client.scheduler_info(n_workers=-1)["workers"]
        threads = sorted(w["nthreads"] for w in info.values())
        print(f"  cluster up: {len(info)} worker process(es), threads each {threads}")
        # warm-up: one fit pinned to each worker (IERS tables, code paths, allocator)
        warm = [client.submit(fit_task, warmup, "none", "warm-up", workers=[addr],
                              allow_other_workers=False, pure=False) for addr in info]
        t0 = time.perf_counter()
        client.gather(warm)
        print(f"  warm-up (one 85585 fit per worker, in parallel): {time.perf_counter() - t0:.2f} s")
        # data on every worker before timing: the runs measure fitting, not transfer
        futures = client.scatter([b for _, b, _ in jobs], broadcast=True)
        for run in range(repeat):
            t0 = time.perf_counter()
            tasks = [client.submit(fit_task, fut, ng, name, pure=False, priority=len(jobs) - k)
                     for k, (fut, (name, _, ng)) in enumerate(zip(futures, jobs, strict=True))]
            out = client.gather(tasks)
            wall = time.perf_counter() - t0
            walls.append(wall)
            results.append(out)
            busy = sum(r["task_s"] for r in out)
            print(f"  run {run + 1}: wall {wall:7.2f} s, sum of task times {busy:7.2f} s, "
                  f"{len(out) / wall * 3600:8.1f} fits/hour")
    return walls, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-eros", action="store_true",
                        help="leave out (433) Eros (about 35 s per fit)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    files = object_files(args.skip_eros)
    jobs = []
    for path in files:
        batch = io.read(path).batch
        ng = "a2" if path.name in NONGRAV_A2 else "none"
        jobs.append((path.relative_to(DATA).as_posix(), batch, ng))
    jobs.sort(key=lambda j: len(j[1]), reverse=True)  # largest first
    warmup = io.read(DATA / WARMUP).batch
    print(f"{len(jobs)} objects ({'Eros skipped' if args.skip_eros else 'Eros included'}), "
          f"{sum(len(b) for _, b, _ in jobs)} observation rows; {_load()}")

    rates: dict[int, float] = {}
    per_object: dict[int, list[list[dict]]] = {}
    t_all = time.perf_counter()
    for n in args.workers:
        print(f"{n} worker(s):")
        walls, results = run_cluster(n, jobs, warmup, args.repeat)
        med = statistics.median(walls)
        rates[n] = len(jobs) / med * 3600.0
        per_object[n] = results
        print(f"  median wall {med:.2f} s -> {rates[n]:.1f} fits/hour "
              f"(runs {[round(w, 2) for w in walls]}); {_load()}")

    first = min(per_object)
    print(f"\nper-object fit time ({first}-worker runs, median of {args.repeat}; "
          f"runtime_s inside the worker):")
    print(f"  {'file':28s} {'obs rows':>8s} {'nongrav':>7s} {'fit s':>8s} {'status':14s} "
          f"{'used/obs':>11s} {'rejected':>8s} {'RMS arcsec':>10s}")
    total_fit_s = 0.0
    for k, (name, batch, ng) in enumerate(jobs):
        rows = [run[k] for run in per_object[first]]
        r = rows[-1]
        fit_s = statistics.median(x["runtime_s"] for x in rows)
        total_fit_s += fit_s
        statuses = {x["status"] for x in rows}
        status = r["status"] if len(statuses) == 1 else "/".join(sorted(statuses))
        print(f"  {name:28s} {len(batch):8d} {ng:>7s} {fit_s:8.2f} {status:14s} "
              f"{r['n_used']:5d}/{r['n_obs']:<5d} {r['n_rejected']:8d} {r['rms_arcsec']:10.3f}")
    print(f"  sum of per-object fit times: {total_fit_s:.2f} s")

    print()
    for n, rate in rates.items():
        print(f"fits/hour with {n} worker(s): {rate:.1f}")
    if 1 in rates and 2 in rates:
        print(f"scaling efficiency rate2 / (2 * rate1) = {rates[2] / (2.0 * rates[1]):.3f}")
    print(f"total benchmark time {time.perf_counter() - t_all:.1f} s; {_load()}")


if __name__ == "__main__":
    main()
