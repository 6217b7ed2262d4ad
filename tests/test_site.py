"""Browser tests of the built book in _build/html, run in Debian's headless Chromium through Playwright.

`make test` builds the site before pytest runs. Each page is opened once from its file:// URL
with every request to another scheme aborted and recorded, because the site must work offline.
The checks then read that one recorded load: blocked and failed requests, console and page
errors, MathJax typesetting, images, internal links and the embedded widget state.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
SITE = REPOSITORY / "_build" / "html"
CHROMIUM = Path("/usr/bin/chromium")

# Flags for Chromium running as root on a machine without a display or network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Schemes a page may load without touching the network.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

RAW_TEX_DELIMITERS = ("$$", "\\(", "\\[")

# The vendored scripts that a page may load directly. MathJax and the widget manager load
# the rest of _static/mathjax/ and _static/html-manager/ themselves when they need it.
VENDOR_ENTRY_POINTS = {
    "_static/mathjax/tex-chtml.js",
    "_static/requirejs/require.js",
    "_static/html-manager/embed-amd.js",
}

# The first chapter contains a widget, so the site-wide slider test has one to find.
FIRST_CHAPTER = "chapters/01_closed_form_fields.html"

# Milliseconds to wait for MathJax and for the widgets on one page.
RENDER_TIMEOUT_MS = 30_000


def find_pages() -> list[str]:
    """List the site's HTML pages relative to SITE, leaving out theme fragments under _static/."""
    if not SITE.is_dir():
        return []
    pages = []
    for path in sorted(SITE.rglob("*.html")):
        relative = path.relative_to(SITE).as_posix()
        if relative.startswith(("_static/", "_sources/")):
            continue
        pages.append(relative)
    return pages


# With no built site, one placeholder parameter makes every page test fail with the fix, not skip.
PAGES = find_pages() or ["(site not built)"]


class _AnchorCollector(HTMLParser):
    """Collect every id and every <a name> of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is not None and (name == "id" or (tag == "a" and name == "name")):
                self.anchors.add(value)


# A page that only redirects, such as the index.html that Jupyter Book writes for the root page.
META_REFRESH = re.compile(
    r"""<meta[^>]*http-equiv=["']refresh["'][^>]*content=["'][^"']*url=([^"']+)["']""", re.IGNORECASE
)


def find_redirect(page_name: str) -> str | None:
    """Return the URL that a meta refresh in the page sends the browser to, or None."""
    match = META_REFRESH.search((SITE / page_name).read_text(encoding="utf-8"))
    return match.group(1) if match else None


def read_anchors(path: Path) -> set[str]:
    collector = _AnchorCollector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector.anchors


@dataclass
class PageLoad:
    """What one load of one page recorded."""

    page: str
    blocked_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    mathjax_status: str = "not loaded"
    math_elements: int = 0
    mjx_containers: int = 0
    mjx_errors: list[str] = field(default_factory=list)
    text: str = ""
    images: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    script_sources: list[str] = field(default_factory=list)
    widget_views: int = 0
    widget_status: str = "no widgets"
    saved_sliders: list[dict] = field(default_factory=list)
    sliders: list[dict] = field(default_factory=list)


# Text of the page without code, scripts and styles, so code that shows TeX source is allowed.
TEXT_WITHOUT_CODE_JS = """
() => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll('pre, code, script, style, noscript').forEach((node) => node.remove());
    return body.textContent;
}
"""

WAIT_FOR_MATHJAX_JS = """
async (timeoutMs) => {
    if (!window.MathJax || !window.MathJax.startup || !window.MathJax.startup.promise) {
        return 'not loaded';
    }
    const timeout = new Promise((resolve) => setTimeout(() => resolve('timed out'), timeoutMs));
    const typeset = window.MathJax.startup.promise.then(() => 'typeset', (error) => 'failed: ' + error);
    return Promise.race([typeset, timeout]);
}
"""

IMAGES_JS = """
() => Array.from(document.images).map((image) => ({
    src: image.getAttribute('src'),
    complete: image.complete,
    naturalWidth: image.naturalWidth,
}))
"""

LINKS_JS = """
() => Array.from(document.querySelectorAll('a[href]')).map((anchor) => ({
    href: anchor.getAttribute('href'),
    url: anchor.href,
}))
"""

# Slider models as saved in the page's widget state when the notebook was executed.
SAVED_SLIDERS_JS = """
() => Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]'))
    .flatMap((script) => Object.values(JSON.parse(script.textContent).state))
    .filter((model) => model.model_name === 'IntSliderModel' || model.model_name === 'FloatSliderModel')
    .map((model) => ({description: model.state.description, value: model.state.value}))
