"""The read-only site (`./course site`, built into artifacts/site/), opened page by page in Chromium.

A reader sees every notebook and page of the course, every figure loaded, math rendered and every
internal link landing on a page and heading that exist, with nothing fetched from outside the site:
the browser is offline here (every request off the local server is refused), as in a classroom
without a network. Outside CI the tests skip when the site is not built; under CI (which builds it
first) a missing site fails.
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser_lookup import in_ci, launched_chromium

TOP = Path(__file__).parent.parent
SITE = TOP / "artifacts" / "site"

# Text that should have become math: $...$ as MyST's dollarmath reads it, $$...$$, \( \) and \[ \].
RAW_MATH = re.compile(r"\$\$.+?\$\$|\$[^\s$](?:[^$]*[^\s$])?\$(?!\d)|\\\(.+?\\\)|\\\[.+?\\\]", re.S)

PAGE_STATE = """async () => {
    const images = Array.from(document.querySelectorAll('img'));
    for (const img of images) img.loading = 'eager';
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    const text = [];
    const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.parentElement.closest('pre, code, script, style, .math, mjx-container')) text.push(node.textContent);
    }
    return {
        images: images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth})),
        links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
        math: document.querySelectorAll('.math').length,
        mathUnrendered: Array.from(document.querySelectorAll('.math')).filter(m => !m.querySelector('mjx-container'))
            .map(m => m.textContent.slice(0, 60)),
        mathErrors: document.querySelectorAll('mjx-merror').length,
        widgetViews: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
        explorers: Array.from(document.querySelectorAll('.static-explorer')).map(e => e.querySelectorAll('img').length),
        text: text.join(' '),
    };
}"""


def require_built_site() -> Path:
    if not (SITE / "index.html").is_file():
        message = f"the site is not built ({SITE} has no index.html): run `./course site` first"
        if in_ci():
            pytest.fail(f"{message}; CI builds it before the tests (.ci/run).")
        pytest.skip(message)
    return SITE


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)


@functools.cache
def ids_of(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.ids)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # no line per request in the test log


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    """`folder` on a local HTTP server (127.0.0.1, a free port), in a thread; call shutdown() after."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def served_site() -> Iterator[tuple[str, Path]]:
    """The built site on a local HTTP server (127.0.0.1, a free port), stopped after the module."""
    site = require_built_site()
    server = serve(site)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", site
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[object]:
    with launched_chromium() as chromium:
        yield chromium


