"""Administration over HTTP and the access functions behind it, on SQLite and PostgreSQL:
observatory accounts and station codes, tokens (shown once, listed without secrets, revoked),
the audit log, contributions per account and per station, and migration 0005 going down and up.
"""

from __future__ import annotations

import base64
import datetime as dt

import sqlalchemy as sa
from alembic import command
from test_api_submissions import (
    BX1,
    DESIGNATION,
    _assessment,
    _solution,
    add_observatory,
    bearer,
    make_api,
    stations_of,
)

from neodefense.catalog import access, assessments, db, queries, solutions


def test_observatory_accounts(catalog_engine, tmp_path) -> None:
    with make_api(catalog_engine, tmp_path) as api:
        c, admin = api.client, api.admin
        made = c.post("/v1/admin/observatories", headers=admin,
                      json={"name": "  Mt.  Lemmon ", "contact": "ops@example.org",
                            "stations": ["g96", "G96", "I52"]})
        assert made.status_code == 201
        item = made.json()
        assert (item["name"], item["stations"], item["active"]) == ("Mt. Lemmon", ["G96", "I52"],
                                                                    True)
        account_id = item["id"]
        assert c.post("/v1/admin/observatories", headers=admin,
                      json={"name": "Mt. Lemmon"}).status_code == 409
        unknown = c.post("/v1/admin/observatories", headers=admin,
                         json={"name": "Nowhere", "stations": ["ZZZ"]})
        assert unknown.status_code == 422 and "not an MPC observatory code" in unknown.text
        assert c.post("/v1/admin/observatories", headers=admin, json={"name": ""}).status_code \
            == 422

        path = f"/v1/admin/observatories/{account_id}/stations"
        assert c.post(f"{path}/703", headers=admin).json()["stations"] == ["703", "G96", "I52"]
        assert c.post(f"{path}/703", headers=admin).status_code == 201  # already there: fine
        assert c.post(f"{path}/XX1", headers=admin).status_code == 422
        assert c.delete(f"{path}/I52", headers=admin).json()["stations"] == ["703", "G96"]
        assert c.delete(f"{path}/I52", headers=admin).status_code == 404
        assert c.post("/v1/admin/observatories/999/stations/G96", headers=admin).status_code \
            == 404
        assert c.get(f"/v1/admin/observatories/{account_id}", headers=admin).json()["stations"] \
            == ["703", "G96"]
        assert c.get("/v1/admin/observatories/999", headers=admin).status_code == 404
        listed = c.get("/v1/admin/observatories", headers=admin).json()["observatories"]
        assert [a["name"] for a in listed] == ["Mt. Lemmon"]
        assert access.account(api.engine, "Mt. Lemmon")["id"] == account_id  # by name too
        assert access.account(api.engine, "nobody") is None

        gone = c.delete(f"/v1/admin/observatories/{account_id}", headers=admin)
        assert gone.status_code == 200 and gone.json()["active"] is False
        refused = c.post("/v1/admin/tokens", headers=admin,
                         json={"name": "t", "role": "observatory", "account_id": account_id})
        assert refused.status_code == 422 and "deactivated" in refused.text


def test_tokens(catalog_engine, tmp_path) -> None:
    with make_api(catalog_engine, tmp_path) as api:
        c, admin = api.client, api.admin
        account_id, observatory = add_observatory(api, "Catalina", ["703", "G96"])
        for bad in ({"name": "x", "role": "observatory"},  # needs an account
                    {"name": "x", "role": "scientist", "account_id": account_id},
                    {"name": "x", "role": "root"},
                    {"name": "x", "role": "observatory", "account_id": 999}):
            assert c.post("/v1/admin/tokens", headers=admin, json=bad).status_code in (404, 422)
        made = c.post("/v1/admin/tokens", headers=admin,
                      json={"name": "Dr. Who", "role": "scientist"}).json()
        assert made["token"].startswith(f"nd_{made['id']}_") and made["role"] == "scientist"
        listed = c.get("/v1/admin/tokens", headers=admin).json()["tokens"]
        assert [(t["name"], t["role"], t["account"]) for t in listed] == [
            ("test admin", "admin", None), ("Catalina uploads", "observatory", "Catalina"),
            ("Dr. Who", "scientist", None)]
        assert all(set(t) == {"id", "name", "role", "account_id", "account", "created_at",
                              "revoked_at", "last_used_at", "active"} for t in listed)

        scientist = bearer(made["token"])
        assert c.get("/v1/submissions", headers=scientist).status_code == 200
        revoked = c.delete(f"/v1/admin/tokens/{made['id']}", headers=admin).json()
        assert revoked["active"] is False and revoked["revoked_at"] is not None
        again = c.delete(f"/v1/admin/tokens/{made['id']}", headers=admin).json()
        assert again["revoked_at"] == revoked["revoked_at"]  # the first time is kept
        assert c.delete("/v1/admin/tokens/999", headers=admin).status_code == 404
        assert c.get("/v1/submissions", headers=scientist).status_code == 401
        assert c.get("/v1/submissions", headers=observatory).status_code == 200


