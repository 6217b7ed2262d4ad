"""Tests of the built book: browser tests of _build/html and static checks of the student edition.

`make test` builds both sites before pytest runs. Each page of _build/html is opened once in
Debian's headless Chromium, through Playwright, from its file:// URL with every request to
another scheme aborted and recorded, because the site must work offline. The checks then read
that one recorded load: blocked and failed requests, console and page errors, MathJax
typesetting, images, internal links, the embedded widgets, and the static explorers, whose
every slider the load moves once. The student edition's HTML files are parsed without a browser.
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
# Where `make book-student` writes the student edition.
STUDENT_SITE = REPOSITORY / "_build" / "student" / "_build" / "html"
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

# The first chapter contains an explorer and exercises with solutions, so the site-wide tests have some to find.
FIRST_CHAPTER = "chapters/01_closed_form_fields.html"

# Milliseconds to wait for MathJax and for the widgets on one page.
RENDER_TIMEOUT_MS = 30_000


def find_pages(site: Path = SITE) -> list[str]:
    """List a site's HTML pages relative to its folder, leaving out theme fragments under _static/."""
    if not site.is_dir():
        return []
    pages = []
    for path in sorted(site.rglob("*.html")):
        relative = path.relative_to(site).as_posix()
        if relative.startswith(("_static/", "_sources/")):
            continue
        pages.append(relative)
    return pages


# With no built site, one placeholder parameter makes every page test fail with the fix, not skip.
PAGES = find_pages() or ["(site not built)"]
STUDENT_PAGES = find_pages(STUDENT_SITE) or ["(student edition not built)"]


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


class _MarkupCollector(HTMLParser):
    """Collect the class names, ids and link targets of an HTML document, without its scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: set[str] = set()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.classes.update((attributes.get("class") or "").split())
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(attributes["href"])


def read_markup(path: Path) -> _MarkupCollector:
    collector = _MarkupCollector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


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
    sliders: list[dict] = field(default_factory=list)
    explorer_count: int = 0
    explorer_moves: list[dict] = field(default_factory=list)


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

# Waits until an image has decoded its current src, and reports whether it has pixels.
IMAGE_LOADED_JS = """
async (image) => {
    try {
        await image.decode();
    } catch (error) {
        return false;
    }
    return image.complete && image.naturalWidth > 0;
}
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
        # Last, because moving the sliders changes the images recorded above.
        move_explorer_sliders(page, record)
    finally:
        context.close()
    return record


def move_explorer_sliders(page, record: PageLoad) -> None:
    """Move every slider of every static explorer once, from the keyboard, and record what changed."""
    explorers = page.locator(".interp-explorer")
    record.explorer_count = explorers.count()
    for explorer_index in range(record.explorer_count):
        explorer = explorers.nth(explorer_index)
        image = explorer.locator("img.interp-explorer-frame")
        sliders = explorer.locator("input.interp-explorer-slider")
        for slider_index in range(sliders.count()):
            slider = sliders.nth(slider_index)
            readout = slider.locator("xpath=following-sibling::output")
            before = {
                "value": slider.input_value(),
                "src": image.get_attribute("src"),
                "readout": readout.text_content(),
            }

            # End moves to the last value, and Home to the first when the slider is already there.
            slider.press("Home" if before["value"] == slider.get_attribute("max") else "End")

            record.explorer_moves.append(
                {
                    "explorer": explorer_index,
                    "slider": slider.get_attribute("aria-label"),
                    "positions": int(slider.get_attribute("max")) + 1,
                    "value_changed": slider.input_value() != before["value"],
                    "src_changed": image.get_attribute("src") != before["src"],
                    "readout_changed": readout.text_content() != before["readout"],
                    "image_loaded": image.evaluate(IMAGE_LOADED_JS),
                }
            )


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


@pytest.mark.parametrize("page_name", PAGES)
def test_page_has_no_kernel_only_sliders(page_loads, page_name):
    load = page_loads(page_name)
    assert load.sliders == [], (
        f"{page_name} shows ipywidgets sliders {load.sliders}, which do nothing without a kernel. "
        "Build the figure with interp.explorers.Explorer, which gives the site a static version."
    )


@pytest.mark.parametrize("page_name", PAGES)
def test_page_explorer_sliders_change_figure(page_loads, page_name):
    load = page_loads(page_name)
    for move in load.explorer_moves:
        where = f"{page_name}, explorer {move['explorer']}, slider {move['slider']!r}"
        if move["positions"] < 2:
            continue
        assert move["value_changed"], f"{where}: the keyboard did not move the slider"
        assert move["src_changed"], f"{where}: moving the slider did not change the image's src"
        assert move["readout_changed"], f"{where}: moving the slider did not change the value shown next to it"
        assert move["image_loaded"], f"{where}: the new image did not load"

    movable = {move["explorer"] for move in load.explorer_moves if move["positions"] >= 2}
    assert len(movable) == load.explorer_count, (
        f"{page_name} has {load.explorer_count} explorers but only {len(movable)} with a slider that can move"
    )


