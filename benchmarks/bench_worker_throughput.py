"""Objects fitted per second and objects monitored per hour per Dask worker, on the demo
objects' real orbits, with 1 and 2 single-threaded workers (issue 7 benchmark; the figures
docs/scale.md projects from).

Objects: the five bundled demo files (src/neodefense/data/demo: 2008 TC3, 2024 BX1, (99942)
Apophis, (101955) Bennu, 2023 QR6), or ``--objects``. They span the cost classes of a catalog:
two imminent impactors (most virtual asteroids end at the impact within hours), two
well-observed objects without virtual impactors in the next 100 years (Apophis with its 2029
encounter at 6 Earth radii, which makes its samples expensive after it; Bennu), and a
53-day arc whose line of variations is long.

For each ``--workers`` count n: a :func:`neodefense.compute.client` LocalCluster (processes,
1 thread each, per-worker set-up), a warm-up (one tiny monitor run of 2008 TC3 on the cluster),
then

1. **Fits**: every object fitted from scratch with :func:`neodefense.orbits.fit.fit_orbit` as
   the orbit flow calls it (``[orbits]`` nongrav ``none``, the 100-year close-approach search of
   the nominal; time limit ``--fit-time-limit``), all submitted at once (largest first; the
   batches broadcast to the workers before timing), ``--fit-repeats`` times. Printed: median
   wall time, fits/s and fits/s per worker, per-object fit time (``runtime_s``, inside the
   worker), its CPU seconds, status and MOID.
2. **Monitoring**: for every horizon of ``--years`` (default 100, the production horizon, and
   10), every object's solution (from the first fit run) monitored with
   :func:`neodefense.impacts.monitor.monitor_solution` with the production ``[monitoring]``
   settings of config/neodefense.toml (LOV, 1,001 samples, the 200-sample Monte Carlo
   cross-check, Earth and Moon; ``--samples`` / ``--cross-check-samples`` override), the objects
   one after the other as the monitoring flow runs them, each spread over the workers by the
   monitor. Printed per object: wall time, status, method, samples, cumulative IP, number of
   VIs, and the CPU seconds of the workers (``time.process_time`` through ``client.run``) and of
   this process (the monitor's serial part: nominal orbit, LOV, search, plus the Dask
   scheduler). Per horizon: objects/hour = objects / total wall × 3600, and per worker.

**Load.** On a shared machine the wall times measure the load as much as the code; the load
average is printed before and after every part. The CPU seconds vary much less: the line
"CPU-based" gives the objects/hour one fully available core would give (3600 / CPU seconds per
object, workers + serial part), the figure docs/scale.md projects from; it assumes no
contention and perfect balance, so it is an upper bound of what a busy core does.

    .venv/bin/python benchmarks/bench_worker_throughput.py [--workers 1 2] [--years 100 10]
        [--objects 2008_TC3.obs80 ...] [--fit-repeats 3] [--samples N]
        [--cross-check-samples N] [--fit-time-limit 600] [--skip-fits] [--skip-monitor]
        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from neodefense import compute, config

DEMO = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
OBJECTS = ("2008_TC3.obs80", "2024_BX1.obs80", "99942_Apophis.obs80", "101955_Bennu.obs80",
           "2023_QR6.obs80")
#: the designation the catalog gives the numbered objects (the files' early lines carry the
#: provisional ones)
DESIGNATIONS = {"99942_Apophis.obs80": "99942", "101955_Bennu.obs80": "101955"}


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} CPUs)"


def fit_task(batch: Any, designation: str, nongrav: str, time_limit_s: float
             ) -> tuple[Any, float]:
    """Runs in a worker: one fit from scratch, as flows/orbits.py calls it; the solution and
    the CPU seconds it took."""
    from neodefense.orbits.fit import fit_orbit

    cpu0 = time.process_time()
    solution = fit_orbit(batch, designation, nongrav=nongrav, time_limit_s=time_limit_s)
    return solution, time.process_time() - cpu0


def worker_cpu_s(client: Any) -> float:
    """CPU seconds used so far by all worker processes together."""
    return float(sum(client.run(time.process_time).values()))


def warm_up(client: Any, tc3: tuple[str, Any]) -> float:
    """One tiny monitor run (fit of 2008 TC3 here, 11 LOV samples for 0.01 year on the
    cluster): code paths and tables loaded in every process."""
    from neodefense.impacts.monitor import monitor_solution
    from neodefense.orbits.fit import fit_orbit

    t0 = time.perf_counter()
    designation, batch = tc3
    sol = fit_orbit(batch, designation, close_approach_years=None)
    monitor_solution(sol, batch=batch, years=0.01, n_samples=11, cross_check=False,
                     client=client)
    return time.perf_counter() - t0


def run_fits(client: Any, jobs: list[tuple[str, Any]], nongrav: str, time_limit_s: float,
             repeats: int) -> tuple[list[float], list[list[tuple[Any, float]]]]:
    """Wall times of ``repeats`` runs fitting every object at once; (solution, CPU s) of each."""
    futures = client.scatter([b for _, b in jobs], broadcast=True, hash=False)
    walls, results = [], []
    for k in range(repeats):
        t0 = time.perf_counter()
        tasks = [client.submit(fit_task, fut, name, nongrav, time_limit_s, pure=False,
                               priority=len(jobs) - i)
                 for i, (fut, (name, _)) in enumerate(zip(futures, jobs, strict=True))]
        done = client.gather(tasks)
        walls.append(time.perf_counter() - t0)
        results.append(done)
        cpu = sum(c for _, c in done)
        print(f"    fit run {k + 1}: wall {walls[-1]:7.2f} s, sum of fit times "
              f"{sum(s.runtime_s for s, _ in done):7.2f} s (CPU {cpu:.2f} s), "
              f"{len(jobs) / walls[-1]:.3f} fits/s; {_load()}", flush=True)
    return walls, results


def monitor_all(client: Any, jobs: list[tuple[str, Any]], solutions: dict[str, Any],
                options: dict[str, Any], years: float) -> list[dict[str, Any]]:
    """Monitor every object in turn (as the monitoring flow does); per-object records."""
    from neodefense.impacts.monitor import monitor_solution

    rows = []
    for designation, batch in jobs:
        sol = solutions[designation]
        if not sol.ok and sol.status != "arc_too_short":
            rows.append({"designation": designation, "status": f"not monitored ({sol.status})"})
            continue
        cpu_w0, cpu_me0, t0 = worker_cpu_s(client), time.process_time(), time.perf_counter()
        a = monitor_solution(sol, batch=batch, method=str(options["method"]), years=years,
                             n_samples=int(options["n_samples"]) or None,
                             bodies=tuple(options["bodies"]), seed=int(options["seed"]),
                             entry_altitude_km=float(options["entry_altitude_km"]),
                             cross_check=int(options["cross_check_samples"]) > 0,
                             cross_check_samples=int(options["cross_check_samples"]) or None,
                             client=client)
        wall = time.perf_counter() - t0
        row = {"designation": designation, "status": a.status, "method": a.method,
               "n_samples": int(a.n_samples), "cumulative_ip": float(a.cumulative_ip),
               "n_vi": len(a.virtual_impactors), "wall_s": wall,
               "worker_cpu_s": worker_cpu_s(client) - cpu_w0,
               "driver_cpu_s": time.process_time() - cpu_me0,
               "cross_check_ip": (a.cross_check or {}).get("cumulative_ip"),
               "moid_au": sol.moid_au, "n_obs": sol.n_obs}
        rows.append(row)
        print(f"      {designation:<10} {a.status:<14} {a.method:<4} {a.n_samples:>5} VAs  "
              f"IP {a.cumulative_ip:9.3g}  {row['n_vi']:>3} VI  wall {wall:8.1f} s  "
              f"CPU workers {row['worker_cpu_s']:8.1f} s + here {row['driver_cpu_s']:6.1f} s; "
              f"{_load()}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--years", type=float, nargs="+", default=[100.0, 10.0])
    parser.add_argument("--objects", nargs="+", default=list(OBJECTS),
                        help="files of src/neodefense/data/demo")
    parser.add_argument("--fit-repeats", type=int, default=3)
    parser.add_argument("--fit-time-limit", type=float, default=600.0,
                        help="seconds per fit (production [orbits] time_limit_s is 120: on a "
                             "heavily loaded machine a from-scratch Apophis fit can exceed it)")
    parser.add_argument("--samples", type=int, default=None,
                        help="monitoring n_samples (default: [monitoring] of the config)")
    parser.add_argument("--cross-check-samples", type=int, default=None)
    parser.add_argument("--skip-fits", action="store_true",
                        help="fit once (not reported) only to get the solutions to monitor")
    parser.add_argument("--skip-monitor", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    from neodefense.observations import io as obs_io

    settings = config.load()
    options = dict(settings.raw["monitoring"])
    if args.samples is not None:
        options["n_samples"] = args.samples
    if args.cross_check_samples is not None:
        options["cross_check_samples"] = args.cross_check_samples
    nongrav = str(settings.raw["orbits"]["nongrav"])
    jobs = [(DESIGNATIONS.get(name, Path(name).stem.replace("_", " ")),
             obs_io.read(DEMO / name).batch) for name in args.objects]
    jobs.sort(key=lambda j: len(j[1]), reverse=True)  # largest first
    tc3 = ("2008 TC3", obs_io.read(DEMO / "2008_TC3.obs80").batch)
    print(f"objects: {', '.join(f'{d} ({len(b)} rows)' for d, b in jobs)}")
    print(f"monitoring: method {options['method']}, n_samples {options['n_samples'] or 'default'}, "
          f"cross-check {options['cross_check_samples']}, bodies {options['bodies']}, "
          f"horizons {args.years} years; fits: nongrav {nongrav}; {_load()}")

    out: dict[str, Any] = {"objects": [d for d, _ in jobs], "options": {
        k: v for k, v in options.items() if k != "alert_config"}, "runs": {}}
    t_all = time.perf_counter()
    for n in args.workers:
        print(f"\n{n} worker(s):", flush=True)
        record: dict[str, Any] = {}
        with compute.client(settings, address="", n_workers=n) as client:
            client.wait_for_workers(n)
            print(f"  warm-up {warm_up(client, tc3):.1f} s; {_load()}", flush=True)
            walls, fits = run_fits(client, jobs, nongrav, args.fit_time_limit,
                                   1 if args.skip_fits else args.fit_repeats)
            solutions = {d: s for (d, _), (s, _) in zip(jobs, fits[0], strict=True)}
            if not args.skip_fits:
                med = statistics.median(walls)
                per_object = [{"designation": d, "status": s.status, "n_obs": s.n_obs,
                               "moid_au": s.moid_au,
                               "runtime_s": statistics.median(run[i][0].runtime_s for run in fits),
                               "cpu_s": statistics.median(run[i][1] for run in fits)}
                              for i, ((d, _), (s, _)) in enumerate(zip(jobs, fits[0], strict=True))]
                cpu = sum(r["cpu_s"] for r in per_object)
                record["fits"] = {
                    "walls_s": walls, "median_s": med, "fits_per_s": len(jobs) / med,
                    "fits_per_s_per_worker": len(jobs) / med / n, "cpu_s": cpu,
                    "cpu_fits_per_s_per_core": len(jobs) / cpu, "per_object": per_object}
                print(f"  fits: median wall {med:.2f} s -> {len(jobs) / med:.3f} fits/s, "
                      f"{len(jobs) / med / n:.3f} per worker; CPU {cpu:.1f} s -> CPU-based "
                      f"{len(jobs) / cpu:.3f} fits/s per core", flush=True)
                for row in per_object:
                    print(f"    {row['designation']:<10} {row['n_obs']:>6} obs  "
                          f"{row['status']:<14} {row['runtime_s']:7.2f} s (CPU {row['cpu_s']:.2f} s)"
                          f"  MOID {row['moid_au']} au")
            if not args.skip_monitor:
                record["monitor"] = {}
                for years in args.years:
                    print(f"  monitoring, {years:g} years:", flush=True)
                    t0 = time.perf_counter()
                    rows = monitor_all(client, jobs, solutions, options, years)
                    wall = time.perf_counter() - t0
                    done = [r for r in rows if "wall_s" in r]
                    cpu = sum(r["worker_cpu_s"] + r["driver_cpu_s"] for r in done)
                    per_hour = len(done) / wall * 3600.0
                    record["monitor"][str(years)] = {
                        "rows": rows, "wall_s": wall, "objects_per_hour": per_hour,
                        "objects_per_hour_per_worker": per_hour / n, "cpu_s": cpu,
                        "cpu_objects_per_hour_per_core": len(done) / cpu * 3600.0 if cpu else None}
                    print(f"    {len(done)} objects in {wall:.1f} s: {per_hour:.1f} objects/hour, "
                          f"{per_hour / n:.1f} per worker (wall); CPU {cpu:.1f} s in all -> "
                          f"CPU-based {len(done) / cpu * 3600.0:.1f} objects/hour per core; "
                          f"{_load()}", flush=True)
        out["runs"][str(n)] = record

    print("\nsummary")
    for n, record in out["runs"].items():
        if "fits" in record:
            f = record["fits"]
            print(f"  {n} worker(s): fits {f['fits_per_s']:.3f}/s "
                  f"({f['fits_per_s_per_worker']:.3f}/s per worker, wall); CPU-based "
                  f"{f['cpu_fits_per_s_per_core']:.3f} fits/s per core")
        for years, m in record.get("monitor", {}).items():
            print(f"  {n} worker(s), {float(years):g} y: {m['objects_per_hour']:.1f} objects/hour "
                  f"({m['objects_per_hour_per_worker']:.1f} per worker, wall); CPU-based "
                  f"{m['cpu_objects_per_hour_per_core']:.1f} objects/hour per core")
    print(f"total {time.perf_counter() - t_all:.0f} s; {_load()}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
