"""A private PostgreSQL cluster for one test: initdb into a temporary directory, start, stop
(``immediate``: the way a crash stops it), start again, remove.

Fault tests stop the server under a running workload; they must never touch the shared server
on 5432 that the other tests use. This cluster lives in its own directory (data, Unix socket,
log) and listens on 127.0.0.1 on a free port other than 5432, with trust authentication for
the ``postgres`` role. As root (PostgreSQL refuses to run as root) the binaries run as the
``postgres`` OS user through ``runuser`` and the directory is handed to that user.

    with PgServer() as pg:
        url = pg.create_database("catalog")
        ...
        pg.stop()        # pg_ctl stop -m immediate: every backend killed, no checkpoint
        pg.start()       # crash recovery replays the WAL
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

__all__ = ["PgServer", "postgres_bin"]

#: the shared server the rest of the suite uses: never this one
SHARED_PORT = 5432


def postgres_bin(name: str) -> Path:
    """The newest installed PostgreSQL's ``name`` binary (``initdb``, ``pg_ctl``)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        raise FileNotFoundError(f"no /usr/lib/postgresql/*/bin/{name}: PostgreSQL is not installed")
    return Path(found[-1])


def _free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != SHARED_PORT:
            return port


class PgServer:
    """One throwaway cluster; see the module docstring. ``url(database)`` is its SQLAlchemy URL
    (psycopg 3)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        if self.port == SHARED_PORT:
            raise ValueError("the private cluster must not use the shared server's port 5432")
        self.as_root = os.geteuid() == 0
        # not under pytest's tmp_path: that is private to root, and the server runs as postgres
        self.root = Path(tempfile.mkdtemp(prefix="neodefense-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "server.log"
        self.socket_dir.mkdir()
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self.running = False
        self._initialized = False

    # -- commands
    def _run(self, *args: str | os.PathLike, timeout_s: float = 60.0) -> str:
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n"
                               f"{done.stderr}\n{self.server_log()}")
        return done.stdout

    def server_log(self) -> str:
        """The server's log so far (for failure messages)."""
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def init(self) -> PgServer:
        """initdb (trust authentication, no sync of the fresh files: nothing to protect yet)."""
        if not self._initialized:
            self._run(postgres_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
                      "--no-sync", "-E", "UTF8", "--locale=C")
            self._initialized = True
        return self

    def start(self) -> PgServer:
        """Start (and wait until it accepts connections); after an immediate stop this runs
        crash recovery first.

        ``fsync=off``: a stopped server process is the crash these tests make, not a power cut,
        so what was written reaches the disk through the page cache anyway; without the
        flushes, recovery on a busy shared machine takes well under a second instead of
        several."""
        self.init()
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=30 -c shared_buffers=32MB -c fsync=off")
        self._run(postgres_bin("pg_ctl"), "start", "-w", "-t", "60", "-D", self.data,
                  "-l", self.log, "-o", options)
        self.running = True
        return self

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m mode``: 'immediate' kills every backend at once, as a crash would
        (the next start recovers from the WAL); 'fast' shuts down cleanly."""
        if self.running:
            self._run(postgres_bin("pg_ctl"), "stop", "-w", "-t", "60", "-D", self.data,
                      "-m", mode)
            self.running = False

    def remove(self) -> None:
        """Stop if running and delete the whole directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- databases
    def url(self, database: str = "postgres") -> sa.URL:
        return sa.URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1",
                             port=self.port, database=database)

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URL as a string (passwordless)."""
        admin = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            admin.dispose()
        return self.url(name).render_as_string(hide_password=False)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Block until a connection succeeds (after :meth:`start` this is immediate)."""
        deadline = time.monotonic() + timeout_s
        engine = sa.create_engine(self.url(), poolclass=sa.pool.NullPool)
        try:
            while True:
                try:
                    with engine.connect() as conn:
                        conn.exec_driver_sql("SELECT 1")
                    return
                except sa.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            engine.dispose()
