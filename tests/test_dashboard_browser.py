"""The dashboard in a real browser: Debian's Chromium driven by Playwright against uvicorn serving
the application on a free loopback port, over a catalog built from 2008 TC3's real observations
(ingested, fitted, monitored with a few samples over a short horizon, stored: on the risk list
with its imminent entry).

Checks what only a browser can: the pages render, every plot is an SVG with a non-empty box and
drawn paths, the Torino colour is the computed one, the scripts sort and filter, the login
cookie and CSRF token work through real forms — and not one request leaves the machine."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_receivers import free_port

from neodefense.catalog import access, assessments, db, ingest, queries, solutions

CHROMIUM = Path("/usr/bin/chromium")
DEMO = Path(__file__).resolve().parents[1] / "src" / "neodefense" / "data" / "demo"
PLOTS = ("residuals", "bplane", "ip_history", "corridor_map")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"no Chromium at {CHROMIUM} (.ci/run installs it)")


def _tc3_catalog(url: str) -> str:
    """2008 TC3 fitted and monitored into the catalog at ``url``; a scientist's token."""
    from neodefense.impacts.monitor import monitor_solution
    from neodefense.orbits.fit import fit_orbit

    engine = db.connect(url)
    try:
        ingest.ingest(engine, DEMO / "2008_TC3.obs80", "2008_TC3.obs80", "MPC")
        object_id = queries.resolve(engine, "2008 TC3")
        batch, ids = solutions.observations_with_ids(engine, object_id)
        solution = fit_orbit(batch, "2008 TC3", close_approach_years=None)
        assert solution.status == "converged", solution.message
        solution_id = solutions.store_solution(engine, object_id, solution, ids,
                                               {"nongrav": "none", "exclude": []})
        assessment = monitor_solution(solution, batch=batch, years=0.01, n_samples=11,
                                      bodies=("earth",), cross_check=False)
        assert assessment.status == "ok" and assessment.virtual_impactors[0].entry
        assessments.store_assessment(engine, solution_id, assessment)
        return access.create_token(engine, "carol", access.SCIENTIST)[1]
    finally:
        engine.dispose()


class Server:
    """uvicorn serving the application in a thread on a free 127.0.0.1 port."""

    def __init__(self, catalog_url: str) -> None:
        import uvicorn

        from neodefense.api.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(catalog_url=catalog_url), host="127.0.0.1", port=self.port,
            log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30.0
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30.0)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'catalog.sqlite'}"
    token = _tc3_catalog(url)
    with Server(url) as server:
        yield server.url, token


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Recorder:
    """Every request a page makes, console errors and page errors; requests to any host other
    than the local server are aborted (and recorded)."""

    def __init__(self, page) -> None:  # noqa: ANN001 - playwright Page
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error"
                else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.route("**/*", self._route)

    @staticmethod
    def _route(route) -> None:  # noqa: ANN001
        host = urllib.parse.urlsplit(route.request.url).hostname
        if host in LOCAL_HOSTS or route.request.url.startswith("data:"):
            route.continue_()
        else:
            route.abort()

    def foreign(self) -> list[str]:
        return [u for u in self.requests if not u.startswith("data:")
                and urllib.parse.urlsplit(u).hostname not in LOCAL_HOSTS]


@pytest.fixture()
def page(browser) -> Iterator[tuple[object, Recorder]]:  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    recorder = Recorder(tab)
    yield tab, recorder
    context.close()