def test_authenticate_and_last_used(catalog_engine) -> None:
    token = access.bootstrap_admin(catalog_engine, "first admin")
    principal = access.authenticate(catalog_engine, token)
    assert principal is not None and principal.role == "admin"
    assert principal.has_role("observatory") and principal.sees_everything
    assert principal.observatory_id is None and principal.stations == frozenset()
    used = access.tokens(catalog_engine)[0]["last_used_at"]
    assert used is not None and used.tzinfo is not None
    access.authenticate(catalog_engine, token)  # within the resolution: not rewritten
    assert access.tokens(catalog_engine)[0]["last_used_at"] == used

    account = access.create_account(catalog_engine, "Pan-STARRS", "", ["F51", "F52"])
    token_id, plain = access.create_token(catalog_engine, "ps1", "observatory", account["id"])
    principal = access.authenticate(catalog_engine, plain)
    assert principal == access.Principal(token_id, "ps1", "observatory", account["id"],
                                         "Pan-STARRS", frozenset({"F51", "F52"}))
    assert not principal.has_role("scientist") and not principal.sees_everything
    assert principal.actor == f"token {token_id} ps1"


def test_audit_log(catalog_engine, tmp_path) -> None:
    with make_api(catalog_engine, tmp_path, audit_body_bytes=64) as api:
        c, admin = api.client, api.admin
        _, observatory = add_observatory(api, "K88 team", ["K88"])
        c.post("/v1/submissions", content=BX1.read_bytes(), headers=observatory)  # 403
        c.get("/v1/admin/tokens", headers=observatory)  # 403
        c.get("/v1/admin/tokens", headers=admin)  # a read: not audited
        rows = c.get("/v1/admin/audit", headers=admin).json()["audit"]
        assert [(r["method"], r["path"], r["status_code"]) for r in rows] == [
            ("GET", "/v1/admin/tokens", 403), ("POST", "/v1/submissions", 403),
            ("POST", "/v1/admin/tokens", 201), ("POST", "/v1/admin/observatories", 201)]
        assert "body" not in rows[0] and rows[1]["body_size"] == len(BX1.read_bytes())
        refused = c.get("/v1/admin/audit", headers=admin,
                        params={"min_status": 400, "path": "/v1/sub", "with_body": True}).json()
        assert len(refused["audit"]) == 1
        assert base64.b64decode(refused["audit"][0]["body_base64"]) == BX1.read_bytes()[:64]
        page = c.get("/v1/admin/audit", headers=admin,
                     params={"limit": 2, "before_id": rows[1]["id"]}).json()["audit"]
        assert [r["id"] for r in page] == [rows[2]["id"], rows[3]["id"]]
        actor = rows[0]["actor"]
        assert all(r["actor"] == actor for r in c.get(
            "/v1/admin/audit", headers=admin, params={"actor": actor}).json()["audit"])
        assert access.audit_log(api.engine, 10, status_code=201)[0]["reason"].startswith("token ")


