"""The catalog: the only code that talks to the database (SQLAlchemy 2, Alembic migrations).

* :mod:`~neodefense.catalog.db` — ``connect(url)``: engine, schema upgrade, SQLite pragmas.
* :mod:`~neodefense.catalog.models` — the tables and the observation dedup key.
* :mod:`~neodefense.catalog.ingest` — ``ingest(engine, source, filename)`` → ``Receipt``.
* :mod:`~neodefense.catalog.queries` — designations, observations, submissions, raw bytes.
"""
