"""Sphinx configuration of the flask-jobs documentation (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

import flask_jobs  # noqa: E402

project = "flask-jobs"
copyright = "the flask-jobs authors"
release = flask_jobs.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "pallets_sphinx_themes",
    "jobs_config",
    "jobs_openapi",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
# The pallets theme adds the click and jinja domains, which MyST's cross-references ask
# about every link; harmless, and not ours to fix.
suppress_warnings = ["myst.domains"]

html_theme = "flask"
html_title = f"flask-jobs {release}"
html_static_path: list[str] = []
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
html_show_sourcelink = False
