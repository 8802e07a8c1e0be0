"""The ``jobs-config`` directive: the configuration reference, made from the code.

Every ``JOBS_*`` key, its default and what its validator allows come from
``flask_jobs.config``, and its meaning from ``flask_jobs.config_docs``, so the page
cannot drift from the code. The nodes are built here (not parsed from text), so the
directive works the same in a Markdown or a reStructuredText page.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from flask_jobs.config_docs import reference

#: Inline code in a description: `JOBS_EAGER`.
_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> list[nodes.Node]:
    """``text`` as text and literal nodes (its `...` spans are code)."""
    parts = _CODE.split(text)
    return [
        nodes.literal(part, part) if index % 2 else nodes.Text(part)
        for index, part in enumerate(parts)
        if part
    ]


def _item(label: str, *content: nodes.Node) -> nodes.list_item:
    return nodes.list_item("", nodes.paragraph("", "", nodes.strong(label, label), *content))


class JobsConfigDirective(SphinxDirective):
    """A section per setting: what it does, its default, and what is allowed."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        sections: list[nodes.Node] = []
        for setting in reference():
            anchor = setting.key.lower().replace("_", "-")
            section = nodes.section(ids=[anchor], names=[setting.key.lower()])
            section += nodes.title("", "", nodes.literal(setting.key, setting.key))
            section += nodes.paragraph("", "", *_inline(setting.description))
            default = repr(setting.default)
            details = nodes.bullet_list()
            details += _item("default: ", nodes.literal(default, default))
            details += _item("allowed: ", nodes.Text(setting.allowed))
            section += details
            sections.append(section)
        return sections


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("jobs-config", JobsConfigDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
