"""Throughput of the obs80 reader (and of validate.validate after it) on ≥ 1 M real records.

The real files in ../shared/data/observations are repeated in memory until the buffer holds at
least ``--records`` observations; the whole buffer is parsed (as ``iter_parse`` chunks of
``--chunk-mb``, the way io.iter_read reads a big file) ``--repeat`` times. Prints the median
records per second for parse alone and for parse + validate, and the peak memory.

    .venv/bin/python benchmarks/bench_parse_obs80.py [--records 1000000] [--repeat 5]
                                                    [--stream-mb 200]

``--stream-mb N`` also writes an N-MB file to a temporary directory and streams it from disk
through ``observations.io.iter_read`` in a fresh process, reporting that process's peak RSS (the
reader holds about one chunk at a time, so the peak should not grow with N).
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from neodefense.observations import obs80, validate
from neodefense.observatories import codes

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
FILES = ["433_Eros.obs80", "99942_Apophis.obs80", "2008_TC3.obs80", "2024_BX1.obs80",
         "101955_Bennu.obs80", "4581.obs80", "5011.obs80", "85585.obs80"]


def build(n_records: int) -> tuple[bytes, int]:
    parts, counts = [], []
    for name in FILES:
        data = (DATA / name).read_bytes()
        if not data.endswith(b"\n"):
            data += b"\n"
        parts.append(data)
        counts.append(len(obs80.parse(data, name).batch))
    unit, per_unit = b"".join(parts), sum(counts)
    reps = -(-n_records // per_unit)
    return unit * reps, per_unit * reps


def run(buf: bytes, chunk_bytes: int, known: frozenset[str] | None, do_validate: bool) -> int:
    n = 0
    for part in obs80.iter_parse(io.BytesIO(buf), "bench.obs80", chunk_bytes=chunk_bytes):
        batch = part.batch
        if do_validate:
            batch, _ = validate.validate(batch, "bench.obs80", known_stations=known)
        n += len(batch)
    return n


# VmHWM (not ru_maxrss, which Linux carries over from the forking parent across exec)
_STREAM_CHILD = """
import sys
from neodefense.observations import io as oio
n = 0
for part in oio.iter_read(sys.argv[1]):
    n += len(part.batch)
hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]
print(n, int(hwm) / 1024)
"""


def stream_file(mb: float, unit: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.obs80"
        with open(path, "wb") as f:
            written = 0
            while written < mb * 1e6:
                f.write(unit)
                written += len(unit)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _STREAM_CHILD, str(path)], check=True,
                             capture_output=True, text=True).stdout.split()
        dt = time.perf_counter() - t0
        n, rss = int(out[0]), float(out[1])
        print(f"streamed a {written / 1e6:.0f} MB file from disk (io.iter_read, 8 MB chunks): "
              f"{n:,} records in {dt:.2f} s (incl. interpreter start), peak RSS {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chunk-mb", type=float, default=8.0)
    ap.add_argument("--stream-mb", type=float, default=0.0)
    args = ap.parse_args()
    buf, n_expected = build(args.records)
    chunk = int(args.chunk_mb * (1 << 20))
    known = frozenset(codes.observatories())
    print(f"buffer: {len(buf) / 1e6:.1f} MB, {n_expected:,} records, chunks of {args.chunk_mb} MB")
    for label, do_validate, stations in (("parse", False, None),
                                          ("parse + validate", True, None),
                                          ("parse + validate(known stations)", True, known)):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = run(buf, chunk, stations, do_validate)
            times.append(time.perf_counter() - t0)
            assert n == n_expected, (n, n_expected)
        med = statistics.median(times)
        print(f"{label:34s} median {med:6.3f} s  ->  {n_expected / med / 1e6:5.2f} M records/s "
              f"(min {min(times):.3f} s, max {max(times):.3f} s)")
    # peak memory of one streamed pass (tracemalloc counts numpy buffers)
    tracemalloc.start()
    run(buf, chunk, known, True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak traced memory during a streamed pass: {peak / 1e6:.0f} MB "
          f"(input buffer {len(buf) / 1e6:.0f} MB held separately); process max RSS {rss:.0f} MB")
    if args.stream_mb:
        unit, _ = build(1)
        stream_file(args.stream_mb, unit)


if __name__ == "__main__":
    main()
