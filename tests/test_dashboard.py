"""The dashboard's HTML pages (neodefense.api.dashboard) over a catalog of real observations:
2008 TC3 and 2024 BX1 (fitted and monitored: imminent impactors) and 2023 QR6 (fitted; a
distant Torino-1 virtual impactor stored by hand, for the colours and the filters)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from neodefense.api.app import create_app
from neodefense.api.dashboard import SESSION_COOKIE, csrf_token, sort_rows, torino_zone
from neodefense.catalog import access, assessments, db, ingest, queries, solutions
from neodefense.catalog import alerts as catalog_alerts
from neodefense.impacts.assessment import OK, ImpactAssessment, VirtualImpactor
from neodefense.impacts.monitor import monitor_solution
from neodefense.orbits.fit import fit_orbit

DEMO = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
CSRF = re.compile(r'name="csrf" value="([^"]*)"')
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]*)"')


def _fit(engine, path: Path, designation: str):  # noqa: ANN001, ANN202
    receipt = ingest.ingest(engine, path, path.name, "MPC")
    object_id = queries.resolve(engine, designation)
    batch, ids = solutions.observations_with_ids(engine, object_id)
    solution = fit_orbit(batch, designation, close_approach_years=None)
    assert solution.status == "converged", solution.message
    solution_id = solutions.store_solution(engine, object_id, solution, ids,
                                           {"nongrav": "none", "exclude": []})
    return receipt, solution, solution_id, batch


def build_catalog(engine) -> dict:  # noqa: ANN001
    """The test catalog; returns the submission ids and tokens made."""
    out = {}
    for name, designation in (("2008_TC3.obs80", "2008 TC3"), ("2024_BX1.obs80", "2024 BX1")):
        receipt, solution, solution_id, batch = _fit(engine, DEMO / name, designation)
        assessment = monitor_solution(solution, batch=batch, years=0.01, n_samples=11,
                                      bodies=("earth",), cross_check=False)
        assert assessment.status == OK and assessment.virtual_impactors
        assessments.store_assessment(engine, solution_id, assessment)
        out[designation] = receipt.submission_id
    receipt, solution, solution_id, _ = _fit(engine, DEMO / "2023_QR6.obs80", "2023 QR6")
    vi = VirtualImpactor(body="earth", time_tdb_jd=solution.epoch_tdb_jd + 365.25 * 44,
                         date_utc="2067-09-03.2", ip=2.0e-4, palermo=-2.6, torino=1,
                         v_inf_km_s=9.1, method="lov", sigma_lov=1.3)
    assessments.store_assessment(engine, solution_id, ImpactAssessment(
        designation="2023 QR6", status=OK, method="lov", n_samples=101, years=100.0,
        cumulative_ip=2.0e-4, palermo_cum=-2.6, palermo_max=-2.6, torino_max=1, H=25.0,
        diameter_m=30.0, virtual_impactors=[vi], solution_epoch_tdb_jd=solution.epoch_tdb_jd,
        observation_set_hash=solution.observation_set_hash))
    out["2023 QR6"] = receipt.submission_id
    lemmon = access.create_account(engine, "Mt. Lemmon", "lemmon@example.org", ["G96"])
    access.create_account(engine, "Other <b>Obs</b>", "", ["703"])
    access.set_submission_account(engine, out["2008 TC3"], lemmon["id"])
    out["scientist"] = access.create_token(engine, "alice", access.SCIENTIST)[1]
    out["observatory"] = access.create_token(engine, "lemmon-bot", access.OBSERVATORY,
                                             lemmon["id"])[1]
    out["other"] = access.create_token(
        engine, "other-bot", access.OBSERVATORY,
        access.account(engine, "Other <b>Obs</b>")["id"])[1]
    return out


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    engine = db.connect(f"sqlite:///{tmp_path_factory.mktemp('dash') / 'catalog.sqlite'}")
    made = build_catalog(engine)
    yield engine, made
    engine.dispose()


@pytest.fixture()
def client(catalog) -> Iterator[TestClient]:
    engine, _ = catalog
    with TestClient(create_app(engine=engine)) as test_client:
        yield test_client


def _rows(html: str) -> list[str]:
    """Designations of the risk-list table's rows, in page order."""
    table = html.split('id="risk-list"', 1)[1].split("</table>", 1)[0] if 'id="risk-list"' in \
        html else ""
    return re.findall(r'<tr class="ts-\w+" data-designation="([^"]+)"', table)


