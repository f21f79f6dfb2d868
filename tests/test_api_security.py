"""Refused requests, on SQLite and PostgreSQL: bad, unknown, revoked and deactivated tokens (401),
wrong roles (403), another observatory's station codes (403 naming the lines), oversized bodies
(413, with and without Content-Length), XML bombs, external entities and malformed XML (400),
SQL-injection strings in paths, queries and bodies (404/422, or stored as plain text).

Every refused request must leave the catalog exactly as it was — no submissions, observations,
raw blobs or anything else — except for exactly one api_audit row saying what was refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_api_submissions import BX1, Api, add_observatory, bearer, make_api, table_counts

from neodefense.catalog import access, models

AUDIT_BODY_BYTES = 512
MAX_BYTES = 20_000  # the BX1 file (26 kB) is over it


@pytest.fixture()
def api(catalog_engine, tmp_path) -> Api:
    with make_api(catalog_engine, tmp_path, max_submission_bytes=MAX_BYTES,
                  audit_body_bytes=AUDIT_BODY_BYTES) as made:
        yield made


class Refused:
    """Counts rows before a request; :meth:`check` asserts nothing changed but one audit row."""

    def __init__(self, api: Api):
        self.api = api
        self.before = table_counts(api.engine)

    def check(self, status_code: int) -> dict:
        after = table_counts(self.api.engine)
        assert after["api_audit"] == self.before["api_audit"] + 1
        assert {k: v for k, v in after.items() if k != "api_audit"} == \
            {k: v for k, v in self.before.items() if k != "api_audit"}
        entry = access.audit_log(self.api.engine, 1, with_body=True)[0]
        assert entry["status_code"] == status_code and entry["submission_id"] is None
        return entry


def _small_file(stations: tuple[str, ...] = ("K88",)) -> bytes:
    """The BX1 lines of ``stations`` (under the size limit)."""
    lines = [x for x in BX1.read_text().splitlines() if x[77:80] in stations]
    return ("\n".join(lines) + "\n").encode()


# -- authentication and roles -----------------------------------------------------------------------

def test_bad_tokens_are_401(api) -> None:
    _, headers = add_observatory(api, "K88 team", ["K88"])
    real = headers["Authorization"].removeprefix("Bearer ")
    token_id = real.split("_")[1]
    wrong_secret = f"nd_{token_id}_{'A' * 43}"
    for value in ("Bearer nd_999_" + "x" * 43, "Bearer " + wrong_secret, "Bearer garbage",
                  "Bearer ", "Basic dXNlcjpwYXNz", real, "Bearer " + real + "x"):
        refused = Refused(api)
        answer = api.client.post("/v1/submissions", content=_small_file(),
                                 headers={"Authorization": value})
        assert answer.status_code == 401, value
        assert answer.headers["www-authenticate"] == "Bearer"
        entry = refused.check(401)
        assert entry["actor"] == "" and entry["body"] is None  # unauthenticated: body not kept
    refused = Refused(api)
    assert api.client.get("/v1/submissions").status_code == 401  # no token at all
    refused.check(401)
    refused = Refused(api)
    api.client.cookies.set("neodefense_token", wrong_secret)
    assert api.client.get("/v1/submissions").status_code == 401  # a bad login cookie
    refused.check(401)
    api.client.cookies.set("neodefense_token", real)
    assert api.client.get("/v1/submissions").status_code == 200  # the dashboard's cookie works
    api.client.cookies.clear()


def test_revoked_token_and_deactivated_account_are_401(api) -> None:
    account_id, headers = add_observatory(api, "K88 team", ["K88"])
    assert api.client.get("/v1/submissions", headers=headers).status_code == 200
    token_id = int(headers["Authorization"].split("_")[1])
    assert api.client.delete(f"/v1/admin/tokens/{token_id}", headers=api.admin).status_code == 200
    refused = Refused(api)
    assert api.client.post("/v1/submissions", content=_small_file(),
                           headers=headers).status_code == 401
    refused.check(401)

    _, second = add_observatory(api, "Z31 team", ["Z31"])
    account = api.client.get("/v1/admin/observatories", headers=api.admin).json()
    z31 = next(a["id"] for a in account["observatories"] if a["name"] == "Z31 team")
    assert api.client.delete(f"/v1/admin/observatories/{z31}", headers=api.admin).json()[
        "active"] is False
    refused = Refused(api)
    assert api.client.post("/v1/submissions", content=_small_file(("Z31",)),
                           headers=second).status_code == 401
    refused.check(401)


def test_wrong_roles_are_403(api) -> None:
    account_id, observatory = add_observatory(api, "K88 team", ["K88"])
    scientist = bearer(access.create_token(api.engine, "sci", "scientist")[1])
    attempts = [
        ("get", "/v1/admin/tokens", observatory, None),
        ("post", "/v1/admin/tokens", observatory, {"name": "me too", "role": "admin"}),
        ("post", "/v1/admin/observatories", scientist, {"name": "mine", "stations": ["G96"]}),
        ("post", f"/v1/admin/observatories/{account_id}/stations/G96", observatory, None),
        ("delete", "/v1/admin/tokens/1", scientist, None),
        ("get", "/v1/admin/audit", observatory, None),
    ]
    for method, path, headers, body in attempts:
        refused = Refused(api)
        kwargs = {"json": body} if body is not None else {}
        answer = getattr(api.client, method)(path, headers=headers, **kwargs)
        assert answer.status_code == 403, (method, path)
        assert refused.check(403)["actor"].startswith("token ")
    refused = Refused(api)
    assert api.client.post("/v1/submissions", content=_small_file(),
                           headers=scientist).status_code == 403
    refused.check(403)
    assert len(access.tokens(api.engine)) == 3  # no token was made by the escalation attempt


# -- what an observatory may submit -----------------------------------------------------------------

def test_another_observatorys_stations_are_403_naming_the_lines(api) -> None:
    _, headers = add_observatory(api, "K88 team", ["K88"])
    body = _small_file(("K88", "Z31", "G34"))
    text = body.decode().splitlines()
    expected = [{"line": i + 1, "stn": x[77:80]} for i, x in enumerate(text) if x[77:80] != "K88"]
    assert len(expected) == 32 + 20
    refused = Refused(api)
    answer = api.client.post("/v1/submissions", content=body, headers=headers,
                             params={"filename": "mixed.obs80"})
    assert answer.status_code == 403
    detail = answer.json()["detail"]
    assert detail["error"] == "foreign_station" and detail["stations"] == ["K88"]
    assert detail["lines"] == expected and detail["n_lines"] == len(expected)
    assert "G34, Z31" in detail["reason"] and "nothing was stored" in detail["reason"]
    entry = refused.check(403)
    assert entry["body"] == body[:AUDIT_BODY_BYTES]  # the refused body, truncated
    assert entry["body_size"] == len(body)
    assert entry["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert entry["reason"] == detail["reason"]


def test_a_station_taken_away_is_refused(api) -> None:
    account_id, headers = add_observatory(api, "Z31 team", ["Z31", "K88"])
    path = f"/v1/admin/observatories/{account_id}/stations/Z31"
    assert api.client.delete(path, headers=api.admin).json()["stations"] == ["K88"]
    refused = Refused(api)
    answer = api.client.post("/v1/submissions", content=_small_file(("Z31",)), headers=headers)
    assert answer.status_code == 403 and answer.json()["detail"]["n_lines"] == 32
    refused.check(403)


def test_oversized_bodies_are_413(api) -> None:
    _, headers = add_observatory(api, "Everyone", ["K88", "Z31", "204", "L01", "G34"])
    body = BX1.read_bytes()
    assert len(body) > MAX_BYTES
    refused = Refused(api)
    answer = api.client.post("/v1/submissions", content=body, headers=headers)
    assert answer.status_code == 413
    entry = refused.check(413)
    assert entry["body_size"] == len(body)  # the Content-Length it announced

    def chunks():  # no Content-Length: counted while reading
        for i in range(0, len(body), 4096):
            yield body[i:i + 4096]

    refused = Refused(api)
    answer = api.client.post("/v1/submissions", content=chunks(), headers=headers)
    assert answer.status_code == 413
    entry = refused.check(413)
    assert MAX_BYTES < entry["body_size"] <= len(body)  # as far as it was read
    assert entry["body"] == body[:AUDIT_BODY_BYTES]  # (read, so kept: not the header check)

    refused = Refused(api)  # an admin JSON body is capped too
    assert api.client.post("/v1/admin/observatories", headers={**api.admin,
                           "Content-Type": "application/json"},
                           content=b'{"name": "' + b"x" * (2 << 20) + b'"}').status_code == 413
    refused.check(413)

    refused = Refused(api)
    assert api.client.post("/v1/submissions", content=b"", headers=headers).status_code == 400
    refused.check(400)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ades version="2022"><obsBlock><obsData><optical>
<provID>2024 BX1</provID><mode>CCD</mode><stn>K88</stn><obsTime>2024-01-20T21:48:27Z</obsTime>
<ra>116.6194</ra><dec>45.39119</dec><astCat>Gaia2</astCat><remarks>&lol9;</remarks>
</optical></obsData></obsBlock></ades>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ades [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ades version="2022"><obsBlock><obsData><optical><provID>&xxe;</provID></optical></obsData>
</obsBlock></ades>
"""
MALFORMED = b"""<?xml version="1.0"?>
<ades version="2022"><obsBlock><obsData><optical><provID>2024 BX1</provID><stn>K88</stn>
</obsData></obsBlock></ades>
"""


