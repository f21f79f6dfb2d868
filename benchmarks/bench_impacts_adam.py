"""Benchmark: our Monte Carlo impact search against adam_core's ``calculate_impacts``, side by side.

adam-core / adam-assist (B612 Asteroid Institute) are NOT project dependencies. They run in a
separate virtualenv, in a subprocess this script starts (``--worker`` mode reads one JSON request
on stdin and answers on stdout; that mode imports only adam, numpy and the standard library):

    python3 -m venv /tmp/adam_bench && /tmp/adam_bench/bin/pip install adam-core adam-assist
    .venv/bin/python benchmarks/bench_impacts_adam.py [--adam-python /tmp/adam_bench/bin/python]
        [--object apophis|bennu] [--samples 200] [--years 10] [--repeat 1] [--cores 1 2]
        [--quick] [--adam-epsilon 1e-8] [--adam-timeout 300]

(tested with adam-core 0.6.1, adam-assist 0.5.0 — the versions the package index here serves;
they are printed). When the adam side cannot run (venv missing, import error, timeout) the
script says exactly why and still times ours.

The same problem on both sides:

* **Object and uncertainty**: (99942) Apophis, JPL #220 — its 8×8 covariance (cometary
  elements + A1, A2) at 2021-01-01 TDB mapped to a barycentric ICRF state + A1, A2 (as in
  ``bench_impacts.py``). adam gets the same state and the same matrix as its 9×9
  coordinate + A1/A2/A3 covariance (A3 = 0, variance 0), with A1, A2 in its
  ``NonGravitationalParameters`` (asteroid g(r) = (1 au / r)², as JPL's NK = 0, NM = 2);
  ``--object bennu`` uses JPL #118 instead (A1 from the SRP area-to-mass ratio, NEOCC's A2).
* **Samples**: ``--samples`` Monte Carlo variants of that 8-D Gaussian on each side (adam:
  ``VariantOrbits.create(method="monte-carlo")`` inside ``calculate_impacts``, seed 0; ours:
  :func:`neodefense.impacts.sampling.monte_carlo`, seed 0) — the same distribution, not the
  same draws.
* **Span**: ``--years`` × 365.25 days from the epoch (10 years by default: through the
  2029-04-13 flyby at 38,000 km).
* **What is computed**: adam: ``calculate_impacts(orbits, num_days, ASSISTPropagator(),
  num_samples, processes, seed)`` (Earth collisions, stopping at impact) then
  ``calculate_impact_probabilities``. Ours: the samples, then
  :func:`neodefense.impacts.encounters.propagate_virtual_asteroids` with Earth close-approach
  detection (every approach inside 0.05 au recorded with its b-plane state — more than adam
  records) and :func:`neodefense.impacts.search.monte_carlo_impacts` (impact = closest approach
  below 6378.137 km; adam: 6378.1363 km). Earth only on both sides (``bodies=("earth",)``;
  the monitor also does the Moon).
* **Cores**: 1 — ours in this process (``client=None``), adam with ``processes=1``,
  ``RAYON_NUM_THREADS=1``, both pinned to CPU 0 (``sched_setaffinity``); 2 — ours on a 2-worker
  Dask LocalCluster (:func:`neodefense.compute.client`; start-up not timed), adam with
  ``processes=2`` and ``RAYON_NUM_THREADS=2`` on both CPUs. (In adam-assist 0.5 the
  ``processes`` argument of ``detect_collisions`` is ignored: the Rust backend decides; the CPU
  seconds it used are printed to show whether it used more than one core.)
* Each side runs a small warm-up (ephemeris and code paths), then ``--repeat`` timed runs
  (median). Wall time and, for the in-process runs, CPU time (``time.process_time``; less
  sensitive to the machine's load, which is printed) are reported.

Not the same: the integrator settings. adam-assist's defaults are IAS15 ``epsilon = 1e-6``,
``adaptive_mode = 1`` (the legacy global step criterion), ``min_dt = 1e-9`` d, every variant
in ONE simulation (the step is the hardest variant's), the loop in Rust. Ours: ``epsilon =
1e-10``, ``adaptive_mode = 2`` (PRS23), ``min_dt = 1e-6`` d, EIH relativity from all planets,
one simulation per variant (module docstring of :mod:`neodefense.dynamics.propagator` for why:
these settings keep Apophis through 2029 within 0.3 km of a tight-tolerance run). So two more
lines are printed: **ours at adam's tolerance** (1 core, our propagator with ``epsilon = 1e-6``,
adaptive mode 2 kept: mode 1 pins the step at ``min_dt`` through the 2029 flyby), which splits
the speed difference into tolerance and architecture; and, with ``--adam-epsilon E``, adam at
``epsilon = E`` (probe: with mode 1, ``epsilon ≤ 1e-8`` did not get one Apophis variant
through 2029 in 60 s; ``--adam-timeout`` bounds the wait).

Output: per configuration both wall times, the ratio ours / adam (< 1: we are faster) and both
impact probabilities. For Apophis over 10 years both must be 0 (upper limit ~3/N at 95 %): the
consistency check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ADAM_PYTHON = "/tmp/adam_bench/bin/python"
DAYS_PER_YEAR = 365.25
OBJECTS = {"apophis": "99942_Apophis_JPL220.json", "bennu": "101955_Bennu_JPL118.json"}
#: adam-assist's ASSISTPropagator defaults (adam-assist 0.5.0)
ADAM_DEFAULTS = "epsilon 1e-6, adaptive_mode 1, min_dt 1e-9 d"


# ==============================================================================================
# adam side (runs in the adam virtualenv: standard library, numpy and adam only)
# ==============================================================================================
def _adam_orbits(req: dict[str, Any]) -> Any:
    import pyarrow as pa
    from adam_core.coordinates import CartesianCoordinates, CoordinateCovariances, Origin
    from adam_core.orbits import Orbits
    from adam_core.orbits.non_gravitational_parameters import NonGravitationalParameters
    from adam_core.time import Timestamp

    p = np.asarray(req["params"], dtype=float)
    c8 = np.asarray(req["covariance"], dtype=float)
    c9 = np.zeros((9, 9))
    c9[:8, :8] = c8
    t = Timestamp.from_jd(pa.array([float(req["epoch_tdb_jd"])]), scale="tdb")
    coords = CartesianCoordinates.from_kwargs(
        x=[p[0]], y=[p[1]], z=[p[2]], vx=[p[3]], vy=[p[4]], vz=[p[5]], time=t,
        covariance=CoordinateCovariances.from_matrix(c9[None]),
        origin=Origin.from_kwargs(code=["SOLAR_SYSTEM_BARYCENTER"]), frame="equatorial")
    ng = NonGravitationalParameters.from_kwargs(A1=[p[6]], A2=[p[7]], A3=[0.0])
    return Orbits.from_kwargs(orbit_id=[req["name"]], object_id=[req["name"]],
                              coordinates=coords, non_gravitational_parameters=ng)


def adam_worker() -> None:
    """Read a request (JSON, stdin), time adam's calculate_impacts, answer (JSON, stdout)."""
    import importlib.metadata

    req = json.loads(sys.stdin.read())
    threads = int(req["threads"])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
    from adam_assist import ASSISTPropagator
    from adam_core.dynamics.impacts import calculate_impact_probabilities, calculate_impacts

    versions = {k: importlib.metadata.version(k) for k in ("adam-core", "adam-assist")}
    orbits = _adam_orbits(req)
    prop = ASSISTPropagator(**req.get("propagator", {}))

    def run(n: int, days: int) -> tuple[float, float, dict[str, Any]]:
        t0, c0 = time.perf_counter(), time.process_time()
        variants, collisions = calculate_impacts(orbits, days, prop, num_samples=n,
                                                 processes=threads, seed=int(req["seed"]))
        probs = calculate_impact_probabilities(variants, collisions)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        ip = probs.cumulative_probability.to_pylist()
        return wall, cpu, {"n_variants": len(variants), "n_impacts": len(collisions),
                           "ip": float(ip[0]) if ip else 0.0}

    run(2, 30)  # warm-up: ephemeris files, code paths
    walls, cpus, out = [], [], {}
    for _ in range(int(req["repeat"])):
        wall, cpu, out = run(int(req["samples"]), int(req["days"]))
        walls.append(wall)
        cpus.append(cpu)
    print(json.dumps({"versions": versions, "walls": walls, "cpus": cpus, **out}))


