"""Every notebook, run in a real JupyterLab in a real (headless) Chromium, as a learner would.

nbval proves the kernels run; this proves what a learner sees: no error output, every widget
rendered, at least one figure per notebook, each picture tagged `figure:<name>` loaded (with a
screenshot of it alone), and in each interactive notebook one slider that,
moved with the keyboard, changes the figure it drives. Each notebook's tab is closed after it, as a
learner going 00 → 06 would, and its kernel must shut down with it (tools/jupyterlab_settings.py);
meanwhile the memory of the server and its kernels is sampled as Binder counts it (limit 2 GB) and
written to artifacts/browser/memory.json, where `tools/budget.py --readme` finds it.

It drives Debian's `chromium` (or $COURSE_CHROMIUM) through Playwright and never downloads a
browser. JupyterLab serves a temporary copy of notebooks/, so nothing is saved into the repo.
Screenshots go to artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jupyterlab_settings
import psutil
import pytest
from browser_lookup import launched_chromium

TOP = Path(__file__).parent.parent
NOTEBOOKS = sorted((TOP / "notebooks").glob("*.ipynb"))
SCREENSHOTS = TOP / "artifacts" / "browser"
CELL_BUDGET_SECONDS = 300  # whole-notebook time limit in the browser (the course budget is 60 s)
BINDER_MEMORY_LIMIT_GB = 2.0  # Binder restarts the server beyond it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_settings(settings_dir: Path) -> None:
    """No news or update toasts over the page, and no autosave."""
    overrides = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }
    for relative, values in overrides.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


class MemorySampler(threading.Thread):
    """Peak resident memory of the server plus every process it started (its kernels), sampled
    five times a second: what Binder counts against its limit."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.server = psutil.Process(pid)
        self.stopped = threading.Event()
        self.peak_bytes = 0
        self.kernels_at_peak = 0
        self.notebooks_closed: list[str] = []

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            total, kernels = 0, 0
            try:
                processes = [self.server, *self.server.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    total += process.memory_info().rss
                    kernels += "ipykernel_launcher" in " ".join(process.cmdline())
                except psutil.NoSuchProcess:
                    continue
            if total > self.peak_bytes:
                self.peak_bytes, self.kernels_at_peak = total, kernels


MEMORY: list[MemorySampler] = []  # the running server's sampler, for the tests below


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    overrides = jupyterlab_settings.overrides_path(Path(sys.prefix))
    installed = json.loads(overrides.read_text()) if overrides.exists() else {}
    for plugin, values in jupyterlab_settings.COURSE_SETTINGS.items():
        assert values.items() <= installed.get(plugin, {}).items(), (
            f"JupyterLab here would keep kernels running after their tab closes: {overrides} lacks "
            f"{plugin}: {values}. `./course test` installs it (tools/jupyterlab_settings.py)."
        )
    root = tmp_path_factory.mktemp("lab")
    for notebook in NOTEBOOKS:
        shutil.copy(notebook, root / notebook.name)
    settings = root / ".settings"
    write_settings(settings)
    port = free_port()
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"),
        COURSE_PROGRESS="0",
    )
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses to start as root without it
    log = open(root / "server.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError as error:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "JupyterLab did not start:\n" + (root / "server.log").read_text()[-3000:]
                    ) from error
                time.sleep(0.5)
        MEMORY[:] = [MemorySampler(server.pid)]
        MEMORY[0].start()
        yield url
    finally:
        if MEMORY:
            MEMORY[0].stopped.set()
        # Stop the server (and the kernels it started) by its process id.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched_chromium() as chromium:
        yield chromium


KERNEL_IDLE = "#jp-main-statusbar >> text=/Python 3 \\(ipykernel\\) \\| Idle/"

NOTEBOOK_STATE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = panel.content.model.cells;
    const state = {code: 0, executed: 0, errors: [], running: 0};
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== 'code') continue;
        state.code += 1;
        if (cell.executionCount) state.executed += 1;
        const outputs = cell.outputs;
        for (let j = 0; j < outputs.length; j++) {
            const output = outputs.get(j).toJSON();
            if (output.output_type === 'error') state.errors.push(`cell ${i}: ${output.ename}: ${output.evalue}`);
        }
    }
    state.running = document.querySelectorAll('.jp-InputArea-prompt').length === 0 ? 0 :
        Array.from(document.querySelectorAll('.jp-InputArea-prompt')).filter(p => p.textContent.includes('*')).length;
    return state;
}"""


# The cells tagged `figure:<name>` draw the pictures the course's argument rests on.
PICTURE_TAGS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    const tags = [];
    for (let i = 0; i < cells.length; i++) {
        for (const tag of (cells.get(i).getMetadata('tags') || [])) if (tag.startsWith('figure:')) tags.push(tag);
    }
    return tags;
}"""

