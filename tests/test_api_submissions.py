"""Observatory submissions over HTTP (POST/GET /v1/submissions) on SQLite and PostgreSQL, through
httpx against the application: receipts for the real 2024 BX1 obs80 file (accepted, duplicates,
rejected with line, field and reason), the same bytes twice, ADES XML, the status progression
stored → ingested → fitted → monitored (hand-made solution and assessment rows for the real
observations, as in test_assessments: the API is under test, not the fitter), who sees what.

The helpers here (:func:`make_api`, :func:`add_observatory`, :func:`table_counts`) are shared by
test_api_security and test_api_admin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from neodefense import config
from neodefense.api import create_app
from neodefense.catalog import access, assessments, models, queries, solutions
from neodefense.impacts.assessment import FAILED as ASSESSMENT_FAILED
from neodefense.impacts.assessment import OK, ImpactAssessment
from neodefense.observations import ades
from neodefense.observations import io as obs_io
from neodefense.orbits.solution import CONVERGED, DIVERGED, OrbitSolution

DEMO = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
BX1 = DEMO / "2024_BX1.obs80"
DESIGNATION = "2024 BX1"


@dataclasses.dataclass
class Api:
    client: TestClient
    engine: sa.Engine
    admin: dict[str, str]  # Authorization header of an admin token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def make_api(engine: sa.Engine, tmp_path: Path, **api: object) -> Iterator[Api]:
    """The application over ``engine`` (settings' [api] overridden by ``api``), a TestClient,
    and an admin token made the way the command line makes the first one."""
    settings = config.load().with_overrides(paths={"data_dir": str(tmp_path)}, api=api)
    admin = access.bootstrap_admin(engine, "test admin")
    with TestClient(create_app(settings, engine=engine)) as client:
        yield Api(client, engine, bearer(admin))


def add_observatory(api: Api, name: str, stations: list[str]) -> tuple[int, dict[str, str]]:
    """An observatory account with ``stations`` and an observatory token, made through the admin
    API: (account id, its Authorization header)."""
    answer = api.client.post("/v1/admin/observatories", headers=api.admin,
                             json={"name": name, "contact": f"{name}@example.org",
                                   "stations": stations})
    assert answer.status_code == 201, answer.text
    account_id = answer.json()["id"]
    answer = api.client.post("/v1/admin/tokens", headers=api.admin,
                             json={"name": f"{name} uploads", "role": "observatory",
                                   "account_id": account_id})
    assert answer.status_code == 201, answer.text
    return account_id, bearer(answer.json()["token"])


def table_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows in every catalog table."""
    with engine.connect() as conn:
        return {name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for name, table in models.Base.metadata.tables.items()}


def stations_of(data: bytes) -> list[str]:
    return sorted(set(obs_io.read(data, "x").batch["stn"].tolist()))


@pytest.fixture()
def api(catalog_engine, tmp_path) -> Iterator[Api]:
    with make_api(catalog_engine, tmp_path) as made:
        yield made


def _post(api: Api, headers: dict[str, str], data: bytes, **params: str):
    return api.client.post("/v1/submissions", params=params, content=data,
                           headers={**headers, "Content-Type": "text/plain"})


# -- receipts ---------------------------------------------------------------------------------------

def test_receipt_for_a_real_obs80_file(api) -> None:
    data = BX1.read_bytes()
    lines = data.decode().splitlines()
    bad = lines[0][:15] + "2024 13 20.90865" + lines[0][31:]  # month 13
    body = ("\n".join([*lines, lines[5], bad]) + "\n").encode()  # a repeat and a bad line
    account_id, headers = add_observatory(api, "Spacewatch and friends", stations_of(data))

    answer = _post(api, headers, body, filename="../../etc/bx1.obs80")
    assert answer.status_code == 201, answer.text
    receipt = answer.json()
    assert receipt["accepted"] == len(lines) == 328
    assert receipt["duplicates"] == 1
    assert receipt["n_rejected"] == 1
    assert receipt["rejected"] == [{"line": len(lines) + 2, "field": "obsTime",
                                    "reason": "month 13 is not 1-12 in '2024 13 20.90865'"}]
    assert receipt["lines"] == len(lines) + 2 and receipt["format"] == "obs80"
    assert receipt["sha256"] == hashlib.sha256(body).hexdigest() and receipt["size"] == len(body)
    assert receipt["status"] == "ingested" and receipt["file"] == "bx1.obs80"  # no path kept
    sid = receipt["submission_id"]
    assert receipt["links"] == {"self": f"/v1/submissions/{sid}"}
    assert answer.headers["location"] == f"/v1/submissions/{sid}"

    row = queries.submission(api.engine, sid)
    assert row["account_id"] == account_id and row["submitter"] == "Spacewatch and friends"
    assert row["receipt"]["accepted"] == 328
    assert queries.summary(api.engine)["observations"] == {"optical": 328}
    assert queries.check_integrity(api.engine) == {
        "observations_without_object": 0, "observations_without_submission": 0,
        "objects_without_alias": 0}
    entry = access.audit_log(api.engine, 1)[0]
    assert (entry["path"], entry["status_code"], entry["submission_id"]) == \
        ("/v1/submissions", 201, sid)
    assert entry["body_sha256"] == receipt["sha256"] and entry["body_size"] == len(body)
    assert entry["actor"].startswith("token ") and entry["actor"].endswith("uploads")


def test_the_same_bytes_twice_is_a_duplicate(api) -> None:
    data = BX1.read_bytes()
    _, headers = add_observatory(api, "K88 and co", stations_of(data))
    first = _post(api, headers, data, filename="bx1.obs80").json()
    again = _post(api, headers, data, filename="bx1.obs80")
    assert again.status_code == 201
    second = again.json()
    assert second["submission_id"] != first["submission_id"]
    assert second["duplicate_of"] == first["submission_id"]
    assert (second["accepted"], second["duplicates"], second["status"]) == (0, 328, "duplicate")
    assert table_counts(api.engine)["observations"] == 328
    assert table_counts(api.engine)["raw_blobs"] == 1  # the bytes are stored once
    shown = api.client.get(f"/v1/submissions/{second['submission_id']}", headers=headers).json()
    assert shown["status"] == "duplicate" and shown["objects"] == []


def test_ades_xml_and_explicit_format(api) -> None:
    parsed = obs_io.read(BX1.read_bytes(), "bx1")
    xml = ades.write_xml(parsed.batch)
    xml = xml.encode() if isinstance(xml, str) else xml
    _, headers = add_observatory(api, "XML people", stations_of(BX1.read_bytes()))
    answer = _post(api, headers, xml, format="ades_xml", filename="bx1.xml")
    assert answer.status_code == 201, answer.text
    assert (answer.json()["format"], answer.json()["accepted"]) == ("ades_xml", 328)
    # the same observations again, as obs80: duplicates of the stored ones, not new rows
    answer = _post(api, headers, BX1.read_bytes(), format="obs80")
    assert (answer.json()["accepted"], answer.json()["duplicates"]) == (0, 328)
    assert answer.json()["status"] == "duplicate" and answer.json()["file"] == "api-submission"


def test_a_file_of_bad_lines_is_rejected(api) -> None:
    _, headers = add_observatory(api, "Garbage", ["K88"])
    answer = _post(api, headers, b"this is not an observation\nnor is this\n")
    assert answer.status_code == 201
    receipt = answer.json()
    assert (receipt["accepted"], receipt["n_rejected"], receipt["status"]) == (0, 2, "rejected")
    assert [r["line"] for r in receipt["rejected"]] == [1, 2]
    assert all(r["field"] and r["reason"] for r in receipt["rejected"])


# -- status progression -----------------------------------------------------------------------------

def _solution(n: int, status: str = CONVERGED) -> OrbitSolution:
    if status != CONVERGED:
        return OrbitSolution(designation=DESIGNATION, status=status, message="no luck")
    return OrbitSolution(designation=DESIGNATION, status=CONVERGED, epoch_tdb_jd=2460330.5,
                         state_icrf_au=np.array([-0.46, 0.87, 0.38, -0.017, -0.007, -0.004]),
                         rms_arcsec=0.41, n_obs=n, n_used=n)


def _assessment(status: str = OK) -> ImpactAssessment:
    return ImpactAssessment(
        designation=DESIGNATION, status=status, message="" if status == OK else "boom",
        method="mc", n_samples=100, seed=1, years=1.0, cumulative_ip=0.0, torino_max=0,
        H=32.8, virtual_impactors=[], solution_epoch_tdb_jd=2460330.5,
        solution_code_version="test")


def test_status_goes_stored_ingested_fitted_monitored(api) -> None:
    data = BX1.read_bytes()
    _, headers = add_observatory(api, "BX1 observers", stations_of(data))
    sid = _post(api, headers, data).json()["submission_id"]

    def progress() -> dict:
        answer = api.client.get(f"/v1/submissions/{sid}", headers=headers)
        assert answer.status_code == 200
        return answer.json()

    shown = progress()
    assert shown["status"] == "ingested" and shown["receipt"]["accepted"] == 328
    object_id = queries.resolve(api.engine, DESIGNATION)
    assert shown["objects"] == [{
        "object_id": object_id, "designation": DESIGNATION, "observations": 328,
        "solution_id": None, "solution_version": None, "solution_status": None, "fitted": False,
        "assessment_id": None, "assessment_status": None, "monitored": False,
        "links": {"object": f"/v1/objects/{DESIGNATION}"}}]

    _, ids = solutions.observations_with_ids(api.engine, DESIGNATION)
    partial = solutions.store_solution(api.engine, object_id, _solution(10), ids[:10])
    failed = solutions.store_solution(api.engine, object_id, _solution(len(ids), DIVERGED), ids)
    shown = progress()
    assert shown["status"] == "ingested"  # neither covers the submission with a good orbit
    assert shown["objects"][0]["solution_id"] == failed
    assert shown["objects"][0]["solution_status"] == DIVERGED
    assert partial != failed

    good = solutions.store_solution(api.engine, object_id, _solution(len(ids)), ids)
    shown = progress()
    assert shown["status"] == "fitted"
    assert (shown["objects"][0]["solution_id"], shown["objects"][0]["solution_version"]) == (good, 3)

    assessments.store_assessment(api.engine, good, _assessment(ASSESSMENT_FAILED))
    assert progress()["status"] == "fitted"  # a failed monitoring run is not monitoring
    assessment_id = assessments.store_assessment(api.engine, good, _assessment())
    shown = progress()
    assert shown["status"] == "monitored"
    assert shown["objects"][0]["assessment_id"] == assessment_id
    listed = api.client.get("/v1/submissions", headers=headers).json()["submissions"]
    assert [(s["id"], s["status"]) for s in listed] == [(sid, "monitored")]


def test_stored_and_failed_submissions(api) -> None:
    """A row the ingest has not finished is 'stored'; one whose ingest raised is 'failed'."""
    account_id, headers = add_observatory(api, "Slow", ["K88"])
    s = models.Submission.__table__
    with api.engine.begin() as conn:
        conn.execute(sa.insert(models.RawBlob.__table__).values(
            sha256="0" * 64, size=0, n_chunks=0, chunk_bytes=1, created_at=access._utcnow()))
        ids = [conn.execute(sa.insert(s).values(
            sha256="0" * 64, filename="f", submitter="Slow", received_at=access._utcnow(), size=0,
            status=status, account_id=account_id, error=error).returning(s.c.id)).scalar_one()
            for status, error in (("stored", ""), ("failed", "OSError: disk full"))]
    shown = [api.client.get(f"/v1/submissions/{i}", headers=headers).json() for i in ids]
    assert [x["status"] for x in shown] == ["stored", "failed"]
    assert shown[1]["error"] == "OSError: disk full" and shown[0]["receipt"] is None


# -- who sees what ----------------------------------------------------------------------------------

def test_submissions_are_seen_by_their_observatory_and_scientists_only(api) -> None:
    data = BX1.read_bytes()
    _, own = add_observatory(api, "Owner", stations_of(data))
    _, other = add_observatory(api, "Other", ["G96"])
    sid = _post(api, own, data).json()["submission_id"]
    scientist = bearer(access.create_token(api.engine, "a scientist", "scientist")[1])

    assert api.client.get(f"/v1/submissions/{sid}", headers=own).status_code == 200
    assert api.client.get(f"/v1/submissions/{sid}", headers=scientist).status_code == 200
    assert api.client.get(f"/v1/submissions/{sid}", headers=api.admin).status_code == 200
    hidden = api.client.get(f"/v1/submissions/{sid}", headers=other)
    missing = api.client.get(f"/v1/submissions/{sid + 1000}", headers=other)
    assert hidden.status_code == missing.status_code == 404  # existence does not leak
    assert hidden.json()["detail"] == f"no submission {sid}"

    assert [s["id"] for s in api.client.get("/v1/submissions", headers=own).json()
            ["submissions"]] == [sid]
    assert api.client.get("/v1/submissions", headers=other).json()["submissions"] == []
    assert len(api.client.get("/v1/submissions", headers=scientist).json()["submissions"]) == 1
    # a scientist reads but does not submit
    assert _post(api, scientist, data).status_code == 403


def test_a_failed_ingest_is_500_and_recorded(api, monkeypatch) -> None:
    """The ingest raising (here: a fault injected into its second transaction) answers 500 with
    the submission id; the submission is 'failed', belongs to the account, holds no observation,
    and the audit row names it."""
    from neodefense.catalog import ingest as ingest_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    account_id, headers = add_observatory(api, "Unlucky", ["K88"])
    monkeypatch.setattr(ingest_module, "catalog_parts", broken)
    answer = _post(api, headers, b"     K24B01X  C2024 01 20.90990 07 46 27.75 +45 23 54.2"
                                 b"          18.0 GV~7h33K88\n")
    assert answer.status_code == 500
    detail = answer.json()["detail"]
    assert detail["error"] == "ingest_failed" and "disk on fire" in detail["reason"]
    row = queries.submission(api.engine, detail["submission_id"])
    assert (row["status"], row["account_id"]) == ("failed", account_id)
    assert table_counts(api.engine)["observations"] == 0
    entry = access.audit_log(api.engine, 1)[0]
    assert (entry["status_code"], entry["submission_id"]) == (500, detail["submission_id"])
    shown = api.client.get(f"/v1/submissions/{detail['submission_id']}", headers=headers).json()
    assert shown["status"] == "failed" and "disk on fire" in shown["error"]
