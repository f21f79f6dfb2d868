"""Alembic environment for the neodefense catalog.

Normally run in code by :func:`neodefense.catalog.db.upgrade`, which passes an open connection
(``config.attributes["connection"]``). For developers, the command line works too, e.g. a new
revision from the models::

    alembic -c src/neodefense/catalog/alembic.ini -x url=sqlite:///var/dev.db \\
        revision --autogenerate -m "what changed"

(the URL may also come from NEODEFENSE_DB_URL). Review generated revisions by hand.
"""

from __future__ import annotations

from alembic import context

from neodefense.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: migrations copy tables instead
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    from neodefense.catalog.db import make_url

    url = context.get_x_argument(as_dictionary=True).get("url")
    _configure(url=make_url(url), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from neodefense.catalog.db import create_engine

    engine = create_engine(context.get_x_argument(as_dictionary=True).get("url"))
    try:
        with engine.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