"""

SLIDERS_JS = """
() => Array.from(document.querySelectorAll('.widget-slider')).map((slider) => {
    const readout = slider.querySelector('.widget-readout');
    const label = slider.querySelector('.widget-label');
    return {
        readout: readout ? readout.textContent.trim() : null,
        label: label ? label.textContent.trim() : null,
    };
})
"""


def load_page(browser, page_name: str) -> PageLoad:
    """Open one page offline, wait for MathJax and the widgets, and record what happened."""
    record = PageLoad(page=page_name)
    context = browser.new_context()

    def route_request(route):
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            record.blocked_requests.append(url)
            route.abort()

    def record_console_message(message):
        if message.type == "error":
            record.console_errors.append(message.text)

    def record_failed_request(request):
        # Aborted non-local requests are already in blocked_requests.
        if request.url.startswith("file:"):
            record.failed_requests.append(f"{request.url} ({request.failure})")

    context.route("**/*", route_request)
    page = context.new_page()
    page.on("console", record_console_message)
    page.on("pageerror", lambda error: record.page_errors.append(str(error)))
    page.on("requestfailed", record_failed_request)

    try:
        page_url = (SITE / page_name).as_uri()
        redirect = find_redirect(page_name)
        page.goto(page_url, wait_until="load")
        if redirect is not None:
            # Check the redirect like a link, then test the page it lands on.
            target_url = urljoin(page_url, redirect)
            record.links.append({"href": redirect, "url": target_url})
            if Path(unquote(urlsplit(target_url).path)).is_file():
                page.wait_for_url(target_url, wait_until="load", timeout=RENDER_TIMEOUT_MS)
            else:
                return record

        record.mathjax_status = page.evaluate(WAIT_FOR_MATHJAX_JS, RENDER_TIMEOUT_MS)
        record.math_elements = page.locator(".math").count()
        record.mjx_containers = page.locator("mjx-container").count()
        record.mjx_errors = page.locator("mjx-merror").evaluate_all(
            "(nodes) => nodes.map((node) => node.getAttribute('data-mjx-error') || node.textContent)"
        )

        record.widget_views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        record.saved_sliders = page.evaluate(SAVED_SLIDERS_JS)
        if record.widget_views:
            try:
                page.wait_for_function(
                    "(expected) => document.querySelectorAll('.widget-subarea .jupyter-widgets').length >= expected",
                    arg=record.widget_views,
                    timeout=RENDER_TIMEOUT_MS,
                )
                record.widget_status = "rendered"
            except Exception as error:  # Playwright's TimeoutError; the test reports the status.
                record.widget_status = f"not rendered: {error}"
            record.sliders = page.evaluate(SLIDERS_JS)

        record.text = page.evaluate(TEXT_WITHOUT_CODE_JS)
        record.images = page.evaluate(IMAGES_JS)
        record.links += page.evaluate(LINKS_JS)
        record.script_sources = page.locator("script[src]").evaluate_all(
            "(nodes) => nodes.map((node) => node.getAttribute('src'))"
        )
    finally:
        context.close()
    return record


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found; install it with `apt-get install chromium`"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true, so the browser tests may not be skipped)")
        pytest.skip(message)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def page_loads(browser):
    """Return a function that loads a page once per session and returns its PageLoad."""
    cache: dict[str, PageLoad] = {}

    def get(page_name: str) -> PageLoad:
        if not (SITE / "index.html").is_file():
            pytest.fail(f"The built site is missing: {SITE / 'index.html'} not found. Run `make book` first.")
        if page_name not in cache:
            cache[page_name] = load_page(browser, page_name)
        return cache[page_name]

    return get


@pytest.mark.parametrize("page_name", PAGES)
def test_page_makes_no_network_request(page_loads, page_name):
    load = page_loads(page_name)
    assert load.blocked_requests == [], f"{page_name} requested non-local URLs: {load.blocked_requests}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_local_requests_succeed(page_loads, page_name):
    load = page_loads(page_name)
    assert load.failed_requests == [], f"{page_name} failed to load local files: {load.failed_requests}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_has_no_console_errors(page_loads, page_name):
    load = page_loads(page_name)
    assert load.console_errors == [], f"{page_name} logged console errors: {load.console_errors}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_has_no_script_errors(page_loads, page_name):
    load = page_loads(page_name)
    assert load.page_errors == [], f"{page_name} raised uncaught errors: {load.page_errors}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_math_is_typeset(page_loads, page_name):
    load = page_loads(page_name)
    if load.math_elements == 0 and load.mjx_containers == 0:
        assert load.mathjax_status == "not loaded", f"{page_name} has no math but MathJax ended as {load.mathjax_status!r}"
        return

    assert load.mathjax_status == "typeset", f"{page_name} has math but MathJax ended as {load.mathjax_status!r}"
    assert load.mjx_containers > 0, f"{page_name} has {load.math_elements} math elements but no mjx-container"
    assert load.mjx_errors == [], f"{page_name} has TeX errors: {load.mjx_errors}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_text_has_no_raw_tex(page_loads, page_name):
    load = page_loads(page_name)
    for delimiter in RAW_TEX_DELIMITERS:
        position = load.text.find(delimiter)
        context = load.text[max(position - 60, 0) : position + 60] if position >= 0 else ""
        assert position < 0, f"{page_name} shows the raw TeX delimiter {delimiter!r} in: {context!r}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_images_load(page_loads, page_name):
    load = page_loads(page_name)
    broken = [image["src"] for image in load.images if not image["complete"] or image["naturalWidth"] == 0]
    assert broken == [], f"{page_name} has images that did not load: {broken}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_internal_links_resolve(page_loads, page_name):
    load = page_loads(page_name)
    missing_files = []
    missing_anchors = []
    anchors_by_file: dict[Path, set[str]] = {}

    for link in load.links:
        url = urlsplit(link["url"])
        if url.scheme != "file" or link["href"] in ("", "#"):
            continue

        target = Path(unquote(url.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            missing_files.append(link["href"])
            continue

        fragment = unquote(url.fragment)
        if fragment and target.suffix == ".html":
            if target not in anchors_by_file:
                anchors_by_file[target] = read_anchors(target)
            if fragment not in anchors_by_file[target]:
                missing_anchors.append(link["href"])

    assert missing_files == [], f"{page_name} links to files that do not exist: {missing_files}"
    assert missing_anchors == [], f"{page_name} links to anchors that do not exist: {missing_anchors}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_loads_only_vendor_entry_points(page_loads, page_name):
    load = page_loads(page_name)
    page_folder = (SITE / page_name).parent
    vendored = []
    for source in load.script_sources:
        path = (page_folder / source.split("?")[0]).resolve()
        if not path.is_relative_to(SITE):
            continue
        relative = path.relative_to(SITE).as_posix()
        if relative.startswith(("_static/mathjax/", "_static/requirejs/", "_static/html-manager/")):
            vendored.append(relative)

    unexpected = sorted(set(vendored) - VENDOR_ENTRY_POINTS)
    assert unexpected == [], (
        f"{page_name} loads vendored files other than {sorted(VENDOR_ENTRY_POINTS)}: {unexpected}. "
        "A top-level _static/ folder makes Jupyter Book add every vendored file to every page."
    )
    duplicates = sorted({source for source in vendored if vendored.count(source) > 1})
    assert duplicates == [], f"{page_name} loads vendored scripts more than once: {duplicates}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_widgets_render(page_loads, page_name):
    load = page_loads(page_name)
    if load.widget_views == 0:
        return
    assert load.widget_status == "rendered", f"{page_name} has {load.widget_views} saved widget views: {load.widget_status}"


def slider_shows_saved_state(slider: dict, saved: dict) -> bool:
    if slider["label"] != saved["description"] or slider["readout"] is None:
        return False
    try:
        shown = float(slider["readout"])
    except ValueError:
        return False
    return abs(shown - saved["value"]) <= 0.01 * max(1.0, abs(saved["value"]))


def test_site_sliders_show_saved_state(page_loads):
    saved_count = 0
    for page_name in PAGES:
        load = page_loads(page_name)
        saved_count += len(load.saved_sliders)
        for slider in load.sliders:
            matches = [saved for saved in load.saved_sliders if slider_shows_saved_state(slider, saved)]
            assert matches, f"{page_name}: rendered slider {slider} matches no saved slider in {load.saved_sliders}"
        if load.saved_sliders:
            assert load.sliders, f"{page_name} saved sliders {load.saved_sliders} but rendered no .widget-slider"

    assert saved_count > 0, f"no page saved a slider; {FIRST_CHAPTER} is expected to hold one"


def test_site_lists_every_toc_page():
    missing = [page for page in ("intro.html", FIRST_CHAPTER, "bibliography.html") if page not in PAGES]
    assert missing == [], f"pages missing from {SITE}: {missing}. Run `make book` first."
