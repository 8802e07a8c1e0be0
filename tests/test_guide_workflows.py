"""The "Workflows and limits" guide's examples, run as written against Redis and a worker."""

from __future__ import annotations

import re
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import jobs_app
from flask_jobs.jobs.limits import Rate
from flask_jobs.jobs.rate import job_rate

GUIDE = Path(__file__).parent.parent / "docs" / "workflows.md"
MODULE = "readme_workflows"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)


@pytest.fixture
def readme() -> Iterator[types.ModuleType]:
    """A module the examples run in, importable by the worker as the guide's tasks."""
    module = types.ModuleType(MODULE)
    module.__dict__["jobs"] = jobs_app.jobs
    sys.modules[MODULE] = module
    yield module
    del sys.modules[MODULE]


def run(block: str, module: types.ModuleType) -> None:
    exec(compile(textwrap.dedent(block), f"docs/workflows.md ({MODULE})", "exec"), module.__dict__)


def test_the_readme_shows_what_it_says(app: Flask, work: Any, readme: types.ModuleType) -> None:
    declare, enqueue, after, limits, soft = _blocks()
    text = GUIDE.read_text()
    with app.app_context():
        run(declare, readme)
        run(enqueue, readme)
        ns = readme.__dict__
        assert [s for s in ns["pages"].statuses()] == ["queued", "deferred", "deferred"]
    work()
    with app.app_context():
        run(after, readme)
        pages, thumbnails, summary = ns["pages"], ns["thumbnails"], ns["summary"]
        assert pages.status == "finished"
        assert pages.result() == "32 characters into pages"
        assert thumbnails.results() == [10, 20, 30]
        progress = thumbnails.progress()
        assert (progress.done, progress.failed, progress.total) == (3, 0, 3)
        assert summary.result() == "2 images, 90 KB"
        for shown in ('"32 characters into pages"', "[10, 20, 30]", '"2 images, 90 KB"',
                      "Progress(done=3, failed=0, total=3)"):  # fmt: skip
            assert shown in after, shown
        assert repr(progress) in after

        run(limits, readme)
        assert ns["again"].id == ns["first"].id
        statuses = [job.get_status() for job in ns["crawls"]]
        assert statuses == ["queued", "queued", "rate_limited"]
        fields = jobs_app.jobs.connection.hgetall(ns["call_partner_api"].enqueue(1).key)
        assert job_rate(fields) == (f"{MODULE}:call_partner_api", Rate(100, 60))
        assert ns["rebuild_index"].enqueue(tenant_id=7).rate_limit_key == "tenant:7"
        run(soft, readme)
        assert ns["export"].enqueue(1).meta["soft_timeout"] == 540
    work()
    with app.app_context():
        assert [job.get_status() for job in ns["crawls"]] == ["finished"] * 3
    assert "again.id == first.id" in text
