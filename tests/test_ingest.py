"""Ingest of real submissions into the catalog, on SQLite and PostgreSQL.

Counts come from the files themselves: an obs80 record is every non-blank line except the second
lines of two-line records (note 2 's', 'v' or 'r' in column 15).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from neodefense.catalog import db, ingest, models, queries
from neodefense.observations import ades
from neodefense.observations import io as obs_io

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
OBSERVATIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
REAL_FILES = sorted(p for p in OBSERVATIONS.rglob("*") if p.is_file())
#: ADES files that only repeat observations of another file (the same observations in XML, or
#: some of them with residuals added), ingested after it.
ADES_REPEATS = {"ades/319.xml": "ades/319.psv", "ades/obs_v2022.xml": "ades/obs.xml",
                "ades/obsResidual.xml": "ades/obs.xml"}
#: The one real file that holds no observation: orbit-fit residuals only, which the ADES reader
#: rejects by design ("residuals are not stored").
RESIDUALS_ONLY = "ades/standaloneResidual.xml"


def obs80_records(data: bytes) -> int:
    lines = [line for line in data.decode("ascii").splitlines() if line.strip()]
    return sum(1 for line in lines if len(line) < 15 or line[14] not in "svr")


def obs80_lines(path: Path) -> list[str]:
    return path.read_text("ascii").splitlines()


def count_rows(engine: sa.Engine, table: str, **where) -> int:
    t = models.Base.metadata.tables[table]
    query = sa.select(sa.func.count()).select_from(t)
    for column, value in where.items():
        query = query.where(t.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).scalar()


@pytest.fixture(scope="module", params=BACKENDS)
def real_catalog(request, make_catalog_url):
    """Every real file ingested once, in sorted path order: (engine, receipts by path)."""
    engine = db.connect(make_catalog_url(request.param))
    receipts = {}
    for path in REAL_FILES:
        name = path.relative_to(OBSERVATIONS).as_posix()
        receipts[name] = ingest.ingest(engine, path, name, submitter="test")
    yield engine, receipts
    engine.dispose()


# -- the real files -----------------------------------------------------------------------------

def test_every_real_file_ingests_completely(real_catalog):
    engine, receipts = real_catalog
    assert len(receipts) == len(REAL_FILES) >= 22
    for name, receipt in receipts.items():
        data = (OBSERVATIONS / name).read_bytes()
        assert receipt.sha256 == hashlib.sha256(data).hexdigest()
        assert receipt.status == "ingested"
        if name == RESIDUALS_ONLY:
            assert receipt.accepted == receipt.duplicates == 0
            assert [r["field"] for r in receipt.rejected] == ["opticalResidual"]
            continue
        assert receipt.rejected == [] and receipt.n_rejected == 0, (name, receipt.rejected[:3])
        if receipt.format == "obs80":
            assert receipt.accepted == obs80_records(data), name
            assert receipt.duplicates == 0, name
        elif name in ADES_REPEATS:
            assert receipt.accepted == 0
            assert receipt.duplicates == len(obs_io.read(data, name).batch) > 0
        else:
            assert receipt.accepted == len(obs_io.read(data, name).batch) > 0, name
            assert receipt.duplicates == 0
    assert receipts["2008_TC3.obs80"].accepted == 883
    assert receipts["99942_Apophis.obs80"].accepted == 9_528
    assert receipts["99942_Apophis.obs80"].lines == 10_892
    assert receipts["433_Eros.obs80"].accepted == 17_020  # every record kind, all kept
    assert queries.check_integrity(engine) == {
        "observations_without_object": 0, "observations_without_submission": 0,
        "objects_without_alias": 0}


def test_submission_rows_match_receipts(real_catalog):
    engine, receipts = real_catalog
    receipt = receipts["99942_Apophis.obs80"]
    row = queries.submission(engine, receipt.submission_id)
    assert row["status"] == "ingested"
    assert row["format"] == "obs80"
    assert row["submitter"] == "test"
    assert (row["n_lines"], row["n_accepted"], row["n_duplicates"], row["n_rejected"]) == (
        10_892, 9_528, 0, 0)
    assert row["receipt"]["accepted"] == 9_528
    assert row["received_at"].tzinfo is not None
    assert count_rows(engine, "observations", submission_id=receipt.submission_id) == 9_528


def test_bennu_radar_is_stored_as_radar(real_catalog):
    engine, _ = real_catalog
    batch = queries.observations_for(engine, "101955")
    radar = batch["kind"] == "radar"
    lines = obs80_lines(OBSERVATIONS / "101955_Bennu.obs80")
    assert radar.sum() == sum(1 for line in lines if line[14] == "R") == 27
    assert (~radar).sum() == 603
    assert np.all(np.isfinite(batch["delay"][radar]) | np.isfinite(batch["doppler"][radar]))
    assert np.all(np.isnan(batch["ra"][radar]))
    assert set(batch["trx"][radar]) <= {"251", "253", "254"}  # Arecibo, Goldstone, ...
    assert np.all(batch["rcv"][radar] != "")
    # The reader's values read back unchanged through the catalog.
    want = obs_io.read(OBSERVATIONS / "101955_Bennu.obs80").batch
    want = want.take(np.argsort(want["obsTime_mjd"], kind="stable"))
    np.testing.assert_array_equal(batch["delay"], want["delay"])
    np.testing.assert_array_equal(batch["doppler"], want["doppler"])


def test_2004_MN4_resolves_to_99942(real_catalog):
    engine, _ = real_catalog
    apophis = queries.resolve(engine, "99942")
    assert apophis is not None
    for form in ("2004 MN4", "2004MN4", "K04M04N", "(99942) Apophis", "(99942)"):
        assert queries.resolve(engine, form) == apophis, form
    info = queries.object_info(engine, "2004 MN4")
    assert (info["designation"], info["permid"], info["provid"]) == ("99942", "99942", "2004 MN4")
    assert {a["alias"] for a in info["aliases"]} >= {"99942", "2004 MN4"}
    batch = queries.observations_for(engine, "2004 MN4")
    assert len(batch) == 9_528
    assert np.all(np.diff(batch["obsTime_mjd"]) >= 0)
    assert batch["obsTime_mjd"][0] == pytest.approx(53079.10789, abs=1e-9)  # 2004-03-15.10789


def test_reingest_changes_nothing(real_catalog):
    engine, receipts = real_catalog
    before = queries.summary(engine)
    first = receipts["2008_TC3.obs80"]
    again = ingest.ingest(engine, OBSERVATIONS / "2008_TC3.obs80", "2008_TC3.obs80",
                          submitter="test")
    assert (again.accepted, again.duplicates, again.n_rejected) == (0, 883, 0)
    assert again.duplicate_of == first.submission_id
    assert again.submission_id != first.submission_id
    after = queries.summary(engine)
    assert after["observations"] == before["observations"]
    assert after["objects"] == before["objects"]
    assert after["raw_blobs"] == before["raw_blobs"]  # same bytes: no second copy
    assert after["submissions"]["ingested"] == before["submissions"]["ingested"] + 1


def test_same_observations_in_other_files_are_duplicates(real_catalog):
    engine, _ = real_catalog
    before = queries.summary(engine)["observations"]
    lines = obs80_lines(OBSERVATIONS / "2008_TC3.obs80")
    subset = "\n".join(lines[100:150]).encode()
    assert ingest.ingest(engine, subset, "subset.obs80").duplicates == 50
    # The same observations converted to ADES (decimal degrees, ISO times) are recognised too.
    batch = obs_io.read(OBSERVATIONS / "433_Eros.obs80").batch
    for data, name in ((ades.write_psv(batch).encode(), "eros.psv"),
                       (ades.write_xml(batch).encode(), "eros.xml")):
        receipt = ingest.ingest(engine, data, name)
        assert (receipt.accepted, receipt.duplicates, receipt.n_rejected) == (0, 17_020, 0), name
    assert queries.summary(engine)["observations"] == before


# -- single submissions ---------------------------------------------------------------------------

def test_receipt_json_contract(catalog_engine):
    receipt = ingest.ingest(catalog_engine, b"garbage that is no observation\n", "bad.obs80")
    data = json.loads(json.dumps(receipt.as_json()))
    assert {"file", "submission_id", "accepted", "duplicates", "rejected"} <= data.keys()
    assert data["file"] == "bad.obs80"
    assert data["submission_id"] == receipt.submission_id
    assert [set(r) for r in data["rejected"]] == [{"line", "field", "reason"}]


def test_file_with_every_line_rejected_is_kept(catalog_engine):
    lines = obs80_lines(OBSERVATIONS / "2008_TC3.obs80")[:3]
    bad = [lines[0][:77] + "ZZZ",  # no such observatory
           lines[1][:15] + "2008 13 06.28762" + lines[1][31:],  # month 13
           "not an observation at all"]
    data = ("\n".join(bad) + "\n").encode()
    receipt = ingest.ingest(catalog_engine, data, "bad.obs80", submitter="K93")
    assert (receipt.accepted, receipt.duplicates, receipt.n_rejected) == (0, 0, 3)
    assert [r["line"] for r in receipt.rejected] == [1, 2, 3]
    assert receipt.rejected[0]["field"] == "stn" and "ZZZ" in receipt.rejected[0]["reason"]
    row = queries.submission(catalog_engine, receipt.submission_id)
    assert (row["status"], row["n_rejected"], row["submitter"]) == ("ingested", 3, "K93")
    stored = queries.rejections(catalog_engine, receipt.submission_id)
    assert [r["raw"] for r in stored] == bad
    assert b"".join(queries.raw_bytes(catalog_engine, receipt.sha256)) == data
    assert queries.summary(catalog_engine)["observations"] == {}


def test_failure_mid_insert_leaves_nothing_but_the_raw_bytes(catalog_engine, monkeypatch):
    path = OBSERVATIONS / "99942_Apophis.obs80"
    real_write = ingest._write_observations
    calls = []

    def fail_on_second_chunk(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("injected failure")
        return real_write(*args)

    monkeypatch.setattr(ingest, "_write_observations", fail_on_second_chunk)
    with pytest.raises(RuntimeError, match="injected failure"):
        ingest.ingest(catalog_engine, path, "apophis.obs80", chunk_bytes=100_000)
    assert len(calls) == 2  # the first chunk was written before the failure
    row = queries.submission(catalog_engine, 1)
    assert row["status"] == "failed"
    assert "injected failure" in row["error"]
    assert count_rows(catalog_engine, "observations") == 0
    assert count_rows(catalog_engine, "objects") == 0
    assert count_rows(catalog_engine, "designations") == 0
    data = path.read_bytes()
    assert b"".join(queries.raw_bytes(catalog_engine, row["sha256"])) == data
    assert row["sha256"] == hashlib.sha256(data).hexdigest()

    # A retry picks the same submission up and stores everything exactly once.
    monkeypatch.setattr(ingest, "_write_observations", real_write)
    receipt = ingest.ingest(catalog_engine, path, "apophis.obs80", chunk_bytes=100_000)
    assert receipt.submission_id == 1
    assert (receipt.accepted, receipt.duplicates) == (9_528, 0)
    assert queries.summary(catalog_engine)["submissions"] == {"ingested": 1}
    assert queries.submission(catalog_engine, 1)["error"] == ""


def test_retry_after_operational_error_does_not_double_store(catalog_engine, monkeypatch):
    path = OBSERVATIONS / "2008_TC3.obs80"
    real_catalog_parts = ingest.catalog_parts

    def connection_lost(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT ...", {}, Exception("server closed the connection"))

    monkeypatch.setattr(ingest, "catalog_parts", connection_lost)
    with pytest.raises(sa.exc.OperationalError):
        ingest.ingest(catalog_engine, path, "tc3.obs80", submitter="G96")
    monkeypatch.setattr(ingest, "catalog_parts", real_catalog_parts)
    receipt = ingest.ingest(catalog_engine, path, "tc3.obs80", submitter="G96")
    assert (receipt.submission_id, receipt.accepted, receipt.duplicate_of) == (1, 883, None)
    summary = queries.summary(catalog_engine)
    assert summary["submissions"] == {"ingested": 1}
    assert summary["raw_blobs"] == 1
    assert summary["observations"] == {"optical": 883}


def test_chunked_streaming_matches_whole_file(catalog_engine):
    path = OBSERVATIONS / "433_Eros.obs80"
    receipt = ingest.ingest(catalog_engine, path, "eros.obs80", chunk_bytes=64 << 10)
    assert (receipt.accepted, receipt.duplicates, receipt.n_rejected) == (17_020, 0, 0)
    assert receipt.lines == len(obs80_lines(path))
    got = queries.observations_for(catalog_engine, "433")
    want = obs_io.read(path).batch
    assert sorted(got["raw"].tolist()) == sorted(want["raw"].tolist())


def test_sources_bytes_path_and_streams(catalog_engine):
    path = OBSERVATIONS / "short_arc/2020_NB1.obs80"
    data = path.read_bytes()
    by_path = ingest.ingest(catalog_engine, path, "a")
    by_bytes = ingest.ingest(catalog_engine, data, "b")
    offset = io.BytesIO(b"HEADER" + data)
    offset.seek(6)  # a stream is read from where it stands
    by_stream = ingest.ingest(catalog_engine, offset, "c")
    read_end, write_end = os.pipe()  # not seekable: spooled first
    threading.Thread(target=lambda: (os.write(write_end, data), os.close(write_end))).start()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        by_pipe = ingest.ingest(catalog_engine, pipe, "d")
    receipts = [by_path, by_bytes, by_stream, by_pipe]
    assert {r.sha256 for r in receipts} == {hashlib.sha256(data).hexdigest()}
    assert [r.accepted for r in receipts] == [44, 0, 0, 0]
    assert [r.duplicate_of for r in receipts] == [None, 1, 1, 1]
    assert queries.summary(catalog_engine)["raw_blobs"] == 1


# -- objects and designations ---------------------------------------------------------------------

def test_provisional_object_is_identified_and_merged(catalog_engine):
    lines = obs80_lines(OBSERVATIONS / "99942_Apophis.obs80")
    linked = [line for line in lines if line.startswith("99942K04M04N")]
    numbered = [line for line in lines if line.startswith("99942       ") and line[14] == "C"]
    prov_only = ["     " + line[5:] for line in linked[:20]]

    def submit(rows, name):
        return ingest.ingest(catalog_engine, ("\n".join(rows) + "\n").encode(), name)

    assert submit(prov_only, "prov.obs80").accepted == 20
    assert submit(numbered[:20], "num.obs80").accepted == 20
    prov_object, num_object = (queries.resolve(catalog_engine, d) for d in ("2004 MN4", "99942"))
    assert prov_object != num_object
    # One record carrying both designations identifies the provisional object as 99942.
    receipt = submit(linked[19:21], "link.obs80")
    assert (receipt.accepted, receipt.duplicates) == (1, 1)  # linked[19] was in prov_only
    assert receipt.merged == [{"object_id": prov_object, "from": "2004 MN4",
                               "into_object_id": num_object, "duplicates_removed": 0}]
    assert queries.resolve(catalog_engine, "2004 MN4") == num_object
    info = queries.object_info(catalog_engine, "99942")
    assert (info["designation"], info["provid"]) == ("99942", "2004 MN4")
    assert info["observations"] == {"optical": 41}
    assert count_rows(catalog_engine, "objects") == 1
    # The provisional-only records again, now with the number: the same observations.
    assert submit(linked[:20], "again.obs80").duplicates == 20
    assert queries.check_integrity(catalog_engine)["objects_without_alias"] == 0


def test_provisional_object_is_renamed_when_numbered(catalog_engine):
    lines = [line for line in obs80_lines(OBSERVATIONS / "99942_Apophis.obs80")
             if line.startswith("99942K04M04N")]
    first = ingest.ingest(catalog_engine, ("     " + lines[0][5:] + "\n").encode(), "p.obs80")
    object_id = queries.resolve(catalog_engine, "K04M04N")
    assert queries.object_info(catalog_engine, "2004 MN4")["designation"] == "2004 MN4"
    receipt = ingest.ingest(catalog_engine, (lines[1] + "\n").encode(), "n.obs80")
    assert first.renamed == []
    assert receipt.renamed == [{"object_id": object_id, "from": "2004 MN4", "to": "99942"}]
    assert queries.resolve(catalog_engine, "99942") == object_id
    assert queries.object_info(catalog_engine, "99942")["permid"] == "99942"


def test_conflicting_designations_are_rejected(catalog_engine):
    line = next(line for line in obs80_lines(OBSERVATIONS / "99942_Apophis.obs80")
                if line.startswith("99942K04M04N"))
    ingest.ingest(catalog_engine, (line + "\n").encode(), "apophis.obs80")
    # The same provisional designation under another number: which one is right is for a human.
    wrong = "12345" + line[5:]
    receipt = ingest.ingest(catalog_engine, (wrong + "\n").encode(), "wrong.obs80")
    assert receipt.accepted == 0
    assert receipt.rejected == [{"line": 1, "field": "provID",
                                 "reason": "'2004 MN4' already designates 99942, not 12345"}]
    assert queries.resolve(catalog_engine, "12345") is None


def test_tracklet_is_linked_when_designated(catalog_engine):
    batch = obs_io.read(OBSERVATIONS / "ades/2023MQ5.psv").batch
    tracklet = batch.take(np.arange(len(batch)))
    tracklet.columns["provID"][:] = ""
    tracklet.columns["trkSub"][:] = "P21Mq5a"
    first = ingest.ingest(catalog_engine, ades.write_psv(tracklet).encode(), "trk.psv")
    assert first.accepted == 2
    object_id = queries.resolve(catalog_engine, "trkSub:J95:P21Mq5a")
    assert object_id is not None
    designated = batch.take(np.arange(len(batch)))
    designated.columns["trkSub"][:] = "P21Mq5a"
    receipt = ingest.ingest(catalog_engine, ades.write_psv(designated).encode(), "des.psv")
    assert (receipt.accepted, receipt.duplicates) == (0, 2)
    assert queries.resolve(catalog_engine, "2023 MQ5") == object_id
    assert queries.object_info(catalog_engine, "2023 MQ5")["designation"] == "2023 MQ5"


# -- concurrency ----------------------------------------------------------------------------------

def test_concurrent_ingests_queue_up(catalog_engine):
    """Writers wait for each other (SQLite BEGIN IMMEDIATE, PostgreSQL advisory lock): the same
    observations sent twice at once are stored once and counted once as duplicates."""
    names = ["2008_TC3.obs80", "2024_BX1.obs80", "101955_Bennu.obs80"]
    jobs = [(name, f"{tag}-{name}") for name in names for tag in ("a", "b")]
    receipts, errors = {}, []

    def run(name: str, label: str) -> None:
        try:
            receipts[label] = ingest.ingest(catalog_engine, OBSERVATIONS / name, label)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    for name in names:
        pair = [receipts[f"{tag}-{name}"] for tag in ("a", "b")]
        records = obs80_records((OBSERVATIONS / name).read_bytes())
        assert sorted(r.accepted for r in pair) == [0, records]
        assert sorted(r.duplicates for r in pair) == [0, records]
    assert queries.summary(catalog_engine)["observations"] == {"optical": 883 + 328 + 603,
                                                               "radar": 27}


def test_retry_of_a_committed_ingest_returns_its_receipt(catalog_engine):
    path = OBSERVATIONS / "2024_BX1.obs80"
    first = ingest.ingest(catalog_engine, path, "bx1.obs80")
    # A second attempt reaching the catalog step for the same, already ingested submission (as
    # when two workers pick up one unfinished submission) changes nothing and says so.
    with open(path, "rb") as stream:
        again = ingest._ingest_stored(catalog_engine, stream, 0, None, 1 << 20, None,
                                      ingest.Receipt("bx1.obs80", first.submission_id))
    assert again.as_json() == first.as_json()
    assert queries.summary(catalog_engine)["observations"] == {"optical": 328}


def test_source_changing_under_the_ingest_is_refused(catalog_engine):
    """The observations kept are proven to come from the stored bytes (hashed while parsed)."""
    lines = obs80_lines(OBSERVATIONS / "2008_TC3.obs80")
    stored, changed = ("\n".join(lines[:10]) + "\n").encode(), ("\n".join(lines[10:20]) + "\n")

    class Changing(io.BytesIO):  # a file rewritten after it was hashed and stored
        passes = 0

        def seek(self, offset: int, whence: int = 0) -> int:
            if offset == 0 and whence == 0:
                self.passes += 1
                if self.passes == 3:  # hash, store, then parse
                    self.__init__(changed.encode())
            return super().seek(offset, whence)

    with pytest.raises(ingest.SourceChanged):
        ingest.ingest(catalog_engine, Changing(stored), "changing.obs80")
    row = queries.submission(catalog_engine, 1)
    assert row["status"] == "failed" and "changed after it was stored" in row["error"]
    assert b"".join(queries.raw_bytes(catalog_engine, row["sha256"])) == stored
    assert count_rows(catalog_engine, "observations") == 0
