"""The worked examples of the migration guides run: a worker runs their jobs in the app."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from conftest import flask_command

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.fixture
def example_env(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment the guides tell a reader to set, pointed at the test's Redis."""
    settings = {
        "FLASK_JOBS_REDIS_URL": redis_url,
        "FLASK_JOBS_HISTORY_DATABASE_URI": f"sqlite:///{tmp_path / 'history.db'}",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return {
        **os.environ,
        **settings,
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.fixture
def from_flask_rq2(example_env: dict[str, str]) -> Iterator[ModuleType]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("from_flask_rq2")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_the_flask_rq2_example_runs_on_a_worker(
    from_flask_rq2: ModuleType, example_env: dict[str, str], redis_client: redis.Redis
) -> None:
    app = from_flask_rq2.create_app()
    ids = app.test_client().post("/reports/7").get_json()

    subprocess.run(
        flask_command("--app", "from_flask_rq2:create_app", "jobs", "worker", "--burst"),
        env=example_env,
        cwd=EXAMPLES,
        capture_output=True,
        timeout=120,
        check=True,
    )
    now = Job.fetch(ids["now"], connection=redis_client, serializer=JSONSerializer)
    assert now.origin == "reports"
    assert now.return_value() == "report 7 for Example Ltd"
    later = Job.fetch(ids["later"], connection=redis_client, serializer=JSONSerializer)
    assert later.get_status() == "scheduled"
    with app.app_context():
        names = [row["name"] for row in from_flask_rq2.jobs.schedules.list()]
    assert names == ["nightly-cleanup"]