def _login(client: TestClient, token: str) -> str:
    """Log in through the form; returns the session's CSRF token from the next page."""
    form = client.get("/login?next=/objects/2023%20QR6")
    nonce = LOGIN_CSRF.search(form.text).group(1)
    response = client.post("/login", data={"token": token, "login_csrf": nonce,
                                           "next": "/objects/2023%20QR6"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/objects/2023%20QR6"
    return CSRF.search(client.get("/").text).group(1)


# -- risk list ----------------------------------------------------------------------------------

def test_risk_list_page(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert _rows(html) == ["2008 TC3", "2024 BX1", "2023 QR6"]  # by cumulative Palermo
    # Torino colours: 0 white (TC3, BX1: too small to matter), 1 green
    assert '<tr class="ts-white" data-designation="2008 TC3">' in html
    assert '<tr class="ts-green" data-designation="2023 QR6">' in html
    assert 'href="/objects/2008%20TC3"' in html and 'href="/objects/2023%20QR6"' in html
    for fmt in ("json", "csv", "votable"):
        assert f'href="/v1/risk-list?format={fmt}"' in html
    # the imminent impactors show their predicted entry (TC3: 2008-10-07 02:45 UTC)
    tc3_row = html.split('data-designation="2008 TC3"', 1)[1].split("</tr>", 1)[0]
    assert '<strong class="imminent">2008-10-07 02:45</strong>' in tc3_row
    assert "1.00e+00" in tc3_row
    assert 'id="removed"' in html and "/static/dashboard.css" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/dashboard.css").status_code == 200


@pytest.mark.parametrize(("query", "expected"), [
    ("sort=designation&order=asc", ["2008 TC3", "2023 QR6", "2024 BX1"]),
    ("sort=designation&order=desc", ["2024 BX1", "2023 QR6", "2008 TC3"]),
    ("sort=cumulative_ip&order=asc", ["2023 QR6", "2008 TC3", "2024 BX1"]),
    ("sort=torino_max&order=desc", ["2023 QR6", "2008 TC3", "2024 BX1"]),
    ("sort=n_obs_used&order=desc", ["2008 TC3", "2024 BX1", "2023 QR6"]),
    ("sort=imminent&order=desc", ["2024 BX1", "2008 TC3", "2023 QR6"]),  # missing last
    ("q=bx1", ["2024 BX1"]),
    ("q=2008%20tc", ["2008 TC3"]),
    ("min_torino=1", ["2023 QR6"]),
    ("min_ip=0.5", ["2008 TC3", "2024 BX1"]),
    ("min_ip=1e-4&sort=designation&order=desc", ["2024 BX1", "2023 QR6", "2008 TC3"]),
    ("imminent=1", ["2008 TC3", "2024 BX1"]),
    ("imminent=1&min_torino=1", []),
])
def test_risk_list_sorting_and_filtering(client: TestClient, query: str,
                                         expected: list[str]) -> None:
    page = client.get(f"/?{query}")
    assert page.status_code == 200
    assert _rows(page.text) == expected
    if not expected:
        assert "No object on the risk list matches these filters" in page.text


def test_sort_links_keep_the_filters_and_flip_the_order(client: TestClient) -> None:
    html = client.get("/?q=20&sort=designation&order=asc").text
    links = dict(re.findall(r'<th data-key="(\w+)"[^>]*><a href="([^"]+)"', html))
    flipped = urllib.parse.parse_qs(urllib.parse.urlsplit(
        links["designation"].replace("&amp;", "&")).query)
    assert flipped == {"q": ["20"], "sort": ["designation"], "order": ["desc"]}
    other = urllib.parse.parse_qs(urllib.parse.urlsplit(
        links["H"].replace("&amp;", "&")).query)
    assert other == {"q": ["20"], "sort": ["H"], "order": ["asc"]}


@pytest.mark.parametrize("query", ["min_ip=abc", "min_torino=11", "sort=nope", "order=up",
                                   "min_ip=2"])
def test_malformed_filters_are_refused_with_a_message(client: TestClient, query: str) -> None:
    page = client.get(f"/?{query}")
    assert page.status_code == 400
    assert 'class="error" role="alert"' in page.text
    assert len(_rows(page.text)) == 3  # the unfiltered list still shows


def test_hostile_query_strings_are_escaped(client: TestClient) -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    page = client.get("/", params={"q": evil[:64]})
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<img src=x" not in page.text
    page = client.get("/objects/" + urllib.parse.quote(evil, safe=""))
    assert page.status_code == 404
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    page = client.get("/login", params={"next": "javascript:alert(1)"})
    assert 'name="next" value="/"' in page.text  # not a path on this site: home instead


def test_torino_zones_and_sorting_helpers() -> None:
    assert [torino_zone(t) for t in range(11)] == (
        ["white", "green"] + ["yellow"] * 3 + ["orange"] * 3 + ["red"] * 3)
    rows = [{"rank": 1, "H": None}, {"rank": 2, "H": 20.0}, {"rank": 3, "H": 18.0}]
    assert [r["rank"] for r in sort_rows(rows, "H", False)] == [3, 2, 1]
    assert [r["rank"] for r in sort_rows(rows, "H", True)] == [2, 3, 1]


def test_removed_page(client: TestClient, catalog) -> None:
    assert "No object has been removed" in client.get("/removed").text


# -- object page --------------------------------------------------------------------------------

def test_object_page_of_an_imminent_impactor(client: TestClient) -> None:
    page = client.get("/objects/2008%20TC3")
    assert page.status_code == 200
    html = page.text
    for plot in ("residuals", "bplane", "ip_history", "corridor_map"):
        assert re.search(rf'<svg [^>]*data-plot="{plot}"', html), plot
    assert "<path" in html
    # elements with 1σ, the solution versions, the virtual impactor, the close approach
    assert re.search(r"<td>e</td><td class=\"num\">0\.\d+</td>", html)
    assert 'id="versions"' in html and "1 (current)" in html
    assert 'id="virtual-impactors"' in html and "1.000e+00" in html
    assert 'id="close-approaches"' in html
    # the predicted entry over Sudan: time and place
    assert "Atmospheric entry predicted at <strong>2008-10-07T02:45" in html
    assert "latitude 21.0" in html and "longitude 30.5" in html
    # alerts about it (new object, imminent), each linking its VOEvent
    assert re.search(r'href="/v1/alerts/[^"]+\.xml"', html)
    # 883 observations in the residual table; no re-fit form for an anonymous visitor
    assert html.count('<tr class="res-') == 883
    assert 'action="/objects/2008%20TC3/refit"' not in html and 'name="exclude"' not in html
    assert 'href="/login?next=%2Fobjects%2F2008%20TC3"' in html


def test_object_page_by_alias_and_unknown_designation(client: TestClient) -> None:
    assert client.get("/objects/2023%20QR6").status_code == 200
    assert client.get("/objects/K23Q06R").status_code == 200  # packed provisional designation
    page = client.get("/objects/2099%20ZZ99")
    assert page.status_code == 404 and "No object in the catalog" in page.text


# -- login, logout, roles ------------------------------------------------------------------------

def test_login_and_logout(client: TestClient, catalog) -> None:
    _, made = catalog
    form = client.get("/login")
    assert form.status_code == 200
    assert "neodefense_login_csrf" in form.headers["set-cookie"]
    assert "samesite=strict" in form.headers["set-cookie"].lower()
    nonce = LOGIN_CSRF.search(form.text).group(1)
    # a form from elsewhere (no matching nonce) is refused; so is a wrong token
    bad = client.post("/login", data={"token": made["scientist"], "login_csrf": "forged"},
                      follow_redirects=False)
    assert bad.status_code == 403 and SESSION_COOKIE not in client.cookies
    wrong = client.post("/login", data={"token": "nd_1_notthesecret", "login_csrf": nonce},
                        follow_redirects=False)
    assert wrong.status_code == 401 and "Unknown or revoked token" in wrong.text
    nonce = LOGIN_CSRF.search(wrong.text).group(1)
    ok = client.post("/login", data={"token": made["scientist"], "login_csrf": nonce,
                                     "next": "https://evil.example/"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
    cookie = [c for c in ok.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)][0]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    home = client.get("/")
    assert "alice (scientist)" in home.text
    session_csrf = CSRF.search(home.text).group(1)
    token_id = int(made["scientist"].split("_")[1])
    assert session_csrf == csrf_token(made["scientist"], token_id)
    # logging out needs the session's CSRF token
    assert client.post("/logout", data={"csrf": "x"}, follow_redirects=False).status_code == 403
    out = client.post("/logout", data={"csrf": session_csrf}, follow_redirects=False)
    assert out.status_code == 303 and SESSION_COOKIE not in client.cookies
    assert "Log in" in client.get("/").text


def test_a_revoked_or_bogus_cookie_counts_as_logged_out(client: TestClient) -> None:
    client.cookies.set(SESSION_COOKIE, "nd_999_bogus")
    page = client.get("/")
    assert page.status_code == 200 and 'href="/login?next=%2F"' in page.text


# -- re-fit form ---------------------------------------------------------------------------------

def test_refit_form_needs_a_scientist(client: TestClient, catalog) -> None:
    engine, made = catalog
    versions = len(solutions.solution_history(engine, "2023 QR6"))
    anonymous = client.post("/objects/2023%20QR6/refit", data={"exclude": ["1"]},
                            follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    csrf = _login(client, made["observatory"])
    page = client.get("/objects/2023%20QR6").text
    assert 'name="exclude"' not in page and "Re-fitting is for scientists" in page
    refused = client.post("/objects/2023%20QR6/refit", data={"exclude": ["1"], "csrf": csrf},
                          follow_redirects=False)
    assert refused.status_code == 403
    assert len(solutions.solution_history(engine, "2023 QR6")) == versions


def test_refit_through_the_form(client: TestClient, catalog) -> None:
    engine, made = catalog
    csrf = _login(client, made["scientist"])
    before = solutions.latest_solution(engine, "2023 QR6", residuals=True)
    page = client.get("/objects/2023%20QR6").text
    assert 'action="/objects/2023%20QR6/refit"' in page
    boxes = re.findall(r'name="exclude" value="(\d+)"', page)
    assert len(boxes) == len(before["residuals"]) == 31
    exclude = boxes[3:5]
    # without the CSRF token (a form posted from another site): refused, nothing runs
    forged = client.post("/objects/2023%20QR6/refit", data={"exclude": exclude},
                         follow_redirects=False)
    assert forged.status_code == 403
    unknown = client.post("/objects/2023%20QR6/refit",
                          data={"exclude": ["999999"], "csrf": csrf}, follow_redirects=False)
    assert unknown.status_code == 400
    assert len(solutions.solution_history(engine, "2023 QR6")) == 1

    started = client.post("/objects/2023%20QR6/refit",
                          data={"exclude": exclude, "csrf": csrf, "nongrav": "none"},
                          follow_redirects=False)
    assert started.status_code == 303
    assert started.headers["location"] == "/objects/2023%20QR6?refit=started#versions"
    # the background task has run (the test client waits for it): version 2 is current
    history = solutions.solution_history(engine, "2023 QR6")
    assert [h["version"] for h in history] == [1, 2]
    assert history[1]["settings"]["exclude"] == sorted(int(x) for x in exclude)
    assert history[1]["settings"]["requested_by"] == "scientist:alice"
    assert history[1]["n_used"] == before["n_used"] - 2
    page = client.get(started.headers["location"]).text
    assert "Re-fit requested" in page and "Last re-fit (scientist:alice): version 2" in page
    assert '<tr class="current" data-version="2">' in page and 'data-version="1"' in page
    for oid in exclude:  # excluded rows marked, their boxes checked for the next re-fit
        assert re.search(rf'<tr class="res-excluded" data-observation-id="{oid}">\s*<td><input '
                         rf'type="checkbox" name="exclude" value="{oid}"[^>]* checked>', page)
    assert page.count('<tr class="res-excluded"') == 2


# -- observatories and contributions -----------------------------------------------------------

def test_observatory_page_access(client: TestClient, catalog) -> None:
    _, made = catalog
    here = "/observatories/Mt.%20Lemmon"
    anonymous = client.get(here, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fobservatories%2FMt.%2520Lemmon"
    _login(client, made["other"])
    assert client.get(here).status_code == 403
    _login(client, made["observatory"])
    page = client.get(here)
    assert page.status_code == 200
    assert "2008_TC3.obs80" in page.text and 'href="/v1/submissions/' in page.text
    assert 'href="/v1/followup?stn=G96"' in page.text and "Mt. Lemmon Survey" in page.text
    _login(client, made["scientist"])
    assert client.get(here).status_code == 200
    assert client.get("/observatories/Nowhere").status_code == 404


def test_contributions_page_is_public(client: TestClient) -> None:
    page = client.get("/contributions")
    assert page.status_code == 200
    html = page.text
    assert "Mt. Lemmon" in html and "Other &lt;b&gt;Obs&lt;/b&gt;" in html
    assert "<b>Obs</b>" not in html
    g96 = html.split('data-stn="G96"', 1)[1].split("</tr>", 1)[0]
    counts = [int(x) for x in re.findall(r'<td class="num">(\d+)</td>', g96)]
    n_g96 = sum(1 for line in (DEMO / "2008_TC3.obs80").read_text().splitlines()
                if line[77:80] == "G96")
    # submissions, observations, objects (TC3 only), orbit solutions, assessments
    assert counts == [1, n_g96, 1, 1, 1] and n_g96 > 0


@pytest.mark.postgres
def test_pages_over_postgresql(make_catalog_url) -> None:  # noqa: ANN001
    """The same pages over PostgreSQL (JSON columns, the imminent-entry query): 2024 BX1."""
    engine = db.connect(make_catalog_url("postgresql"))
    try:
        _, solution, solution_id, batch = _fit(engine, DEMO / "2024_BX1.obs80", "2024 BX1")
        assessments.store_assessment(engine, solution_id, monitor_solution(
            solution, batch=batch, years=0.01, n_samples=11, bodies=("earth",),
            cross_check=False))
        with TestClient(create_app(engine=engine)) as pg_client:
            html = pg_client.get("/?imminent=1").text
            assert _rows(html) == ["2024 BX1"]
            assert '<strong class="imminent">2024-01-21 00:3' in html
            page = pg_client.get("/objects/2024%20BX1")
            assert page.status_code == 200 and 'data-plot="corridor_map"' in page.text
            assert pg_client.get("/contributions").status_code == 200
            # taken off the list by hand (a hostile note): listed below the risk list
            alert_id = catalog_alerts.remove_object(engine, "2024 BX1", "manual",
                                                    note="<i>test</i> removal")
            html = pg_client.get("/").text
            assert _rows(html) == [] and "The risk list is empty" in html
            removed = html.split('id="removed"', 1)[1]
            assert 'href="/objects/2024%20BX1"' in removed and f"{alert_id}</a>" in removed
            assert "&lt;i&gt;test&lt;/i&gt; removal" in removed and "<i>test" not in removed
            assert "removed by an operator" in pg_client.get("/removed").text
            assert "Removed from the risk list" in pg_client.get("/objects/2024%20BX1").text
    finally:
        engine.dispose()
