"""Benchmark: one object propagated 10 and 100 years, with and without the STM; close approaches.

Objects: Bennu (JPL #118 state, A1 from SRP + NEOCC A2) and Apophis (JPL #220, A1/A2; its 2029
approach at 38,000 km and the later chaotic orbit make it the harder case). Output every 30 days
(122 and 1,218 times). Prints the median of 5 runs after one warm-up run (which opens the
ephemeris and imports scipy).

    .venv/bin/python benchmarks/bench_propagator.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from neodefense.dynamics.nongrav import NonGrav
from neodefense.dynamics.propagator import close_approaches, propagate

# Barycentric ICRF states (au, au/day) from the JPL SBDB elements in
# ../shared/data/reference/jpl_sbdb (converted as in tests/test_propagator.py).
OBJECTS = {
    "Bennu #118": (
        2455562.5,
        np.array([-1.1951358497470375, -0.20726169740275777, -0.11201671367058591,
                  8.881468275645003e-05, -0.013056287625252275, -0.00737762552429156]),
        NonGrav(A1=5.997716382838458e-13, A2=-4.60477568857430e-14, fitted=("A1", "A2")),
    ),
    "Apophis #220": (
        2461000.5,
        np.array([-0.08189031583500392, -0.773899274254462, -0.28971491378960046,
                  0.019882390319179134, 0.001053931874963097, 0.0008922123774867094]),
        NonGrav(A1=5e-13, A2=-2.901766637153165e-14, fitted=("A1", "A2")),
    ),
}
REPEATS = 5


def median_seconds(fn) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    print(f"median of {REPEATS} runs, one object per call, output every 30 days")
    for name, (epoch, state, ng) in OBJECTS.items():
        for years in (10, 100):
            times = epoch + np.arange(30.0, years * 365.25 + 1.0, 30.0)
            plain = median_seconds(lambda e=epoch, s=state, t=times, n=ng:
                                   propagate(e, s, t, nongrav=n))
            with_stm = median_seconds(lambda e=epoch, s=state, t=times, n=ng:
                                      propagate(e, s, t, nongrav=n, stm=True))
            cas = median_seconds(lambda e=epoch, s=state, y=years, n=ng:
                                 close_approaches(e, s, e + y * 365.25, nongrav=n))
            print(f"{name:13s} {years:3d} y: propagate {plain:7.3f} s | with STM + 2 non-grav "
                  f"partials {with_stm:7.3f} s ({with_stm / plain:.1f}x) | close_approaches "
                  f"(earth, moon) {cas:7.3f} s")


if __name__ == "__main__":
    main()
