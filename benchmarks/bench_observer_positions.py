"""Benchmark: barycentric observer states for 10,000 and 100,000 real-ish observations.

The observation mix (stations, times 1893-2025, satellite and roving records) is that of every
obs80 file in ../shared/data/observations, repeated to the requested size. Prints the median of
5 runs (after one warm-up run that loads the IERS tables and the DE440 kernel).

    .venv/bin/python benchmarks/bench_observer_positions.py [N ...]
"""

from __future__ import annotations

import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import erfa
import numpy as np

from neodefense.observatories.codes import observatories
from neodefense.observatories.positions import observer_states

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"


def _mjd(line: str) -> float:
    year, month, day = int(line[15:19]), int(line[20:22]), float(line[23:32])
    d1, d2 = erfa.cal2jd(year, month, int(day))
    return float((d1 - 2400000.5) + d2) + (day - int(day))


def load_mix() -> dict[str, np.ndarray]:
    """Station, time and observer position of every usable optical record in the data files."""
    table = observatories()
    rows: list[tuple] = []
    for path in sorted(DATA.rglob("*.obs80")):
        pending = None
        for line in path.read_text(errors="replace").splitlines():
            if len(line) < 80:
                continue
            note2, stn = line[14], line[77:80]
            try:
                if note2 == "s" and pending:
                    unit = "ICRF_KM" if line[32] == "1" else "ICRF_AU"
                    xyz = [float(line[a:b].replace(" ", "")) for a, b in
                           ((34, 45), (46, 57), (58, 69))]
                    rows.append((pending, stn, unit, *xyz))
                elif note2 == "v" and pending:
                    rows.append((pending, stn, "WGS84", float(line[34:44]), float(line[45:55]),
                                 float(line[56:61])))
                elif note2 in "SV":
                    pending = _mjd(line)
                    continue
                elif note2 not in "RrXx" and stn in table and table[stn].is_fixed:
                    rows.append((_mjd(line), stn, "", math.nan, math.nan, math.nan))
            except ValueError:
                pass
            pending = None
    cols = list(zip(*rows, strict=True))
    return {
        "mjd": np.array(cols[0]),
        "stn": np.array(cols[1], dtype=object),
        "sys": np.array(cols[2], dtype=object),
        "pos1": np.array(cols[3]),
        "pos2": np.array(cols[4]),
        "pos3": np.array(cols[5]),
    }


def bench(mix: dict[str, np.ndarray], n: int, repeats: int = 5) -> float:
    sample = {k: np.resize(v, n) for k, v in mix.items()}
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pos, vel = observer_states(sample["stn"], sample["mjd"], sys=sample["sys"],
                                   pos1=sample["pos1"], pos2=sample["pos2"], pos3=sample["pos3"])
        times.append(time.perf_counter() - t0)
    assert pos.shape == (n, 3) and np.isfinite(pos).all()
    return statistics.median(times)


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [10_000, 100_000]
    warnings.simplefilter("ignore")
    mix = load_mix()
    kinds = {k: int((mix["sys"] == k).sum()) for k in ("", "ICRF_KM", "ICRF_AU", "WGS84")}
    print(f"mix: {len(mix['mjd'])} real observations, {len(set(mix['stn']))} stations, "
          f"kinds {kinds}")
    t0 = time.perf_counter()
    observer_states(mix["stn"][:100], mix["mjd"][:100], sys=mix["sys"][:100],
                    pos1=mix["pos1"][:100], pos2=mix["pos2"][:100], pos3=mix["pos3"][:100])
    print(f"first call (loads IERS tables, DE440): {time.perf_counter() - t0:.2f} s")
    for n in sizes:
        median = bench(mix, n)
        print(f"N={n:>7}: median of 5 {median:.3f} s  ->  {n / median:,.0f} obs/s")


if __name__ == "__main__":
    main(sys.argv[1:])
