"""Engines for the catalog database: URL handling, SQLite pragmas, schema upgrade on connect.

:func:`connect` is the one way in: it builds the engine, brings the schema to the newest Alembic
revision shipped inside the package (no alembic.ini needed) and refreshes the observatory table.
SQLite databases run in WAL mode with foreign keys on; write transactions on SQLite start with
``BEGIN IMMEDIATE`` (see :func:`write_transaction`) so two writers queue instead of failing.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from neodefense.catalog.models import Observatory

#: Default catalog: an SQLite file in the working directory's var/ (override with the URL or
#: the NEODEFENSE_DB_URL environment variable).
DEFAULT_URL = "sqlite:///var/neodefense.db"
#: How long an SQLite writer waits for another writer before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 120_000
#: PostgreSQL advisory lock key held while the schema is upgraded.
_MIGRATION_LOCK_KEY = 0x6E65_6F64_0001


def make_url(url: str | os.PathLike | None = None) -> sa.URL:
    """A SQLAlchemy URL from a URL string, a plain file path (SQLite) or None (environment
    variable NEODEFENSE_DB_URL, else :data:`DEFAULT_URL`). ``postgresql://`` means psycopg 3."""
    if url is None:
        url = os.environ.get("NEODEFENSE_DB_URL") or DEFAULT_URL
    if isinstance(url, os.PathLike) or "://" not in str(url):
        return sa.URL.create("sqlite", database=str(Path(url)))
    parsed = sa.make_url(str(url))
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


def is_postgres(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


def create_engine(url: str | os.PathLike | None = None, echo: bool = False) -> Engine:
    """An engine with the catalog's connection settings, without touching the schema."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            sa_url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(sa_url, echo=echo, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN (pysqlite's own is always DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache: bulk index inserts
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction meant to write: committed on success, rolled back on error.

    SQLite takes the write lock at BEGIN (IMMEDIATE), so concurrent writers wait for each other
    (up to :data:`SQLITE_BUSY_TIMEOUT_MS`) rather than failing when a reader upgrades."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration built in code, pointing at the migrations inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", "neodefense.catalog:migrations")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` in one transaction (PostgreSQL: under an advisory lock,
    so processes connecting at the same time do not race)."""
    with write_transaction(engine) as conn:
        if is_postgres(conn):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def refresh_observatories(engine: Engine) -> int:
    """Insert or update the MPC observatory codes from the shipped table; returns rows changed.
    Codes no longer in the table are kept (old observations still name them)."""
    from neodefense.observatories.codes import observatories

    table = Observatory.__table__
    wanted = {
        o.code: {
            "code": o.code,
            "name": o.name,
            "longitude_deg": _nan_to_none(o.longitude_deg),
            "rho_cos_phi": _nan_to_none(o.rho_cos_phi),
            "rho_sin_phi": _nan_to_none(o.rho_sin_phi),
            "observations_type": o.observations_type,
        }
        for o in observatories().values()
    }
    with write_transaction(engine) as conn:
        have = {row["code"]: dict(row) for row in conn.execute(sa.select(table)).mappings()}
        changed = [row for code, row in wanted.items() if have.get(code) != row]
        if not changed:
            return 0
        insert = _dialect_insert(conn)(table)
        stmt = insert.on_conflict_do_update(
            index_elements=["code"],
            set_={c: insert.excluded[c] for c in wanted[next(iter(wanted))] if c != "code"})
        conn.execute(stmt, changed)
    return len(changed)


def _dialect_insert(bind: Engine | Connection):
    if is_postgres(bind):
        from sqlalchemy.dialects.postgresql import insert
    elif is_sqlite(bind):
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database {bind.dialect.name!r}")
    return insert


def connect(url: str | os.PathLike | None = None, *, upgrade_schema: bool = True,
            echo: bool = False) -> Engine:
    """Open the catalog at ``url``: create or upgrade its schema to the newest revision and
    refresh the observatory codes. Safe to call any number of times, from several processes."""
    engine = create_engine(url, echo=echo)
    if upgrade_schema:
        upgrade(engine)
        refresh_observatories(engine)
    return engine