def run_adam(python: str, req: dict[str, Any], timeout_s: float) -> tuple[dict | None, str]:
    """The adam side in its own interpreter: (result, "") or (None, why it did not run)."""
    if not Path(python).exists():
        return None, (f"no adam interpreter at {python} (create it: python3 -m venv /tmp/adam_bench"
                      " && /tmp/adam_bench/bin/pip install adam-core adam-assist)")
    env = dict(os.environ, RAYON_NUM_THREADS=str(req["threads"]))
    try:
        proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker"],
                              input=json.dumps(req), capture_output=True, text=True, env=env,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return None, f"adam did not finish within {timeout_s:.0f} s (--adam-timeout)"
    if proc.returncode != 0:
        tail = "\n      ".join(proc.stderr.strip().splitlines()[-6:])
        return None, f"adam failed (exit {proc.returncode}):\n      {tail}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


# ==============================================================================================
# our side (project virtualenv)
# ==============================================================================================
def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def ours_once(sol: Any, n: int, days: float, seed: int, client: Any = None
              ) -> tuple[float, float, dict[str, Any]]:
    from neodefense.impacts import sampling
    from neodefense.impacts.encounters import propagate_virtual_asteroids
    from neodefense.impacts.search import monte_carlo_impacts

    t0, c0 = time.perf_counter(), time.process_time()
    vas = sampling.monte_carlo(sol.epoch_tdb_jd, sol.params, sol.covariance, n, seed, sol.names)
    rows, failed = propagate_virtual_asteroids(vas.epoch_tdb_jd, vas.params,
                                               vas.epoch_tdb_jd + days, ("earth",),
                                               {"earth": 0.05}, sol.names, client=client)
    events = monte_carlo_impacts(vas, rows, ("earth",), [i for i, _ in failed])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, {"n_variants": len(vas), "n_impacts": sum(e.n_impacting for e in events),
                       "ip": float(sum(e.ip for e in events)), "approaches": int(rows.size),
                       "failed": len(failed)}


