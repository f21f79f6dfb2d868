"""Observatory submissions over HTTP under load (issue 6 benchmark): ``--clients`` observatories
POST real observation files at the same time to a real server, for ``--seconds``.

Setup (not timed): a fresh PostgreSQL database ``bench_api_<pid>`` on ``--pg-admin`` (dropped at
the end), ``--clients`` observatory accounts, each with its own token and its own MPC station code
(fixed ground stations of the shipped table), and uvicorn serving
:func:`neodefense.api.create_app` over the database on 127.0.0.1 in a subprocess (its CPU does
not share the clients' GIL; ``--server-workers`` processes).

Load: every client (an ``httpx.AsyncClient`` of its own; all clients in one asyncio loop) loops
until the time is up, POSTing ``/v1/submissions`` with its bearer token. A body is
``--lines`` consecutive single-line optical obs80 records of a real demo file (2008 TC3, 2024
BX1, Apophis, Bennu) with the station code rewritten to the client's and every time shifted by
the client's submission number × 10⁻⁵ day, so each submission is new; every ``--dup-every``-th
submission resends the previous body byte for byte (a duplicate submission).

Checks at the end (exit status 1 if any fails): every answer was 201; the catalog holds exactly
the sum of the receipts' ``accepted`` (in all, and per station: nothing lost, nothing stored
twice); every receipt accounts for all its lines (accepted + duplicates + rejected); every
resend was answered 'duplicate' with all its records counted as duplicates and nothing accepted,
and no fresh submission had a duplicate; submissions rows == 201 answers; no orphan rows.

Printed: latency p50 / p99 / max (client side, request sent to receipt read), submissions/s,
accepted observations/s, and the totals.

    .venv/bin/python benchmarks/bench_api_submissions.py [--seconds 60] [--clients 50]
        [--lines 40] [--dup-every 5] [--pg-admin URL] [--server-workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from neodefense.catalog import access, db, queries
from neodefense.observations import io as obs_io
from neodefense.observatories.codes import observatories

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEMO = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
DEMO_FILES = ("2008_TC3.obs80", "2024_BX1.obs80", "99942_Apophis.obs80", "101955_Bennu.obs80")
#: Time shift per submission of a client (one unit of the 5th decimal of a day: 0.864 s).
SHIFT_DAY = 1e-5


# -- the observation files --------------------------------------------------------------------------

def demo_records() -> dict[str, list[str]]:
    """Per demo file, its single-line optical records from fixed stations (obs80 text), with
    their day written to at most 6 decimals (so a shift of 10⁻⁵ day is representable)."""
    out: dict[str, list[str]] = {}
    for name in DEMO_FILES:
        batch = obs_io.read((DEMO / name).read_bytes(), name).batch
        keep = ((batch["kind"] == "optical") & (batch["sys"] == "") & ~batch["deprecated"])
        lines = [raw for raw, k in zip(batch["raw"].tolist(), keep.tolist(), strict=True)
                 if k and "\n" not in raw and len(raw) == 80 and raw[14] in " CBPAcTEOHNn"]
        out[name] = [x for x in lines if _day_field(x)[1] <= 6]
    return out


def _day_field(line: str) -> tuple[float, int]:
    """(day of month with fraction, number of decimals) of an obs80 line (columns 24-32)."""
    text = line[23:32].strip()
    return float(text), len(text.partition(".")[2])


def shifted(line: str, stn: str, shift_day: float) -> str:
    """The record with station ``stn`` and its time moved by ``shift_day`` (backwards instead
    when forwards would leave the day), written to at least 5 decimals of a day."""
    day, decimals = _day_field(line)
    decimals = max(decimals, 5)  # a 10⁻⁵ day step must show (4-decimal times gain a digit)
    new = day + shift_day
    if int(new) != int(day):
        new = day - shift_day
    text = f"{new:0{3 + decimals}.{decimals}f}".ljust(9)
    return f"{line[:23]}{text}{line[32:77]}{stn}"


@dataclasses.dataclass
class Sent:
    client: int
    seq: int
    resend: bool
    lines: int
    status_code: int
    latency_s: float
    receipt: dict[str, Any]


class Client:
    """One observatory: its token, station and the bodies it sends."""

    def __init__(self, index: int, token: str, stn: str, records: list[str], lines: int):
        self.index, self.token, self.stn = index, token, stn
        self.records, self.lines = records, lines
        self.seq = 0
        self.previous: bytes | None = None

    def next_body(self, dup_every: int) -> tuple[bytes, bool]:
        self.seq += 1
        if self.previous is not None and dup_every > 0 and self.seq % dup_every == 0:
            return self.previous, True
        start = (self.seq * 7919 + self.index * 104729) % max(1, len(self.records) - self.lines)
        window = self.records[start:start + self.lines]
        body = "".join(shifted(x, self.stn, self.seq * SHIFT_DAY) + "\n" for x in window)
        self.previous = body.encode()
        return self.previous, False

    async def run(self, base_url: str, deadline: float, dup_every: int, out: list[Sent]) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "text/plain"}
        async with httpx.AsyncClient(base_url=base_url, timeout=600.0) as http:
            while time.perf_counter() < deadline:
                body, resend = self.next_body(dup_every)
                t0 = time.perf_counter()
                answer = await http.post("/v1/submissions", content=body, headers=headers,
                                         params={"filename": f"c{self.index}-{self.seq}.obs80"
                                                 if not resend else
                                                 f"c{self.index}-{self.seq - 1}.obs80"})
                latency = time.perf_counter() - t0
                receipt = answer.json() if answer.headers.get("content-type", "").startswith(
                    "application/json") else {"text": answer.text[:200]}
                out.append(Sent(self.index, self.seq, resend, body.count(b"\n"),
                                answer.status_code, latency, receipt))


# -- the server -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(url: str, port: int, workers: int) -> None:
    """Run uvicorn over the catalog at ``url`` (the subprocess's job)."""
    import uvicorn

    os.environ["NEODEFENSE_BENCH_CATALOG"] = url
    uvicorn.run("bench_api_submissions:make_app", factory=True, host="127.0.0.1", port=port,
                workers=workers, log_level="warning", access_log=False)


def make_app():  # noqa: ANN201 - uvicorn factory
    from neodefense.api import create_app

    return create_app(catalog_url=os.environ["NEODEFENSE_BENCH_CATALOG"])


@contextlib.contextmanager
def server(url: str, workers: int) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, __file__, "--serve", url, "--port", str(port),
                                "--server-workers", str(workers)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with status {process.returncode}")
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not come up within 120 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def fresh_database(pg_admin: str) -> Iterator[str]:
    """A new PostgreSQL database ``bench_api_<pid>``, upgraded to the catalog schema; its URL.
    Dropped afterwards."""
    name = f"bench_api_{os.getpid()}"
    admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(pg_admin).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def station_codes(n: int) -> list[str]:
    """``n`` fixed ground stations of the shipped MPC table, spread over it."""
    fixed = sorted(code for code, o in observatories().items()
                   if o.is_fixed and len(code) == 3 and o.observations_type in ("", "optical"))
    step = max(1, len(fixed) // n)
    return fixed[::step][:n]


# -- the run ----------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def verify(engine: sa.Engine, sent: list[Sent], clients: list[Client]) -> list[str]:
    """The end-of-run checks; the list of failures (empty: all good)."""
    problems: list[str] = []
    bad = [s for s in sent if s.status_code != 201]
    if bad:
        problems.append(f"{len(bad)} answers were not 201, e.g. {bad[0].status_code} "
                        f"{bad[0].receipt}")
    good = [s for s in sent if s.status_code == 201]
    accepted = sum(s.receipt["accepted"] for s in good)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM observations")).scalar_one()
        per_stn = dict(conn.execute(sa.text(
            "SELECT stn, count(*) FROM observations GROUP BY stn")).all())
        n_submissions = conn.execute(sa.text("SELECT count(*) FROM submissions")).scalar_one()
        unowned = conn.execute(sa.text(
            "SELECT count(*) FROM submissions WHERE account_id IS NULL")).scalar_one()
    if stored != accepted:
        problems.append(f"catalog holds {stored} observations, receipts accepted {accepted}")
    by_client = collections.Counter()
    for s in good:
        by_client[s.client] += s.receipt["accepted"]
    for c in clients:
        if per_stn.get(c.stn, 0) != by_client[c.index]:
            problems.append(f"station {c.stn}: catalog {per_stn.get(c.stn, 0)}, receipts "
                            f"{by_client[c.index]}")
    for s in good:
        r = s.receipt
        if r["accepted"] + r["duplicates"] + r["n_rejected"] != s.lines:
            problems.append(f"client {s.client} #{s.seq}: {s.lines} lines, receipt {r}")
        if s.resend and (r["status"] != "duplicate" or r["accepted"] != 0
                         or r["duplicates"] != s.lines - r["n_rejected"]
                         or r["duplicate_of"] is None):
            problems.append(f"client {s.client} #{s.seq}: a resend answered {r}")
        if not s.resend and r["duplicates"] != 0:
            problems.append(f"client {s.client} #{s.seq}: a fresh file had duplicates: {r}")
    if n_submissions != len(good):
        problems.append(f"{n_submissions} submissions rows for {len(good)} 201 answers")
    if unowned:
        problems.append(f"{unowned} submissions without their account")
    integrity = queries.check_integrity(engine)
    if any(integrity.values()):
        problems.append(f"integrity: {integrity}")
    return problems


async def load(base_url: str, clients: list[Client], seconds: float, dup_every: int
               ) -> tuple[list[Sent], float]:
    sent: list[Sent] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(c.run(base_url, t0 + seconds, dup_every, sent) for c in clients))
    return sent, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--lines", type=int, default=40, help="records per submission")
    parser.add_argument("--dup-every", type=int, default=5,
                        help="every n-th submission of a client resends the previous one")
    parser.add_argument("--pg-admin", default=PG_ADMIN_URL)
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.server_workers)
        return 0

    records = demo_records()
    names = [n for n in DEMO_FILES if len(records[n]) > args.lines]
    codes = station_codes(args.clients)
    with fresh_database(args.pg_admin) as url:
        engine = db.connect(url)
        try:
            clients = []
            for i, stn in enumerate(codes):
                account = access.create_account(engine, f"bench observatory {i:02d}",
                                                 f"bench{i}@example.org", [stn])
                _, token = access.create_token(engine, f"bench {i:02d}", access.OBSERVATORY,
                                               account["id"])
                clients.append(Client(i, token, stn, records[names[i % len(names)]],
                                      args.lines))
            with server(url, args.server_workers) as base:
                print(f"{len(clients)} clients, {args.lines} records per file, every "
                      f"{args.dup_every}th a resend, {args.seconds:.0f} s against {base} "
                      f"({args.server_workers} uvicorn worker(s)), PostgreSQL {url.rsplit('/', 1)[1]}")
                sent, elapsed = asyncio.run(load(base, clients, args.seconds, args.dup_every))
            problems = verify(engine, sent, clients)
        finally:
            engine.dispose()

    good = [s for s in sent if s.status_code == 201]
    latencies = [s.latency_s for s in sent]
    accepted = sum(s.receipt["accepted"] for s in good)
    duplicates = sum(s.receipt["duplicates"] for s in good)
    rejected = sum(s.receipt["n_rejected"] for s in good)
    resends = sum(1 for s in good if s.resend)
    print(f"submissions: {len(sent)} ({len(good)} answered 201; {resends} resends answered "
          f"'duplicate') in {elapsed:.1f} s")
    print(f"observations: {accepted} accepted, {duplicates} duplicates, {rejected} rejected")
    print(f"latency: p50 {1e3 * statistics.median(latencies):.0f} ms, "
          f"p99 {1e3 * percentile(latencies, 99):.0f} ms, max {1e3 * max(latencies):.0f} ms")
    print(f"throughput: {len(sent) / elapsed:.1f} submissions/s, "
          f"{accepted / elapsed:.0f} accepted observations/s, "
          f"{sum(s.lines for s in good) / elapsed:.0f} records/s")
    if problems:
        print("FAILED checks:")
        for p in problems[:20]:
            print("  " + p)
        return 1
    print("checks: catalog == receipts (in all and per station), resends are duplicates, "
          "every line accounted for, no orphans: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
