"""Every Python example of the README and the guide runs, so the docs cannot rot.

Each page's examples run in order in one namespace, inside an app context of the
test app, with the names a reader has at hand (``app``, ``jobs``, ``db``, a
``send_report`` job...). ``redis://localhost:6379/0`` in an example is the test's
Redis. An example that cannot run here says why, in a comment just above it:
``<!-- example: not run (needs sentry_sdk) -->``.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import jobs_app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Pages whose examples a test of their own runs, with a worker.
RUN_ELSEWHERE = {"workflows.md": "tests/test_guide_workflows.py"}
EXAMPLE = re.compile(
    r"(?:<!-- example: (?P<note>[^>]*?) -->\s*\n)?"
    r"^(?P<indent> *)```python\n(?P<code>.*?)^(?P=indent)```",
    re.S | re.M,
)
#: The names of the examples' tasks module: ``jobs.enqueue("yourapp.tasks:send_report")``.
TASKS = "yourapp.tasks"


def examples(page: Path) -> list[tuple[int, str | None, str]]:
    """``(line, note, code)`` of each Python example of ``page``."""
    text = page.read_text()
    found = []
    for match in EXAMPLE.finditer(text):
        indent = len(match.group("indent"))
        code = "\n".join(line[indent:] for line in match.group("code").splitlines())
        found.append((text.count("\n", 0, match.start("code")) + 1, match.group("note"), code))
    return found


@pytest.fixture
def tasks(app: Flask) -> Iterator[types.ModuleType]:
    """``yourapp.tasks``, with the jobs the examples name, declared on the test app's jobs."""
    package, module = types.ModuleType("yourapp"), types.ModuleType(TASKS)
    package.tasks = module  # type: ignore[attr-defined]
    sys.modules["yourapp"], sys.modules[TASKS] = package, module
    exec(
        "def send_report(user_id: int, fmt: str = 'pdf') -> str:\n"
        "    return f'report {user_id}.{fmt}'\n"
        "def send_receipt(order_id: int) -> None: ...\n"
        "def sync() -> None: ...\n",
        module.__dict__,
    )
    for name in ("send_report", "send_receipt", "sync"):
        setattr(module, name, jobs_app.jobs.job(getattr(module, name)))
    yield module
    del sys.modules["yourapp"], sys.modules[TASKS]


def namespace(app: Flask, tasks: types.ModuleType) -> dict[str, Any]:
    """What a reader of the docs has at hand."""
    names: dict[str, Any] = {"__name__": "docs_example"}
    exec(
        "from datetime import datetime, timedelta, timezone\n"
        "from flask import Flask, current_app, request, url_for\n"
        "from flask_sqlalchemy import SQLAlchemy\n"
        "from flask_jobs import *\n",
        names,
    )

    class Order:  # the model of the transaction examples
        def __init__(self, total: float) -> None:
            self.id, self.total = 1, total

    names.update(
        app=app,
        jobs=jobs_app.jobs,
        db=jobs_app.db,
        Order=Order,
        job_id="docs-example-job",
        send_report=tasks.send_report,
        send_receipt=tasks.send_receipt,
    )
    return names


@pytest.mark.parametrize(
    "page",
    [page for page in PAGES if examples(page) and page.name not in RUN_ELSEWHERE],
    ids=lambda page: page.name,
)
def test_the_examples_of_a_page_run(
    page: Path, app: Flask, tasks: types.ModuleType, redis_url: str
) -> None:
    found = examples(page)
    names = namespace(app, tasks)
    ran = 0
    with app.app_context():
        for line, note, code in found:
            if note is not None:
                assert re.fullmatch(r"not run \(.+\)", note), f"{page.name}:{line}: {note!r}"
                continue
            code = code.replace("redis://localhost:6379/0", redis_url)
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), names)
            except Exception as exc:
                raise AssertionError(f"the example at {page.name}:{line} fails: {exc!r}") from exc
            ran += 1
    assert ran or all(note for _, note, _ in found)