SHOW_PICTURE = """async (tag) => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    const index = notebook.widgets.findIndex(w => (w.model.getMetadata('tags') || []).includes(tag));
    await notebook.scrollToItem(index, 'start');
    notebook.widgets[index].node.id = 'picture-' + tag.replace(':', '-');
}"""


CLOSE_TAB = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    panel.context.model.dirty = false;  // no "save changes?" dialog
    panel.close();
}"""


def picture_id(tag: str) -> str:
    return "picture-" + tag.replace(":", "-")


@pytest.mark.parametrize("notebook", [n.name for n in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(jupyterlab: str, browser: object, notebook: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    try:
        page.goto(f"{jupyterlab}/lab/tree/{notebook}?reset", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
        page.wait_for_selector(KERNEL_IDLE, timeout=120_000)  # the status bar, not the toolbar circle
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline = time.monotonic() + CELL_BUDGET_SECONDS
        while True:
            state = page.evaluate(NOTEBOOK_STATE)
            if state["errors"]:
                break
            if state["executed"] == state["code"] and state["running"] == 0 and page.is_visible(KERNEL_IDLE):
                break
            assert time.monotonic() < deadline, f"{notebook}: not finished after {CELL_BUDGET_SECONDS} s: {state}"
            time.sleep(1)
        page.wait_for_timeout(1500)  # let the last outputs and widget views render
        page.screenshot(path=str(SCREENSHOTS / f"{Path(notebook).stem}.png"), full_page=True)
        assert not state["errors"], f"{notebook}: error output: {state['errors']}"
        assert page.locator("text=Error displaying widget").count() == 0, f"{notebook}: a widget failed to render"
        figures = page.locator(".jp-OutputArea-output img").count()
        assert figures >= 1, f"{notebook}: no figure rendered"

        for tag in page.evaluate(PICTURE_TAGS):
            # JupyterLab renders only the cells near the viewport: scroll each picture in, then
            # check its image has loaded and keep a screenshot of that cell alone.
            page.evaluate(SHOW_PICTURE, tag)
            picture = page.locator(f"#{picture_id(tag)} .jp-OutputArea-output img").first
            picture.wait_for(timeout=20_000)
            loaded = picture.evaluate("img => img.complete && img.naturalWidth > 100 && img.naturalHeight > 100")
            assert loaded, f"{notebook}: the picture tagged {tag!r} did not render"
            shot = SCREENSHOTS / f"{Path(notebook).stem}-{tag.removeprefix('figure:')}.png"
            page.locator(f"#{picture_id(tag)}").screenshot(path=str(shot))

        sliders = page.locator(".jp-OutputArea-output .widget-slider")
        if sliders.count():
            image = page.locator(".jp-OutputArea-output .widget-image").first
            image.scroll_into_view_if_needed()
            before = image.get_attribute("src")
            handle = sliders.first.locator(".noUi-handle")
            at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            handle.focus()
            handle.press("ArrowLeft" if at_end else "ArrowRight")
            page.wait_for_function(
                "([selector, before]) => document.querySelector(selector).getAttribute('src') !== before",
                arg=[".jp-OutputArea-output .widget-image", before],
                timeout=20_000,
            )
            page.screenshot(path=str(SCREENSHOTS / f"{Path(notebook).stem}-slider-moved.png"), full_page=False)

        # Close the tab as a learner would (discarding the outputs): its kernel must go with it.
        page.evaluate(CLOSE_TAB)
        deadline = time.monotonic() + 20
        while running_kernels(jupyterlab):
            assert time.monotonic() < deadline, f"{notebook}: its kernel still runs 20 s after its tab closed"
            time.sleep(0.5)
        MEMORY[0].notebooks_closed.append(notebook)
    finally:
        page.close()


def running_kernels(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/kernels", timeout=10) as response:
        return len(json.load(response))


def test_memory_through_the_course_fits_binder(jupyterlab: str, browser: object) -> None:
    sampler = MEMORY[0]
    if sampler.notebooks_closed != [n.name for n in NOTEBOOKS]:
        pytest.skip("measured only when every notebook ran above, in order (run the whole file)")
    peak_gb = sampler.peak_bytes / 1e9
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}",
        "peak_gb": round(peak_gb, 2),
        "kernels_at_peak": sampler.kernels_at_peak,
        "notebooks": sampler.notebooks_closed,
    }
    (SCREENSHOTS / "memory.json").write_text(json.dumps(record, indent=1) + "\n")
    assert sampler.kernels_at_peak <= 1, f"{sampler.kernels_at_peak} kernels ran at once; expected one at a time"
    assert peak_gb < BINDER_MEMORY_LIMIT_GB, (
        f"measured {peak_gb:.2f} GB for the server and its kernels going 00 → 06, expected under "
        f"Binder's {BINDER_MEMORY_LIMIT_GB} GB"
    )
