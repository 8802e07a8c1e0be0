"""The ``jobs-openapi`` directive: the dashboard's JSON API, from its OpenAPI document.

One row per operation (method, path, what it returns, its query parameters), read from
``flask_jobs.dashboard.openapi.openapi_document()`` at build time, so the page lists
exactly what the dashboard serves.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from flask import Flask
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from flask_jobs import Jobs
from flask_jobs.dashboard.openapi import openapi_document


def _document() -> dict[str, Any]:
    """The document as an app with the dashboard at its default prefix serves it."""
    app = Flask("flask_jobs_docs")
    app.config.update(TESTING=True, JOBS_REDIS_URL="redis://localhost:6379/0")
    Jobs(app)  # nothing connects to Redis until a job or a page needs it
    with app.test_request_context():
        return openapi_document()


def _cell(*content: nodes.Node) -> nodes.entry:
    return nodes.entry("", nodes.paragraph("", "", *content))


def _parameters(operation: dict[str, Any]) -> list[nodes.Node]:
    names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
    parts: list[nodes.Node] = []
    for index, name in enumerate(names):
        if index:
            parts.append(nodes.Text(", "))
        parts.append(nodes.literal(name, name))
    return parts or [nodes.Text("")]


class JobsOpenAPIDirective(SphinxDirective):
    """A table of every operation of the dashboard's JSON API."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        document = _document()
        prefix = document["servers"][0]["url"] if document.get("servers") else ""
        table = nodes.table()
        group = nodes.tgroup(cols=4)
        table += group
        for width in (8, 30, 45, 25):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        row = nodes.row()
        for title in ("method", "path", "returns", "query parameters"):
            row += _cell(nodes.Text(title))
        head += row
        group += head
        body = nodes.tbody()
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "delete", "patch"):
                    continue
                full = prefix + path
                row = nodes.row()
                row += _cell(nodes.literal(method.upper(), method.upper()))
                row += _cell(nodes.literal(full, full))
                row += _cell(nodes.Text(operation.get("summary", "")))
                row += _cell(*_parameters(operation))
                body += row
        group += body
        return [table]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("jobs-openapi", JobsOpenAPIDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