def test_risk_list_in_the_browser(site, page) -> None:  # noqa: ANN001
    base, _ = site
    tab, recorder = page
    response = tab.goto(base + "/")
    assert response.status == 200
    row = tab.locator('#risk-list tbody tr[data-designation="2008 TC3"]')
    assert row.count() == 1
    # Torino 0: the white zone, as the browser computes it
    colour = row.locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert colour == "rgb(255, 255, 255)"
    assert row.locator("td.num").nth(2).inner_text() == "1.00e+00"  # cumulative IP
    assert "2008-10-07 02:45" in row.inner_text()  # the predicted entry
    # the script filters as you type, and brings the row back
    tab.fill('input[name="q"]', "bx1")
    assert row.is_hidden()
    tab.fill('input[name="q"]', "tc3")
    assert row.is_visible()
    # the server-side filter form works too
    tab.select_option('select[name="min_torino"]', "1")
    tab.click('form.filters button[type="submit"]')
    tab.wait_for_load_state()
    assert "min_torino=1" in tab.url and "No object on the risk list matches" in tab.content()
    # the object link
    tab.goto(base + "/")
    tab.click('#risk-list a[href="/objects/2008%20TC3"]')
    tab.wait_for_load_state()
    assert tab.locator("h1").inner_text() == "2008 TC3"
    assert recorder.foreign() == [] and recorder.errors == []
    assert all(u.startswith(base) for u in recorder.requests)


def test_object_page_plots_render(site, page) -> None:  # noqa: ANN001
    base, _ = site
    tab, recorder = page
    assert tab.goto(base + "/objects/2008%20TC3").status == 200
    for name in PLOTS:
        plot = tab.locator(f'svg[data-plot="{name}"]')
        assert plot.count() >= 1, name
        box = plot.first.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100, (name, box)
        drawn = plot.first.locator("path").count() + plot.first.locator("image").count()
        assert drawn > 3, name
    # the corridor map has its coastlines and the corridor itself
    corridor = tab.locator('svg[data-plot="corridor_map"]').first
    assert corridor.locator('[id$="-coast"], [id*="coast"]').count() >= 1
    assert corridor.locator('[id*="corridor"]').count() >= 1
    text = tab.locator("#imminent").inner_text()
    assert "2008-10-07T02:45" in text and "latitude 21.0" in text
    # the residual table sorts in the browser (smallest ΔRA first after one click)
    tab.click("#observations summary")
    header = tab.locator("#residual-table thead th", has_text="ΔRA")
    header.click()
    values = tab.locator("#residual-table tbody tr td:nth-child(4)").all_inner_texts()[:50]
    numbers = [float(v) for v in values if v != "-"]
    assert numbers == sorted(numbers) and len(numbers) > 10
    assert recorder.foreign() == [] and recorder.errors == []


def test_login_and_refit_through_the_browser(site, page) -> None:  # noqa: ANN001
    base, token = site
    tab, recorder = page
    tab.goto(base + "/objects/2008%20TC3")
    assert tab.locator('input[name="exclude"]').count() == 0
    tab.click('header a:has-text("Log in")')
    tab.fill("#token", token)
    tab.click('form.login button[type="submit"]')
    tab.wait_for_load_state()
    assert tab.url == base + "/objects/2008%20TC3"
    assert "carol (scientist)" in tab.locator("header").inner_text()
    cookie = next(c for c in tab.context.cookies() if c["name"] == "neodefense_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert tab.evaluate("document.cookie").find("neodefense_token") < 0  # not readable by JS
    boxes = tab.locator('input[name="exclude"]')
    assert boxes.count() == 883
    boxes.nth(0).check()
    boxes.nth(1).check()
    tab.click('form.refit button[type="submit"]')
    tab.wait_for_load_state()
    assert "refit=started" in tab.url
    deadline = time.monotonic() + 60.0
    while tab.locator('#versions tr[data-version="2"]').count() == 0:
        assert time.monotonic() < deadline, "the re-fit did not finish"
        time.sleep(1.0)
        tab.reload()
    assert tab.locator('#versions tr.current').get_attribute("data-version") == "2"
    assert tab.locator('#versions tr[data-version="1"]').count() == 1  # kept
    assert tab.locator("#residual-table tr.res-excluded").count() == 2
    tab.click('header button:has-text("Log out")')
    tab.wait_for_load_state()
    assert "Log in" in tab.locator("header").inner_text()
    assert recorder.foreign() == [] and recorder.errors == []
