"""The built documentation site renders in a real browser.

Runs when a built site exists (``SKVAE_DOCS_HTML``, default
``docs/_build/html``: build it with ``make -C docs html``), Debian's Chromium
is at ``/usr/bin/chromium`` (``apt-get install chromium``) and Playwright for
Python is installed (the ``docs`` extra). Playwright drives that Chromium
through ``executable_path``; no browser is downloaded. The site is served
from 127.0.0.1 by ``http.server`` in a thread, and every request to any other
host is blocked and counted as a failure: the site must work offline.

For each checked page: the title and the main content are there, every
``<img>`` has loaded (``naturalWidth > 0``), MathJax has typeset the math
(pages with equations), and the browser logged no error and no page error.
The search page must answer a query.
"""

from __future__ import annotations

import functools
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("SKVAE_DOCS_HTML", ROOT / "docs" / "_build" / "html"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds to wait for a page, and for the search to fill its results.
TIMEOUT_MS = 30_000

if not (SITE / "index.html").is_file():
    pytest.skip(
        f"no built docs site at {SITE} (run `make -C docs html`, or set "
        "SKVAE_DOCS_HTML to the folder holding index.html)",
        allow_module_level=True,
    )
if not CHROMIUM.is_file():
    pytest.skip(
        f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright for Python is not installed (pip install -e '.[docs]')",
)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serve the site without logging every request to stderr."""

    def log_message(self, format, *args):  # noqa: A002 - the base's signature
        pass


@pytest.fixture(scope="module")
def site_url():
    """Base URL of the site, served from 127.0.0.1 on a free port."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright (never a downloaded browser)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, site_url):
    """A fresh page that records errors and blocks requests to other hosts.

    ``page.problems`` collects console errors, uncaught page errors, failed
    requests and blocked outside requests.
    """
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    problems = []
    local_host = urlsplit(site_url).netloc

    def route(route):
        if urlsplit(route.request.url).netloc in (local_host, ""):
            route.continue_()
        else:
            problems.append(f"request to another host: {route.request.url}")
            route.abort()

    page.route("**/*", route)
    page.on(
        "console",
        lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "requestfailed",
        lambda req: problems.append(f"failed request: {req.url} ({req.failure})"),
    )
    page.on(
        "response",
        lambda resp: (
            resp.status >= 400 and problems.append(f"HTTP {resp.status}: {resp.url}")
        ),
    )
    page.problems = problems
    yield page
    context.close()


#: Every <img> made eager, then awaited: lazy images below the fold load too.
LOAD_IMAGES = """async () => {
    const images = Array.from(document.images);
    for (const img of images) { img.loading = "eager"; }
    await Promise.all(images.map((img) => img.decode().catch(() => null)));
    return images
        .filter((img) => !(img.complete && img.naturalWidth > 0))
        .map((img) => img.currentSrc || img.src);
}"""

PAGES = {
    "home": ("index.html", "skvae", "variational autoencoders"),
    "user guide": ("user_guide/impute.html", "Impute", "MIWAE"),
    "API": ("generated/skvae.VAEImputer.html", "VAEImputer", "sample_imputations"),
    "gallery": ("auto_examples/index.html", "Gallery", "Digits quickstart"),
}
#: Pages whose equations MathJax must typeset.
MATH_PAGES = {"user guide"}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders(page, site_url, name):
    path, title_word, text = PAGES[name]
    response = page.goto(site_url + path, wait_until="load")
    assert response is not None, f"{path}: no response"
    assert response.ok, f"{path}: HTTP {response.status}"
    assert title_word.lower() in page.title().lower(), page.title()

    main = page.locator("main article")
    assert main.count() == 1, f"{path}: no main article"
    body = main.inner_text()
    assert len(body) > 200, f"{path}: main content nearly empty"
    assert text.lower() in body.lower(), f"{path}: {text!r} not in main content"

    not_loaded = page.evaluate(LOAD_IMAGES)
    assert not not_loaded, f"{path}: images not loaded: {not_loaded}"
    if name == "gallery":
        assert page.locator("img").count() >= 5, "gallery thumbnails missing"

    if name in MATH_PAGES:
        page.wait_for_selector("mjx-container", state="attached")
        assert page.locator("mjx-container").count() >= 3, "math not typeset"

    page.wait_for_load_state("networkidle")
    assert not page.problems, f"{path}: " + "; ".join(page.problems)


def test_search_answers_a_query(page, site_url):
    page.goto(site_url + "search.html?q=imputer", wait_until="load")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(state="attached")
    assert results.count() >= 3
    links = page.locator("#search-results ul.search li a").all_inner_texts()
    assert any("VAEImputer" in text for text in links), links
    page.wait_for_load_state("networkidle")
    assert not page.problems, "; ".join(page.problems)
