"""Sphinx configuration of the course's read-only site (built by `./course site`, tools/build_site.py).

The build runs in a staging folder that tools/build_site.py fills with index.md (from this folder),
README.md, notebooks/ and docs/; every notebook is executed afresh, so the site shows what the
committed notebooks produce today. Everything it needs comes from PyPI (requirements-site.txt) and
nothing is fetched at build time or when a page is read: MathJax ships in the site, and no widget
JavaScript is loaded from a CDN.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the site's own extension, course_site.py

project = "Why normalize?"
author = "the course's authors"
copyright = "the course's authors; see LICENSE"

extensions = [
    "myst_nb",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static/ and used instead of the CDN
    "course_site",
]

root_doc = "index"
# README.md is staged only to be included by index.md; it is not a page of its own.
exclude_patterns = ["README.md", "_build", "**.ipynb_checkpoints"]

# Every notebook runs at build time; an error in any cell fails the build (course rule: a notebook
# that fails is never published with stale or missing outputs).
nb_execution_mode = "force"
nb_execution_timeout = 300  # seconds per cell; the course budget is 60 s per notebook
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# The explorers need a live kernel; course_site.py shows their figure instead. Loading
# ipywidgets' JavaScript from a CDN would break the offline promise for no interactivity.
nb_ipywidgets_js: dict[str, dict[str, str]] = {}

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
# The notebooks link to their own headings the way JupyterLab names them (the heading's text
# with spaces turned into dashes, e.g. `#1-·-The-tutorial's-run,-as-it-ran`). The same slugs
# here make those links resolve on the site, and become the headings' HTML ids too.
myst_heading_anchors = 6
myst_heading_slug_func = "course_site.jupyterlab_heading_id"  # a name: Sphinx caches settings

html_theme = "sphinx_book_theme"
html_title = "Why normalize?"
html_theme_options = {
    "use_download_button": True,  # the .ipynb as executed, and the page's source
    "use_fullscreen_button": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_last_updated_fmt = None
html_show_sourcelink = False  # the download button offers each page's source (the .ipynb to run)
# No analytics, no fonts or scripts from elsewhere: the site is read offline or projected in a room.
html_baseurl = ""

# A broken internal link or a missing figure is a warning; the build runs with -W.
nitpicky = False  # no API reference here: nitpicky only concerns Python cross-references
suppress_warnings: list[str] = []