@pytest.mark.parametrize(("body", "words"), [(BILLION_LAUGHS, "refused"), (XXE, "refused"),
                                             (MALFORMED, "not well-formed")],
                         ids=["billion-laughs", "xxe", "malformed"])
def test_hostile_or_broken_xml_is_400(api, body: bytes, words: str) -> None:
    _, headers = add_observatory(api, "K88 team", ["K88"])
    refused = Refused(api)
    answer = api.client.post("/v1/submissions", content=body,
                             headers={**headers, "Content-Type": "application/xml"})
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert detail["error"] == "unreadable" and words in detail["reason"]
    assert detail["line"] >= 2
    assert refused.check(400)["body"] == body[:AUDIT_BODY_BYTES]


# -- injection -------------------------------------------------------------------------------------

INJECTIONS = ["1 OR 1=1", "1; DROP TABLE submissions", "1' OR '1'='1", "-1", "0",
              "99999999999999999999", "1 UNION SELECT token_hash FROM api_tokens"]


def test_sql_injection_in_paths_and_queries(api) -> None:
    account_id, headers = add_observatory(api, "K88 team", ["K88"])
    sid = api.client.post("/v1/submissions", content=_small_file(),
                          headers=headers).json()["submission_id"]
    for text in INJECTIONS:
        for method, path, params in [
                ("get", f"/v1/submissions/{text}", {}),
                ("get", "/v1/submissions", {"before_id": text}),
                ("get", "/v1/submissions", {"limit": text}),
                ("delete", f"/v1/admin/tokens/{text}", {}),
                ("post", f"/v1/admin/observatories/{text}/stations/G96", {}),
                ("post", f"/v1/admin/observatories/{account_id}/stations/{text}", {})]:
            refused = Refused(api)
            who = api.admin if "/admin/" in path else headers
            answer = getattr(api.client, method)(path, params=params, headers=who)
            assert answer.status_code in (404, 422), (path, params, answer.status_code)
            refused.check(answer.status_code)
    # text that reaches the database goes in as a bound parameter, and comes back as text
    name = "Robert'); DROP TABLE observatory_accounts;--"
    answer = api.client.post("/v1/admin/observatories", headers=api.admin,
                             json={"name": name, "stations": ["G96"]})
    assert answer.status_code == 201 and answer.json()["name"] == name
    filename = "x'; DELETE FROM observations; --"
    answer = api.client.post("/v1/submissions", params={"filename": filename},
                             content=_small_file(), headers=headers)
    assert answer.json()["file"] == filename and answer.json()["status"] == "duplicate"
    assert api.client.get("/v1/admin/audit", params={"path": "%' OR 1=1 --"},
                          headers=api.admin).json()["audit"] == []
    counts = table_counts(api.engine)
    assert counts["observations"] == 139 and counts["observatory_accounts"] == 2
    assert api.client.get(f"/v1/submissions/{sid}", headers=headers).json()["status"] == \
        "ingested"


