"""Catalog insert throughput: ≥ 1 M observations into a fresh SQLite file and a fresh PostgreSQL
database (targets: 100 k/s and 200 k/s).

The observations are real ones (../shared/data/observations, parsed with the obs80 reader), then
repeated with every copy shifted back by a whole number of days so that all are distinct
observations for the catalog. What is timed is the catalog's own work for one submission, in one
transaction, exactly as ``ingest`` does it after parsing: validation, object resolution, the
duplicate check and the inserts (``catalog.ingest.catalog_parts``, chunks of ``--chunk`` rows like
those io.iter_read yields), and the commit. Each run gets a new database; the median of
``--runs`` runs is printed per backend, with the median CPU seconds of this process and (for a
local PostgreSQL) of the server process: on a shared machine those vary less than the wall
time, and show which side limits it. ``--end-to-end`` also times ``ingest`` of the same
observations written as one obs80 file (raw storage + parse + the above).

    .venv/bin/python benchmarks/bench_insert.py [--rows 1000000] [--runs 3]
        [--backend sqlite|postgresql|both] [--end-to-end]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from neodefense.catalog import db, ingest
from neodefense.observations import obs80
from neodefense.observations.batch import ObservationBatch, ParseResult

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
FILES = ["433_Eros.obs80", "99942_Apophis.obs80", "2008_TC3.obs80", "2024_BX1.obs80",
         "101955_Bennu.obs80", "4581.obs80", "5011.obs80", "85585.obs80"]
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SHIFT_DAY = 1.0  # a multiple of every time precision in the files (some are 0.01 day)


def synthetic(n_rows: int) -> ObservationBatch:
    """Real observations repeated until there are ``n_rows``, copy j shifted by -j·SHIFT_DAY."""
    real = ObservationBatch.concat(obs80.parse((DATA / name).read_bytes(), name).batch
                                   for name in FILES)
    reps = -(-n_rows // len(real))
    index = np.tile(np.arange(len(real)), reps)[:n_rows]
    copy = np.repeat(np.arange(reps), len(real))[:n_rows]
    batch = real.take(index)
    batch.columns["obsTime_mjd"] = batch["obsTime_mjd"] - copy * SHIFT_DAY
    batch.columns["line"] = np.arange(1, n_rows + 1)
    return batch


def chunks(batch: ObservationBatch, rows: int) -> list[ParseResult]:
    return [ParseResult(batch.take(slice(i, i + rows)), [], "obs80", min(rows, len(batch) - i))
            for i in range(0, len(batch), rows)]


class FreshDatabase:
    """A new, empty catalog database per run (an SQLite file, or a PostgreSQL database)."""

    def __init__(self, backend: str):
        self.backend = backend

    def __enter__(self) -> sa.Engine:
        if self.backend == "sqlite":
            self._dir = tempfile.TemporaryDirectory(prefix="bench_insert_")
            url = f"sqlite:///{self._dir.name}/catalog.sqlite"
        else:
            self._name = f"neodefense_bench_{secrets.token_hex(6)}"
            self._admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{self._name}"')
            url = sa.make_url(PG_ADMIN_URL).set(database=self._name)
        self.engine = db.connect(url)
        return self.engine

    def __exit__(self, *exc) -> None:
        self.engine.dispose()
        if self.backend == "sqlite":
            self._dir.cleanup()
        else:
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{self._name}" WITH (FORCE)')
            self._admin.dispose()


def _process_cpu_s(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` (NaN if it is not on this machine or not
    readable: a remote database server)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Timing:
    """One run: wall time, this process's CPU time (all threads) and, for PostgreSQL, the
    CPU time of the server process serving the ingest. With 2 cores shared with other work the
    CPU times are the steadier figures; on an idle machine wall ≈ max(client, server), as the
    two overlap."""

    wall_s: float
    client_cpu_s: float
    server_cpu_s: float = float("nan")


def time_catalog(engine: sa.Engine, parts: list[ParseResult], n_rows: int) -> Timing:
    raw = b"synthetic submission\n"
    submission_id, _ = ingest._store_raw(engine, io.BytesIO(raw), 0,
                                         hashlib.sha256(raw).hexdigest(), len(raw), "bench", "")
    receipt = ingest.Receipt("bench", submission_id)
    backend_pid = None
    started, cpu_started = time.perf_counter(), time.process_time()
    with db.write_transaction(engine) as conn:
        if db.is_postgres(conn):
            backend_pid = conn.connection.driver_connection.info.backend_pid
            server_started = _process_cpu_s(backend_pid)
        ingest.catalog_parts(conn, parts, receipt)
    timing = Timing(time.perf_counter() - started, time.process_time() - cpu_started)
    if backend_pid is not None:
        timing.server_cpu_s = _process_cpu_s(backend_pid) - server_started
    assert (receipt.accepted, receipt.duplicates, receipt.n_rejected) == (n_rows, 0, 0), receipt
    return timing


def time_end_to_end(engine: sa.Engine, data: bytes, n_rows: int) -> float:
    started = time.perf_counter()
    receipt = ingest.ingest(engine, data, "bench.obs80")
    elapsed = time.perf_counter() - started
    assert (receipt.accepted, receipt.n_rejected) == (n_rows, 0), receipt.as_json()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=100_000, help="rows per parsed chunk")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--end-to-end", action="store_true")
    args = parser.parse_args()

    batch = synthetic(args.rows)
    parts = chunks(batch, args.chunk)
    obs80_bytes = obs80.write(batch, use_raw=False).encode() if args.end_to_end else b""
    print(f"{args.rows:,} observations ({len(FILES)} real files repeated), "
          f"chunks of {args.chunk:,}, median of {args.runs} runs")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        runs = []
        for _ in range(args.runs):
            with FreshDatabase(backend) as engine:
                runs.append(time_catalog(engine, parts, args.rows))
        median = statistics.median(r.wall_s for r in runs)
        cpu = f"; median cpu: client {statistics.median(r.client_cpu_s for r in runs):.2f} s"
        if backend == "postgresql":
            cpu += f", server {statistics.median(r.server_cpu_s for r in runs):.2f} s"
        print(f"{backend:10s} catalog insert: {args.rows / median:10,.0f} obs/s "
              f"(median {median:.2f} s; runs {', '.join(f'{r.wall_s:.2f}' for r in runs)}"
              f"{cpu}; load {os.getloadavg()[0]:.1f})", flush=True)
        if args.end_to_end:
            seconds = []
            for _ in range(args.runs):
                with FreshDatabase(backend) as engine:
                    seconds.append(time_end_to_end(engine, obs80_bytes, args.rows))
            median = statistics.median(seconds)
            print(f"{backend:10s} ingest of a {len(obs80_bytes) / 1e6:.0f} MB obs80 file: "
                  f"{args.rows / median:10,.0f} obs/s (median {median:.2f} s)")


if __name__ == "__main__":
    main()
