"""Shared fixtures: catalog databases on SQLite and PostgreSQL, and the real data directory.

``catalog_url`` runs a test on a fresh SQLite file and on a fresh PostgreSQL schema. PostgreSQL
tests use one throwaway database (``neodefense_test_<hex>``) per test session, created on
:data:`PG_ADMIN_URL` and dropped at the end; each fixture instance gets its own schema in it.
Those params carry ``pytest.mark.postgres`` (deselect with ``-m "not postgres"``); an unreachable
server fails them loudly, since CI runs them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

# Property tests draw the same examples on every run (deterministic CI; set
# HYPOTHESIS_PROFILE=explore for fresh random examples when hunting for bugs).
hypothesis_settings.register_profile("deterministic", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: Real data shared beside the repository (tests only; package code never reads it).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_database() -> Iterator[sa.URL]:
    """A throwaway PostgreSQL database for the session; its URL."""
    name = f"neodefense_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 10})
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({exc.orig}); the postgres "
                    "tests run in CI: start the server, or deselect them with -m 'not postgres'",
                    pytrace=False)
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def make_catalog_url(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """Factory: ``make_catalog_url('sqlite' | 'postgresql')`` -> URL of a new, empty catalog
    (for fixtures of any scope)."""

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.sqlite'}"
        if backend != "postgresql":
            raise ValueError(backend)
        base: sa.URL = request.getfixturevalue("pg_database")
        schema = f"t_{secrets.token_hex(6)}"
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        engine.dispose()
        return base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)

    return make


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, make_catalog_url: Callable[[str], str]) -> str:
    """URL of a fresh, empty catalog database: SQLite file, then PostgreSQL schema."""
    return make_catalog_url(request.param)


@pytest.fixture()
def catalog_engine(catalog_url: str) -> Iterator[sa.Engine]:
    """An engine on ``catalog_url`` with the schema created (``db.connect``); disposed after."""
    from neodefense.catalog import db

    engine = db.connect(catalog_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_embedded():
    """One embedded Prefect API (temporary server, SQLite in a temporary PREFECT_HOME) for the
    whole session: starting it costs ~10 s, so flow tests share it."""
    from prefect.testing.utilities import prefect_test_harness

    # its telemetry service writes to the harness's SQLite and logs 'database is locked'
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=120):
        yield