def ours(sol: Any, n: int, days: float, seed: int, repeat: int, cores: int,
         epsilon: float | None = None) -> dict[str, Any]:
    """Warm-up, then ``repeat`` timed runs on ``cores`` (1: here, pinned to CPU 0; else Dask)."""
    from neodefense.dynamics import propagator

    saved_eps = propagator.IAS15_EPSILON
    if cores == 1:
        saved_aff = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        if saved_aff:
            os.sched_setaffinity(0, {min(saved_aff)})
        try:
            if epsilon is not None:
                propagator.IAS15_EPSILON = epsilon
            ours_once(sol, 2, 30.0, seed)  # warm-up
            runs = [ours_once(sol, n, days, seed) for _ in range(repeat)]
        finally:
            propagator.IAS15_EPSILON = saved_eps
            if saved_aff:
                os.sched_setaffinity(0, saved_aff)
    else:
        from bench_impacts import workers_cpu_s

        from neodefense import compute

        with compute.client(address="", n_workers=cores) as client:
            client.wait_for_workers(cores)
            ours_once(sol, 2 * cores, 30.0, seed, client)  # warm-up on the workers
            runs, worker_cpus = [], []
            for _ in range(repeat):
                c0 = workers_cpu_s(client)
                runs.append(ours_once(sol, n, days, seed, client))
                worker_cpus.append(workers_cpu_s(client) - c0)
    out = runs[-1][2]
    out["walls"] = [r[0] for r in runs]
    out["cpus"] = [r[1] for r in runs] if cores == 1 else None
    if cores > 1:
        out["worker_cpus"] = worker_cpus
    return out


# ==============================================================================================
def _ip(res: dict[str, Any]) -> str:
    n = res["n_variants"]
    if res["ip"] == 0.0:
        return f"IP 0 ({res['n_impacts']}/{n} impacts; < {3.0 / n:.2g} at 95 %)"
    return f"IP {res['ip']:.3g} ({res['n_impacts']}/{n} impacts)"