def test_site_has_explorers(page_loads):
    counts = {page_name: page_loads(page_name).explorer_count for page_name in PAGES}
    assert counts.get(FIRST_CHAPTER, 0) > 0, f"{FIRST_CHAPTER} holds no explorer; explorers per page: {counts}"


@pytest.fixture(scope="session")
def student_site():
    if not (STUDENT_SITE / "index.html").is_file():
        pytest.fail(f"The student edition is missing: {STUDENT_SITE / 'index.html'} not found. Run `make book-student`.")
    return STUDENT_SITE


def test_full_site_has_solutions():
    # Without solutions in the full site, the student checks below could pass for the wrong reason.
    markup = read_markup(SITE / FIRST_CHAPTER)
    assert "solution" in markup.classes, f"{FIRST_CHAPTER} of the full site shows no solution"


@pytest.mark.parametrize("page_name", STUDENT_PAGES)
def test_student_page_has_no_solutions(student_site, page_name):
    path = student_site / page_name
    markup = read_markup(path)
    solution_classes = sorted(name for name in markup.classes if name.startswith("solution"))
    assert solution_classes == [], f"student edition {page_name} contains solution elements: {solution_classes}"
    assert "solution-content" not in markup.ids, f"student edition {page_name} contains a solution-content section"


@pytest.mark.parametrize("page_name", STUDENT_PAGES)
def test_student_page_offers_no_sources(student_site, page_name):
    markup = read_markup(student_site / page_name)
    source_links = [href for href in markup.hrefs if "_sources/" in href]
    assert source_links == [], f"student edition {page_name} links to sources, which hold the solutions: {source_links}"


def test_student_edition_has_no_sources_folder(student_site):
    sources = student_site / "_sources"
    assert not sources.exists(), f"{sources} exists, and the sources contain the solutions"


def test_student_edition_keeps_exercises(student_site):
    markup = read_markup(student_site / FIRST_CHAPTER)
    assert "exercise" in markup.classes, f"student edition {FIRST_CHAPTER} shows no exercise"


@pytest.mark.parametrize("page_name", STUDENT_PAGES)
def test_student_page_internal_links_resolve(student_site, page_name):
    page_url = (student_site / page_name).as_uri()
    missing = []
    for href in read_markup(student_site / page_name).hrefs:
        url = urlsplit(urljoin(page_url, href))
        if url.scheme != "file" or href.startswith("#") and not url.fragment:
            continue
        target = Path(unquote(url.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            missing.append(href)
            continue
        if url.fragment and target.suffix == ".html" and unquote(url.fragment) not in read_anchors(target):
            missing.append(href)
    assert missing == [], f"student edition {page_name} has links that do not resolve: {missing}"


def test_site_lists_every_toc_page():
    expected = ("intro.html", "course.html", FIRST_CHAPTER, "api.html", "status.html", "bibliography.html")
    missing = [page for page in expected if page not in PAGES]
    assert missing == [], f"pages missing from {SITE}: {missing}. Run `make book` first."


@pytest.mark.parametrize("page_name", [page for page in PAGES if page.startswith("chapters/")])
def test_chapter_page_offers_source_downloads(page_name):
    hrefs = read_markup(SITE / page_name).hrefs
    stem = Path(page_name).with_suffix("").as_posix()
    for suffix in (".md", ".ipynb"):
        expected = f"_sources/{stem}{suffix}"
        assert any(href.endswith(expected) for href in hrefs), f"{page_name} offers no download of {expected}"


@pytest.mark.parametrize("page_name", [page for page in PAGES if page.startswith("chapters/")])
def test_chapter_notebook_download_holds_the_chapter_code(page_name):
    import jupytext
    import nbformat

    stem = Path(page_name).with_suffix("").as_posix()
    downloaded = nbformat.read(SITE / "_sources" / f"{stem}.ipynb", as_version=4)
    source = jupytext.read(REPOSITORY / f"{stem}.md")
    downloaded_code = [cell.source for cell in downloaded.cells if cell.cell_type == "code"]
    source_code = [cell.source for cell in source.cells if cell.cell_type == "code"]
    assert downloaded_code, f"the notebook download of {page_name} has no code cells"
    assert downloaded_code == source_code, f"the notebook download of {page_name} differs from chapters/{stem}.md"


@pytest.mark.parametrize("page_name", [page for page in PAGES if page.startswith("chapters/")])
def test_chapter_page_has_exercises_with_solutions(page_name):
    page = (SITE / page_name).read_text(encoding="utf-8")
    exercises = len(re.findall(r'<div class="exercise[ "]', page))
    dropdown_solutions = len(re.findall(r'<div class="solution dropdown[ "]', page))
    assert exercises >= 3, f"{page_name} has {exercises} exercises; a chapter ends with at least three"
    assert dropdown_solutions == exercises, (
        f"{page_name} has {exercises} exercises but {dropdown_solutions} solutions in a dropdown"
    )