def open_offline(browser: object, base: str, url: str, outside: list[str], errors: list[str]) -> object:
    """A page at `url` where every request that does not go to `base` (or a data: URI) is refused."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]

    def route(route: object) -> None:
        request_url = route.request.url  # type: ignore[attr-defined]
        if request_url.startswith((base + "/", "data:")):
            route.continue_()  # type: ignore[attr-defined]
        else:
            outside.append(f"{route.request.resource_type} {request_url}")  # type: ignore[attr-defined]
            route.abort()  # type: ignore[attr-defined]

    page.route("**/*", route)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url, wait_until="load")
    return page


def math_problems(page: object, state: dict[str, object], name: str) -> list[str]:
    problems = []
    if state["math"]:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:  # MathJax typesets after the load event
            page.wait_for_function(  # type: ignore[attr-defined]
                "() => Array.from(document.querySelectorAll('.math')).every(m => m.querySelector('mjx-container'))",
                timeout=20_000,
            )
        except PlaywrightTimeout:
            pass  # reported below, with what stayed unrendered
        state = page.evaluate(PAGE_STATE)  # type: ignore[attr-defined]
        if state["mathUnrendered"]:
            problems.append(f"{name}: math not rendered by MathJax: {state['mathUnrendered'][:3]}")
        if state["mathErrors"]:
            problems.append(f"{name}: {state['mathErrors']} MathJax errors")
    raw = RAW_MATH.findall(str(state["text"]))
    if raw:
        problems.append(f"{name}: math left as raw text: {[r[:40] for r in raw[:3]]}")
    return problems


def link_problems(links: list[str], base: str, site: Path, name: str) -> list[str]:
    problems = []
    for link in links:
        if not link.startswith(base + "/"):
            continue  # another site (Binder, PyTorch's docs...): not checked offline
        parsed = urllib.parse.urlsplit(link)
        target = site / urllib.parse.unquote(parsed.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"{name}: link to a missing page: {link}")
            continue
        fragment = urllib.parse.unquote(parsed.fragment)
        if fragment and target.suffix == ".html" and fragment not in ids_of(target):
            problems.append(f"{name}: link to a heading or id that {target.relative_to(site)} lacks: #{fragment}")
    return problems


def test_every_notebook_and_page_is_published() -> None:
    site = require_built_site()
    expected = [f"notebooks/{path.stem}.html" for path in sorted((TOP / "notebooks").glob("*.ipynb"))]
    expected += [f"docs/{path.stem}.html" for path in sorted((TOP / "docs").glob("*.md"))]
    missing = [page for page in expected if not (site / page).is_file()]
    assert not missing, f"pages missing from the site: {missing}; rebuild it with `./course site`"
    mathjax = site / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.is_file(), f"{mathjax} is missing: math would need a CDN (see site/conf.py)"


def test_every_page_shows_its_figures_math_and_links(served_site: tuple[str, Path], offline_browser: object) -> None:
    base, site = served_site
    # Every page, not the theme's template fragments in _static/.
    pages = sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html") if "_static" not in path.parts)
    problems: list[str] = []
    figures_by_page: dict[str, int] = {}
    for name in pages:
        outside: list[str] = []
        errors: list[str] = []
        page = open_offline(offline_browser, base, f"{base}/{name}", outside, errors)
        try:
            state = page.evaluate(PAGE_STATE)  # type: ignore[attr-defined]
            problems += math_problems(page, state, name)
        finally:
            page.close()  # type: ignore[attr-defined]
        local = [image for image in state["images"] if image["src"].startswith((base + "/", "data:"))]
        problems += [f"{name}: figure did not load: {image['src'][:100]}" for image in local if image["width"] == 0]
        figures_by_page[name] = sum(1 for image in local if image["width"] > 0)
        problems += link_problems(state["links"], base, site, name)
        problems += [f"{name}: JavaScript error: {error}" for error in errors]
        # Pictures on other sites (badges) may fail offline; scripts, styles and fonts must not be needed.
        needed = [request for request in outside if not request.startswith("image ")]
        problems += [f"{name}: fetched from outside the site: {request}" for request in needed]
        if state["widgetViews"]:
            problems.append(f"{name}: {state['widgetViews']} widget(s) left without their static figure")
        problems += [f"{name}: an explorer shows no figure" for count in state["explorers"] if count == 0]
    notebook_pages = [name for name in pages if name.startswith("notebooks/")]
    assert notebook_pages, f"no notebook pages in {site}"
    problems += [f"{name}: no figure on the page" for name in notebook_pages if figures_by_page[name] == 0]
    assert not problems, f"{len(problems)} problem(s) on the site:\n" + "\n".join(problems)


def test_math_renders_offline(tmp_path: Path, offline_browser: object) -> None:
    """The site's set-up renders $…$, $$…$$ and amsmath with the MathJax it ships, with no network.

    Built from a one-page source with site/conf.py, so that it holds whether or not today's
    notebooks use math.
    """
    try:
        import myst_nb  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError:
        message = "the site's packages are not installed: run `./course site` (requirements-site.txt)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    source = tmp_path / "source"
    source.mkdir()
    (source / "README.md").write_text("")  # site/conf.py excludes the staged README
    (source / "index.md").write_text(
        "# Math\n\nInline $\\sigma^2 = \\frac{1}{n}\\sum_i (x_i - \\mu)^2$ and a display:\n\n"
        "$$\\hat{x} = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}$$\n\n"
        "\\begin{align}\ny &= \\gamma \\hat{x} + \\beta\n\\end{align}\n",
        encoding="utf-8",
    )
    output = tmp_path / "html"
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", "-c", str(TOP / "site"), str(source), str(output)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"sphinx-build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    server = serve(output)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    outside: list[str] = []
    errors: list[str] = []
    try:
        page = open_offline(offline_browser, base, f"{base}/index.html", outside, errors)
        try:
            state = page.evaluate(PAGE_STATE)  # type: ignore[attr-defined]
            assert state["math"] == 3, f"expected 3 math elements on the page, found {state['math']}"
            problems = math_problems(page, state, "index.html")
            rendered = page.locator("mjx-container").count()  # type: ignore[attr-defined]
        finally:
            page.close()  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
    assert not outside, f"the math page fetched from outside the site: {outside}"
    assert not errors, f"JavaScript errors: {errors}"
    assert not problems, "\n".join(problems)
    assert rendered == 3, f"MathJax rendered {rendered} of 3 formulas"
