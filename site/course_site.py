"""The site's own Sphinx extension: JupyterLab's heading ids, and static explorers.

Heading ids: the notebooks link to their own headings the way JupyterLab names them (the heading's
text with spaces turned into dashes, e.g. `#1-·-The-tutorial's-run,-as-it-ran`); conf.py hands
`jupyterlab_heading_id` to MyST, so those links resolve on the site and the headings carry the
same ids. It lives here, not in conf.py, because Sphinx pickles its settings between builds.

Links in outputs: an HTML output that links to another notebook's .ipynb links to its page instead.

Explorers: the explorers (course_utils.widgets.GridExplorer) redraw a figure from Python when a
slider moves, which needs a live kernel. On the site each one becomes the figure it showed when the
notebook ran, the value of each control and a line saying where it is interactive, read from the
widget state that the run saved. No widget JavaScript is loaded, so nothing comes from a CDN.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

VIEW = re.compile(r'^<script type="application/vnd\.jupyter\.widget-view\+json">(.*)</script>$', re.S)
NOTE = (
    "An interactive explorer: in JupyterLab (<code>./course start</code>, Binder or Colab) its "
    "controls redraw the figure at once. Here it is as the notebook left it."
)


def jupyterlab_heading_id(text: str) -> str:
    return text.replace(" ", "-")  # as JupyterLab's createHeaderId does


def _model(state: dict[str, Any], reference: str) -> dict[str, Any] | None:
    entry = state.get(reference.removeprefix("IPY_MODEL_"))
    return entry if isinstance(entry, dict) else None


def _render(state: dict[str, Any], entry: dict[str, Any], parts: list[str]) -> None:
    values = entry.get("state", {})
    for child in values.get("children", []):  # boxes: their children in order
        child_entry = _model(state, child)
        if child_entry is not None:
            _render(state, child_entry, parts)
    description = html.escape(str(values.get("description", "")))
    if "_options_labels" in values and "index" in values:  # selection sliders and dropdowns
        labels = [str(label) for label in values["_options_labels"]]
        chosen = labels[values["index"]] if values["index"] is not None else "none"
        choices = ", ".join(html.escape(label) for label in labels)
        parts.append(f"<li>{description}: <strong>{html.escape(chosen)}</strong> (one of {choices})</li>")
    elif entry.get("model_name") == "ImageModel":
        for buffer in entry.get("buffers", []):
            if buffer.get("path") == ["value"] and buffer.get("encoding") == "base64":
                image_format = html.escape(str(values.get("format", "png")))
                parts.append(
                    f'<img class="static-explorer-figure" alt="the explorer\'s figure" '
                    f'src="data:image/{image_format};base64,{buffer["data"]}">'
                )
    elif description and "value" in values:
        parts.append(f"<li>{description}: <strong>{html.escape(str(values['value']))}</strong></li>")


def replace_widget_views(app: Sphinx, doctree: nodes.document) -> None:
    from myst_nb.sphinx_ import NbMetadataCollector

    js_files = NbMetadataCollector.get_js_files(app.env, app.env.docname)  # type: ignore[arg-type]
    # The saved state is read here and not embedded in the page: without widget JavaScript it
    # would only double the page's size.
    saved = js_files.pop("ipywidgets_state", None)
    state = json.loads(saved[1]["body"]).get("state", {}) if saved else {}
    for raw in list(doctree.findall(nodes.raw)):
        match = VIEW.match(raw.astext().strip())
        if not match:
            continue
        entry = _model(state, json.loads(match.group(1)).get("model_id", ""))
        parts: list[str] = []
        if entry is not None:
            _render(state, entry, parts)
        controls = "".join(part for part in parts if part.startswith("<li>"))
        figures = "".join(part for part in parts if part.startswith("<img"))
        body = f'<p class="static-explorer-note">{NOTE}</p>'
        if controls:
            body += f"<ul>{controls}</ul>"
        raw.replace_self(nodes.raw("", f'<div class="static-explorer">{body}{figures}</div>', format="html"))


# Links in a notebook's HTML output (course_utils.doctor's tables) name the notebook file, as
# JupyterLab opens it; on the site the same page is the .html beside this one.
NOTEBOOK_HREF = re.compile(r'href="(\d\d_\w+)\.ipynb(#[^"]*)?"')


def link_outputs_to_pages(app: Sphinx, doctree: nodes.document) -> None:
    for raw in list(doctree.findall(nodes.raw)):
        text = raw.astext()
        if "html" in raw.get("format", "") and NOTEBOOK_HREF.search(text):
            raw.replace_self(
                nodes.raw(
                    "", NOTEBOOK_HREF.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', text), format="html"
                )
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", replace_widget_views)
    app.connect("doctree-read", link_outputs_to_pages)
    return {"parallel_read_safe": True}
