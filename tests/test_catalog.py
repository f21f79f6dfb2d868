"""The catalog database: migrations, dedup keys, reading back, raw bytes, designations."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from neodefense.catalog import db, ingest, models, queries
from neodefense.observations import io as obs_io
from neodefense.observations.batch import COLUMNS, ObservationBatch
from neodefense.observatories.codes import observatories

TABLES = {"observatories", "raw_blobs", "raw_chunks", "submissions", "objects", "designations",
          "observations", "rejections", "orbit_solutions", "orbit_residuals",
          "impact_assessments", "virtual_impactors", "alerts", "alert_states", "risk_list",
          "risk_list_removals", "subscribers", "subscriber_channels", "deliveries",
          "delivery_attempts", "observatory_accounts", "observatory_stations", "api_tokens",
          "api_audit"}


# -- schema ----------------------------------------------------------------------------------------

def test_upgrade_on_empty_database_creates_every_table(catalog_url):
    engine = db.create_engine(catalog_url)
    try:
        assert db.current_revision(engine) is None
        assert set(sa.inspect(engine).get_table_names()) == set()
        db.upgrade(engine)
        assert set(sa.inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        assert set(models.Base.metadata.tables) == TABLES
        assert db.current_revision(engine) == db.head_revision()
        columns = {c["name"] for c in sa.inspect(engine).get_columns("observations")}
        assert set(COLUMNS) <= columns  # every ADES column, under its ADES name
    finally:
        engine.dispose()


def test_models_and_migrations_agree(catalog_engine):
    """Autogenerate finds nothing to do: the shipped migrations build exactly the models."""
    with catalog_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                models.Base.metadata)
    assert diff == []


def test_connect_twice_is_harmless(catalog_url, shared_data):
    first = db.connect(catalog_url)
    receipt = ingest.ingest(first, shared_data / "observations/ades/2023MQ5.psv", "2023MQ5.psv")
    before = queries.summary(first)
    first.dispose()
    second = db.connect(catalog_url)
    try:
        assert db.current_revision(second) == db.head_revision()
        assert queries.summary(second) == before
        assert queries.submission(second, receipt.submission_id)["status"] == "ingested"
        assert db.refresh_observatories(second) == 0  # already current: nothing rewritten
    finally:
        second.dispose()


def test_observatory_table_matches_shipped_codes(catalog_engine):
    shipped = observatories()
    with catalog_engine.connect() as conn:
        rows = {r.code: r for r in conn.execute(sa.select(models.Observatory.__table__))}
    assert rows.keys() == shipped.keys()
    g96 = rows["G96"]  # Mt. Lemmon Survey
    assert g96.name == shipped["G96"].name
    assert g96.longitude_deg == pytest.approx(249.21128, abs=1e-5)
    assert rows["C51"].longitude_deg is None  # WISE: space-based, no parallax constants


def test_sqlite_pragmas(tmp_path):
    engine = db.connect(tmp_path / "c.sqlite")  # a plain path means SQLite
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_make_url():
    assert db.make_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert db.make_url("x/y.sqlite").database == "x/y.sqlite"


# -- dedup keys ------------------------------------------------------------------------------------

def _key_of(**values) -> tuple[int, int, int]:
    batch = ObservationBatch.from_records([values])
    k_time, k_a, k_b = models.dedup_keys(batch.columns)
    return int(k_time[0]), int(k_a[0]), int(k_b[0])


def test_dedup_key_ignores_formatting_and_float_noise():
    # obs80 '2008 10 06.27767 23 17 00.78 +07 49 22.7' (MJD 54745 = 2008-10-06) ...
    mjd = 54745 + 0.27767
    ra = (23 + 17 / 60 + 0.78 / 3600) * 15
    dec = 7 + 49 / 60 + 22.7 / 3600
    ref = _key_of(kind="optical", obsTime_mjd=mjd, ra=ra, dec=dec)
    # ... the same values with extra digits, as ADES writes them (seconds 23990.688 of the day,
    # decimal degrees), and with float noise far beyond what parsing introduces (1e-11 day ~ 1 µs,
    # 1e-12 deg).
    ades = _key_of(kind="optical", obsTime_mjd=54745 + 23990.688 / 86400, ra=349.25325,
                   dec=float("7.822972222222222"))
    noisy = _key_of(kind="optical", obsTime_mjd=mjd + 1e-11, ra=ra - 1e-12, dec=dec + 1e-12)
    assert ades == ref == noisy
    # A real difference of one reported digit changes the key.
    assert _key_of(kind="optical", obsTime_mjd=mjd + 1e-5, ra=ra, dec=dec) != ref
    assert _key_of(kind="optical", obsTime_mjd=mjd, ra=ra + 0.01 * 15 / 3600, dec=dec) != ref
    assert _key_of(kind="optical", obsTime_mjd=mjd, ra=ra, dec=dec + 0.1 / 3600) != ref


def test_dedup_key_of_radar_uses_delay_and_doppler():
    delay = _key_of(kind="radar", obsTime_mjd=51442.375, delay=13.5959)
    doppler = _key_of(kind="radar", obsTime_mjd=51442.375, doppler=-1234.5678)
    assert delay[1] == round(13.5959 * models.KEY_DELAY_PER_S)
    assert delay[2] == models.KEY_MISSING
    assert doppler[1] == models.KEY_MISSING
    assert doppler[2] == round(-1234.5678 * models.KEY_DOPPLER_PER_HZ)


def test_key_grids_fit_int64():
    # The largest magnitudes the grids meet stay far inside int64.
    assert 100_000 * models.KEY_TIME_PER_DAY < 2**62
    assert 86_400 * models.KEY_RA_PER_S < 2**62
    assert 90 * 3600 * models.KEY_DEC_PER_ARCSEC < 2**62
    assert 1e6 * models.KEY_DELAY_PER_S < 2**62


# -- reading back ----------------------------------------------------------------------------------

def _assert_batches_equal(got: ObservationBatch, want: ObservationBatch) -> None:
    assert len(got) == len(want)
    for name, kind in COLUMNS.items():
        if kind == "f":
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)  # NaN == NaN
        else:
            assert got[name].tolist() == want[name].tolist(), name


def test_observations_read_back_unchanged(catalog_engine, shared_data):
    path = shared_data / "observations/ades/2023MQ5.psv"
    ingest.ingest(catalog_engine, path, "2023MQ5.psv")
    want = obs_io.read(path, "2023MQ5.psv").batch
    got = queries.observations_for(catalog_engine, "2023 MQ5")
    order = np.argsort(want["obsTime_mjd"], kind="stable")
    _assert_batches_equal(got, want.take(order))
    assert np.all(np.diff(got["obsTime_mjd"]) >= 0)


def test_resolve_normalizes_and_unknown_is_none(catalog_engine, shared_data):
    ingest.ingest(catalog_engine, shared_data / "observations/ades/2023MQ5.psv", "2023MQ5.psv")
    object_id = queries.resolve(catalog_engine, "2023 MQ5")
    assert object_id is not None
    assert queries.resolve(catalog_engine, "K23M05Q") == object_id  # packed
    assert queries.resolve(catalog_engine, "2023mq5") == object_id
    assert queries.resolve(catalog_engine, "2023 MQ6") is None
    with pytest.raises(queries.UnknownDesignation):
        queries.observations_for(catalog_engine, "2023 MQ6")
    with sa.orm.Session(catalog_engine) as session:  # a Session works as the bind too
        assert queries.resolve(session, "2023 MQ5") == object_id


def test_names_become_aliases(catalog_engine, shared_data):
    ingest.ingest(catalog_engine, shared_data / "observations/ades/2023MQ5.psv", "2023MQ5.psv")
    object_id = ingest.add_name(catalog_engine, "2023 MQ5", "Testname")
    assert queries.resolve(catalog_engine, "testname") == object_id
    info = queries.object_info(catalog_engine, "Testname")
    assert info["name"] == "Testname"
    assert {"alias": "Testname", "kind": "name"} in info["aliases"]
    assert info["observations"] == {"optical": 2}


def test_raw_bytes_round_trip_in_chunks(catalog_engine, shared_data, monkeypatch):
    monkeypatch.setattr(ingest, "RAW_CHUNK_BYTES", 1000)  # force many chunks
    path = shared_data / "observations/ades/319.xml"
    data = path.read_bytes()
    receipt = ingest.ingest(catalog_engine, path, "319.xml")
    chunks = list(queries.raw_bytes(catalog_engine, receipt.sha256))
    assert len(chunks) == math.ceil(len(data) / 1000) > 1
    assert b"".join(chunks) == data
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    assert queries.submission(catalog_engine, receipt.submission_id)["size"] == len(data)
    with pytest.raises(KeyError):
        next(queries.raw_bytes(catalog_engine, "0" * 64))


def test_summary_and_integrity(catalog_engine, shared_data):
    ades = shared_data / "observations/ades"
    for name in ("319.psv", "319.xml", "obs.xml"):
        ingest.ingest(catalog_engine, ades / name, name)
    summary = queries.summary(catalog_engine)
    assert summary["observations"] == {"optical": 8}  # 319.xml repeats 319.psv's four
    assert summary["submissions"] == {"ingested": 3}
    assert summary["raw_blobs"] == 3
    assert summary["raw_bytes"] == sum((ades / n).stat().st_size
                                       for n in ("319.psv", "319.xml", "obs.xml"))
    assert queries.check_integrity(catalog_engine) == {
        "observations_without_object": 0, "observations_without_submission": 0,
        "objects_without_alias": 0}
    assert [s["filename"] for s in queries.submissions(catalog_engine)] == [
        "obs.xml", "319.xml", "319.psv"]
