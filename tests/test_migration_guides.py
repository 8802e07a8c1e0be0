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


def _example(name: str) -> Iterator[ModuleType]:
    """The example module ``name`` of docs/examples, imported as the guide's reader would."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


def _burst_worker(app: str, env: dict[str, str]) -> None:
    """``flask --app <app> jobs worker --burst``, run where the guide runs it."""
    subprocess.run(
        flask_command("--app", app, "jobs", "worker", "--burst"),
        env=env,
        cwd=EXAMPLES,
        capture_output=True,
        timeout=120,
        check=True,
    )


@pytest.fixture
def from_flask_rq2(example_env: dict[str, str]) -> Iterator[ModuleType]:
    yield from _example("from_flask_rq2")


def test_the_flask_rq2_example_runs_on_a_worker(
    from_flask_rq2: ModuleType, example_env: dict[str, str], redis_client: redis.Redis
) -> None:
    app = from_flask_rq2.create_app()
    ids = app.test_client().post("/reports/7").get_json()

    _burst_worker("from_flask_rq2:create_app", example_env)
    now = Job.fetch(ids["now"], connection=redis_client, serializer=JSONSerializer)
    assert now.origin == "reports"
    assert now.return_value() == "report 7 for Example Ltd"
    later = Job.fetch(ids["later"], connection=redis_client, serializer=JSONSerializer)
    assert later.get_status() == "scheduled"
    with app.app_context():
        names = [row["name"] for row in from_flask_rq2.jobs.schedules.list()]
    assert names == ["nightly-cleanup"]


@pytest.fixture
def from_celery(example_env: dict[str, str]) -> Iterator[ModuleType]:
    yield from _example("from_celery")


def test_the_celery_example_runs_on_a_worker(
    from_celery: ModuleType, example_env: dict[str, str], redis_client: redis.Redis
) -> None:
    app = from_celery.create_app()
    job_id = app.test_client().post("/orders/12").get_json()["job"]

    _burst_worker("from_celery:create_app", example_env)
    job = Job.fetch(job_id, connection=redis_client, serializer=JSONSerializer)
    assert job.origin == "mail"
    assert job.return_value() == "receipt 12 from shop@example.com to ada@example.com"
    with app.app_context():
        (schedule,) = from_celery.jobs.schedules.list()
    assert schedule["name"] == "purge-sessions"
    # the beat entry's job runs as written
    with app.app_context():
        run_id = from_celery.jobs.schedules.run("purge-sessions")
    _burst_worker("from_celery:create_app", example_env)
    with app.app_context():
        (schedule,) = from_celery.jobs.schedules.list()
        assert schedule["last_job_id"] == run_id
        assert from_celery.jobs.fetch_job(run_id).return_value() == 30