def test_sql_injection_in_object_designations(api) -> None:
    """The read API's /v1/objects/{designation} (open): unknown designations are 404, every
    table is intact, and each refusal left exactly one audit row."""
    if "/v1/objects/{designation}" not in api.client.app.openapi()["paths"]:
        pytest.skip("the read API's /v1/objects route is not there yet")
    _, headers = add_observatory(api, "K88 team", ["K88"])
    api.client.post("/v1/submissions", content=_small_file(), headers=headers)
    before = table_counts(api.engine)
    for text in ["2024 BX1' OR '1'='1", "'; DROP TABLE objects; --", "x\" OR \"\"=\"",
                 "1; DELETE FROM observations", "%' OR 1=1 --", "2024 BX1' --"]:
        assert api.client.get(f"/v1/objects/{text}").status_code in (404, 422), text
    after = table_counts(api.engine)
    assert after.pop("api_audit") == before.pop("api_audit") + 6
    assert after == before
    assert api.client.get("/v1/objects/2024 BX1").status_code == 200


def test_tokens_are_stored_only_as_hashes(api) -> None:
    answer = api.client.post("/v1/admin/tokens", headers=api.admin,
                             json={"name": "sci", "role": "scientist"})
    token = answer.json()["token"]
    listed = api.client.get("/v1/admin/tokens", headers=api.admin).json()["tokens"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    t, au = models.ApiToken.__table__, models.ApiAudit.__table__
    with api.engine.connect() as conn:
        stored = conn.execute(sa.select(t.c.token_hash).where(
            t.c.id == answer.json()["id"])).scalar_one()
        audit_text = " ".join(f"{r.reason} {r.body!r}" for r in conn.execute(sa.select(au)))
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token.split("_", 2)[2] not in audit_text
    # authenticate answers None, never raises, for hostile input
    for text in ["", "nd_", "nd_1_", "nd_1_" + "a" * 10_000, "nd_-1_" + "a" * 43, "\x00" * 50,
                 "nd_1_\udcff" + "a" * 43, f"nd_{10**12}_" + "a" * 43]:
        assert access.authenticate(api.engine, text) is None


def test_audit_rows_carry_remote_and_path(api, tmp_path: Path) -> None:
    refused = Refused(api)
    api.client.get("/v1/submissions/12345", headers={"Authorization": "Bearer nope"})
    entry = refused.check(401)
    assert (entry["method"], entry["path"], entry["remote"]) == \
        ("GET", "/v1/submissions/12345", "testclient")
    assert entry["reason"] == "invalid or revoked token"