def _times(res: dict[str, Any]) -> str:
    wall = statistics.median(res["walls"])
    cpu = f", CPU {statistics.median(res['cpus']):.1f} s" if res.get("cpus") else ""
    if res.get("worker_cpus"):
        cpu = f", workers' CPU {statistics.median(res['worker_cpus']):.1f} s"
    return f"wall {wall:6.1f} s{cpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--adam-python", default=DEFAULT_ADAM_PYTHON)
    parser.add_argument("--object", choices=sorted(OBJECTS), default="apophis")
    parser.add_argument("--samples", type=int, help="Monte Carlo samples (default 200; quick 50)")
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="50 samples, 1 and 2 cores")
    parser.add_argument("--adam-epsilon", type=float,
                        help="also run adam at this IAS15 epsilon (1 core)")
    parser.add_argument("--adam-timeout", type=float, default=300.0)
    parser.add_argument("--no-tolerance-line", action="store_true",
                        help="skip 'ours at adam's tolerance'")
    args = parser.parse_args()
    if args.worker:
        adam_worker()
        return
    n = args.samples or (50 if args.quick else 200)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_impacts import jpl_solution

    sol = jpl_solution(OBJECTS[args.object])
    days = args.years * DAYS_PER_YEAR
    print(f"bench_impacts_adam: {sol.name} (epoch {sol.epoch_tdb_jd} TDB, state + A1, A2, "
          f"8×8 covariance), {n} Monte Carlo samples, {args.years:g} years ({int(days)} days), "
          f"Earth impacts; {_load()}")
    req = {"name": args.object, "epoch_tdb_jd": sol.epoch_tdb_jd,
           "params": sol.params.tolist(), "covariance": sol.covariance.tolist(),
           "samples": n, "days": int(round(days)), "seed": args.seed, "repeat": args.repeat}

    rows: list[tuple[str, str, str, str]] = []
    adam_note = ""
    for cores in args.cores:
        r_ours = ours(sol, n, days, args.seed, args.repeat, cores)
        print(f"  ours  {cores} core(s): {_times(r_ours)}  {_ip(r_ours)}; "
              f"{r_ours['approaches']} approaches < 0.05 au recorded, {r_ours['failed']} failed"
              f" — {_load()}", flush=True)
        r_adam, why = run_adam(args.adam_python, {**req, "threads": cores}, args.adam_timeout)
        if r_adam is None:
            adam_note = why
            print(f"  adam  {cores} core(s): NOT RUN — {why}", flush=True)
            rows.append((f"{cores} core(s)", f"{statistics.median(r_ours['walls']):.1f} s",
                         "—", "—"))
            continue
        versions = ", ".join(f"{k} {v}" for k, v in r_adam["versions"].items())
        print(f"  adam  {cores} core(s): {_times(r_adam)}  {_ip(r_adam)}  [{versions}; "
              f"{ADAM_DEFAULTS}]", flush=True)
        w_ours, w_adam = statistics.median(r_ours["walls"]), statistics.median(r_adam["walls"])
        ratio = w_ours / w_adam
        print(f"        {cores} core(s): ours / adam = {ratio:.2f} "
              f"({'we are faster' if ratio < 1 else 'adam is faster'})", flush=True)
        rows.append((f"{cores} core(s)", f"{w_ours:.1f} s", f"{w_adam:.1f} s", f"{ratio:.2f}"))
        if r_ours["ip"] != 0.0 or r_adam["ip"] != 0.0:
            print(f"        IPs: ours {r_ours['ip']:.3g}, adam {r_adam['ip']:.3g}")

    if not args.no_tolerance_line:
        r_tol = ours(sol, n, days, args.seed, args.repeat, 1, epsilon=1e-6)
        print(f"  ours  1 core at adam's tolerance (epsilon 1e-6, adaptive mode 2): "
              f"{_times(r_tol)}  {_ip(r_tol)}", flush=True)
        rows.append(("1 core, ours at epsilon 1e-6", f"{statistics.median(r_tol['walls']):.1f} s",
                     "", ""))
    if args.adam_epsilon is not None:
        r_eps, why = run_adam(args.adam_python, {**req, "threads": 1,
                                                 "propagator": {"epsilon": args.adam_epsilon}},
                              args.adam_timeout)
        if r_eps is None:
            print(f"  adam  1 core at epsilon {args.adam_epsilon:g}: NOT RUN — {why}")
            short = "timeout" if "within" in why else "failed"
            rows.append((f"1 core, adam at epsilon {args.adam_epsilon:g}", "", short, ""))
        else:
            print(f"  adam  1 core at epsilon {args.adam_epsilon:g}: {_times(r_eps)}  "
                  f"{_ip(r_eps)}")
            rows.append((f"1 core, adam at epsilon {args.adam_epsilon:g}", "",
                         f"{statistics.median(r_eps['walls']):.1f} s", ""))

    print(f"\n== {sol.name}, {n} samples, {args.years:g} years (median wall of {args.repeat}; "
          f"{_load()})")
    print(f"  {'configuration':32s} {'ours':>9s} {'adam':>9s} {'ours/adam':>10s}")
    for label, a, b, c in rows:
        print(f"  {label:32s} {a:>9s} {b:>9s} {c:>10s}")
    if adam_note:
        print(f"  adam side not run: {adam_note}")


if __name__ == "__main__":
    main()