def test_contributions_per_account_and_station(catalog_engine, tmp_path) -> None:
    with make_api(catalog_engine, tmp_path) as api:
        data = BX1.read_bytes()
        lines = data.decode().splitlines()
        k88 = ("\n".join(x for x in lines if x[77:80] == "K88") + "\n").encode()
        rest = ("\n".join(x for x in lines if x[77:80] != "K88") + "\n").encode()
        k88_id, k88_headers = add_observatory(api, "K88 team", ["K88"])
        rest_id, rest_headers = add_observatory(api, "Everyone else",
                                                [s for s in stations_of(data) if s != "K88"])
        add_observatory(api, "Idle", ["G96"])
        assert api.client.post("/v1/submissions", content=k88,
                               headers=k88_headers).json()["accepted"] == 139
        assert api.client.post("/v1/submissions", content=k88,
                               headers=k88_headers).json()["status"] == "duplicate"
        assert api.client.post("/v1/submissions", content=rest,
                               headers=rest_headers).json()["accepted"] == 189
        object_id = queries.resolve(api.engine, DESIGNATION)
        _, ids = solutions.observations_with_ids(api.engine, DESIGNATION)
        first = solutions.store_solution(api.engine, object_id, _solution(len(ids)), ids)
        solutions.store_solution(api.engine, object_id, _solution(len(ids)), ids)
        assessments.store_assessment(api.engine, first, _assessment())

        rows = api.client.get("/v1/admin/contributions", headers=api.admin).json()[
            "contributions"]
        by_account = {r["name"]: r for r in rows if r["kind"] == "account"}
        assert by_account["K88 team"] == {
            "kind": "account", "account_id": k88_id, "name": "K88 team", "active": True,
            "stations": ["K88"], "submissions": 2, "accepted": 139, "observations": 139,
            "objects": 1, "solutions": 2, "assessments": 1}
        assert by_account["Everyone else"]["observations"] == 189
        assert by_account["Everyone else"]["account_id"] == rest_id
        assert (by_account["Idle"]["submissions"], by_account["Idle"]["observations"]) == (0, 0)
        by_station = {r["stn"]: r for r in rows if r["kind"] == "station"}
        assert by_station["K88"] == {"kind": "station", "stn": "K88", "name": by_station["K88"]
                                     ["name"], "submissions": 1, "observations": 139,
                                     "objects": 1, "solutions": 2, "assessments": 1}
        assert by_station["Z31"]["observations"] == 32 and by_station["G96"]["observations"] == 0
        assert sum(r["observations"] for r in by_station.values()) == 328


def test_openapi_lists_the_routes(catalog_engine, tmp_path) -> None:
    with make_api(catalog_engine, tmp_path) as api:
        paths = api.client.get("/openapi.json").json()["paths"]
        assert {"/v1/submissions", "/v1/submissions/{submission_id}", "/v1/admin/observatories",
                "/v1/admin/observatories/{account_id}/stations/{stn}", "/v1/admin/tokens",
                "/v1/admin/tokens/{token_id}", "/v1/admin/audit"} <= set(paths)
        assert "text/plain" in paths["/v1/submissions"]["post"]["requestBody"]["content"]
        assert api.client.get("/docs").status_code == 200


def test_migration_0005_downgrades_and_upgrades(catalog_url) -> None:
    """The access tables and columns come and go with revision 0005; submissions stay."""
    engine = db.connect(catalog_url)
    try:
        account = access.create_account(engine, "Catalina", "", ["703"])
        access.create_token(engine, "c", "observatory", account["id"])
        from neodefense.catalog.ingest import ingest

        receipt = ingest(engine, BX1.read_bytes() + b"not an observation\n", "bx1.obs80")
        access.set_submission_account(engine, receipt.submission_id, account["id"])
        access.record_audit(engine, method="POST", path="/x", status_code=201,
                            submission_id=receipt.submission_id)
        with db.write_transaction(engine) as conn:
            command.downgrade(db.alembic_config(conn), "0004")
        inspector = sa.inspect(engine)
        assert not {"observatory_accounts", "observatory_stations", "api_tokens",
                    "api_audit"} & set(inspector.get_table_names())
        assert "account_id" not in {c["name"] for c in inspector.get_columns("submissions")}
        assert "challenge" not in {c["name"] for c in
                                   inspector.get_columns("subscriber_channels")}
        assert db.current_revision(engine) == "0004"
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert queries.submission(engine, receipt.submission_id)["account_id"] is None
        assert queries.summary(engine)["observations"] == {"optical": 328}
        assert len(queries.rejections(engine, receipt.submission_id)) == 1  # no cascade ran
        assert access.accounts(engine) == [] and access.tokens(engine) == []
        assert access.audit_log(engine) == []
        assert isinstance(access.create_account(engine, "again")["created_at"], dt.datetime)
    finally:
        engine.dispose()
