"""The course website builds offline and every lesson page shows its outputs, math and widgets.

``scripts/build_site.py`` builds the site (reusing the lessons the browser test executed, when they
are current); the test serves it on 127.0.0.1, opens every lesson page in headless Chromium and
checks: the title, rendered math, figures, widgets without "Loading widget" or errors, no
JavaScript error, no request to any other host than the local server (every such request is
blocked and reported), and internal links that resolve. Needs the pages' scripts, which
``scripts/install.sh`` fetches with npm, and Chromium; without them the test is skipped, except under
``CI=true`` where it fails.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

ROOT = Path(__file__).parents[1]
SITE = ROOT / "build" / "site"
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
pytestmark = pytest.mark.xdist_group("browser")  # after the browser test, whose executed lessons it reuses


def _skip_or_fail(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: the website test must run in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site():
    """Build the site, then serve build/site/ on 127.0.0.1; yields the base URL."""
    if not (ROOT / "build" / "site-assets" / ".complete").exists():
        _skip_or_fail("the website's scripts are missing: scripts/install.sh fetches them with npm "
                      "(bash scripts/site_assets.sh); tests never download")
    if not Path(CHROMIUM).exists():
        _skip_or_fail("Chromium not found: `sudo apt-get install chromium` to test the website")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_site.py")], capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, f"the site did not build:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _open(browser, url: str):
    """Open ``url``; block and record every request to another host, and every JavaScript error."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    local = urlparse(url).netloc
    page.outside, page.errors = [], []

    def route(request_route):
        target = urlparse(request_route.request.url)
        if target.scheme in ("http", "https") and target.netloc != local:
            page.outside.append(request_route.request.url)
            return request_route.abort()
        return request_route.continue_()

    page.route("**/*", route)
    page.on("pageerror", lambda err: page.errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text[:300]))
    page.goto(url, wait_until="networkidle")
    return page


def test_the_index_lists_every_lesson(site, browser):
    page = _open(browser, site + "index.html")
    links = page.eval_on_selector_all("a[href*='lessons/']", "els => els.map(e => e.getAttribute('href'))")
    for lesson in LESSONS:
        assert any(lesson.stem in href for href in links), lesson.stem
    assert page.outside == [] and page.errors == []
    page.close()


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_page_shows_outputs_math_and_widgets_offline(site, browser, lesson):
    page = _open(browser, f"{site}lessons/{lesson.stem}.html")
    try:
        assert page.locator("h1").first.inner_text().startswith("Lesson"), "the page has the lesson's title"
        assert page.locator("img").count() >= 2, "the lesson's figures are on the page"
        assert page.locator(".cell_output").count() > 5, "the cells' outputs are on the page"
        source = (SITE / "lessons" / f"{lesson.stem}.html").read_text()
        if "\\(" in source or "\\[" in source:
            page.wait_for_selector("mjx-container", timeout=30_000)  # MathJax, served locally, rendered it
        if "application/vnd.jupyter.widget-view+json" in source:
            page.wait_for_selector(".jupyter-widgets", timeout=30_000)
            page.wait_for_timeout(1000)
            text = page.inner_text("body")
            assert "Loading widget" not in text and "Error displaying widget" not in text
            assert page.locator(".jupyter-widgets-error-widget").count() == 0
        assert page.outside == [], f"requests to other hosts: {page.outside[:5]}"
        assert page.errors == [], page.errors[:5]
        broken = []
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
            target = urlparse(urljoin(page.url, href))
            if target.netloc == urlparse(site).netloc:
                path = SITE / unquote(target.path).lstrip("/")
                if not (path.is_file() or (path / "index.html").is_file()):
                    broken.append(href)
        assert broken == [], f"internal links that do not resolve: {broken[:5]}"
        page.screenshot(path=str(_artifact(f"{lesson.stem}.png")), full_page=False)
    finally:
        page.close()


def _artifact(name: str) -> Path:
    folder = ROOT / "artifacts" / "site"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
