"""Drill-down: every count, queue, function and origin on the pages links to the filtered
list or to its page."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

import jobs_app
from conftest import csrf, drain_history, text


def _links(page: str) -> set[str]:
    return {href.replace("&amp;", "&") for href in re.findall(r'href="([^"]+)"', page)}


def test_counts_names_and_origins_link_to_lists(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    failed = jobs_app.fail.options(origin="nightly-import").enqueue("boom")
    jobs_app.add.options(queue="other").enqueue(1, 2)
    work(queues=["default", "other"])
    drain_history(app)
    overview = _links(text(client.get("/jobs/")))
    assert {"/jobs/running", "/jobs/retrying", "/jobs/scheduled", "/jobs/failed",
            "/jobs/workers", "/jobs/queues"} <= overview  # fmt: skip
    assert {"/jobs/jobs?queue=other", "/jobs/running?queue=other", "/jobs/failed?queue=default",
            "/jobs/jobs?status=finished&queue=other"} <= overview  # fmt: skip
    queues = _links(text(client.get("/jobs/queues")))
    assert {"/jobs/queues/default", "/jobs/jobs?status=queued&queue=default",
            "/jobs/failed?queue=default", "/jobs/scheduled?queue=default",
            "/jobs/running?queue=default", "/jobs/workers"} <= queues  # fmt: skip
    # a queue's page: its charts, and its jobs
    assert "/jobs/jobs?queue=default" in _links(text(client.get("/jobs/queues/default")))
    failures = _links(text(client.get("/jobs/failures?window=1h")))
    assert "/jobs/jobs?function=jobs_app.fail&text=RuntimeError&attempts=all" in failures
    listed = _links(text(client.get("/jobs/jobs")))
    assert {"/jobs/jobs?function=jobs_app.fail", "/jobs/jobs?queue=other",
            "/jobs/jobs?origin=nightly-import", f"/jobs/job/{failed.id}"} <= listed  # fmt: skip
    detail = _links(text(client.get(f"/jobs/job/{failed.id}")))
    assert {"/jobs/jobs?function=jobs_app.fail", "/jobs/jobs?queue=default",
            "/jobs/jobs?origin=nightly-import"} <= detail  # fmt: skip
    assert any(link.startswith("/jobs/workers#worker-") for link in detail)
    client.post("/jobs/queues/other/pause", data={"csrf_token": csrf(client)})
    client.post(f"/jobs/job/{failed.id}/requeue", data={"csrf_token": csrf(client)})
    audit = _links(text(client.get("/jobs/audit")))
    assert {"/jobs/jobs?queue=other", f"/jobs/job/{failed.id}"} <= audit
    # a filtered list a link leads to is a page that answers
    for link in sorted(overview | queues | failures | listed | detail | audit):
        if link.startswith("/jobs/") and "#" not in link and not link.startswith("/jobs/static"):
            assert client.get(link).status_code == 200, link
