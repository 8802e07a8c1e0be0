"""Scenario 6, part 2: bad config, unknown job paths, oversized arguments, malformed jobs."""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rq.job import JobStatus

import jobs_app
from conftest import drain_history, flask_command
from flask_jobs import ConfigurationError, JobArgumentError
from flask_jobs.config import DEFAULTS
from flask_jobs.worker import WORKER_CLASSES
from reliability import tasks
from reliability.conftest import report, scaled

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.sampled_from(["", " ", "-1", "0", "1e9", "redis://", "unix://", "/", "30x", "🙂", "None"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)  # fmt: skip
schedule_entry = st.dictionaries(
    st.sampled_from(
        ["job", "cron", "every", "at", "args", "kwargs", "queue", "timezone", "jitter",
         "enabled", "misfire_grace", "coalesce", "start", "end", "bogus"]
    ),
    garbage | st.sampled_from(["jobs_app:add", "nope:nothing", "* * * * *", "61 * * * *", "5s"]),
    max_size=5,
)  # fmt: skip


def _init(config: dict[str, Any]) -> None:
    app = Flask("config_fuzz")
    app.config.update(TESTING=True, JOBS_REDIS_URL="redis://127.0.0.1:1/0")
    app.config.update(config)
    jobs_app.Jobs().init_app(app)


def test_every_bad_jobs_setting_is_a_configuration_error() -> None:
    """Any value of any ``JOBS_*`` key is accepted or refused with ConfigurationError."""
    tried = {"ok": 0, "refused": 0}

    @settings(
        max_examples=scaled(5_000, 600),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        key=st.sampled_from(sorted(DEFAULTS)),
        value=garbage,
        schedule=st.dictionaries(st.text(max_size=8), schedule_entry | garbage, max_size=2),
        use_schedule=st.booleans(),
    )
    def one(key: str, value: Any, schedule: Any, use_schedule: bool) -> None:
        config = {"JOBS_SCHEDULE": schedule} if use_schedule else {key: value}
        try:
            _init(config)
        except ConfigurationError as exc:
            assert str(exc), config
            tried["refused"] += 1
        else:
            tried["ok"] += 1

    one()
    report(
        f"config fuzz: {sum(tried.values())} random JOBS_* / JOBS_SCHEDULE values: "
        f"{tried['refused']} refused with ConfigurationError, {tried['ok']} valid, 0 other errors"
    )


def _run_worker(env: dict[str, str], kind: str = "fork") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        flask_command("jobs", "worker", "--burst", "--worker-class", kind),
        env=env,
        timeout=120,
        capture_output=True,
        text=True,
        check=False,
    )


@SQLITE
def test_unknown_job_path_fails_the_job_with_cannot_import(
    app: Flask, ctx: None, rel_env: Any
) -> None:
    queue = jobs_app.jobs.get_queue()
    missing_module = queue.enqueue_call("no_such_module.anything")
    missing_function = queue.enqueue_call("reliability.tasks.no_such_function")
    good = tasks.nap.enqueue(0)
    done = _run_worker(rel_env())
    assert done.returncode == 0, done.stderr
    assert good.get_status() == JobStatus.FINISHED
    drain_history(app)
    for job in (missing_module, missing_function):
        assert job.get_status() == JobStatus.FAILED
        row = jobs_app.jobs.history.get(job.id)[-1]
        assert row["status"] == "failed"
        assert "cannot import" in row["exc_message"], row["exc_message"]


@SQLITE
def test_oversized_arguments_are_refused_at_enqueue(app: Flask, ctx: None) -> None:
    conn = jobs_app.jobs.connection
    with pytest.raises(JobArgumentError, match=r"argument 'value'.*too large"):
        tasks.echo_back.enqueue(value="x" * (17 * 1024 * 1024))
    with pytest.raises(JobArgumentError, match=r"positional argument 0.*too large"):
        tasks.echo_back.enqueue(["y" * 1024] * 20_000)  # type: ignore[arg-type]
    assert conn.llen("rq:queue:default") == 0  # nothing enqueued
    assert tasks.echo_back.enqueue("x" * 1024 * 1024).get_status() == JobStatus.QUEUED


#: Job hashes no enqueue would write: each must fail its job, never the worker.
MALFORMED: dict[str, dict[str, Any]] = {
    "not-zlib": {"data": b"\x00garbage"},
    "not-json": {"data": zlib.compress(b"{not json")},
    "wrong-shape": {"data": zlib.compress(b"[1, 2]")},
    "bad-args": {"data": zlib.compress(json.dumps(["jobs_app.add", None, "nope", {}]).encode())},
    "bad-dates": {"data": zlib.compress(json.dumps(["jobs_app.add", None, [1, 2], {}]).encode()),
                  "created_at": "yesterday", "enqueued_at": "\xff"},
    "bad-timeout": {"data": zlib.compress(json.dumps(["jobs_app.add", None, [1, 2], {}]).encode()),
                    "timeout": "soon"},
}  # fmt: skip


def plant(conn: Any, job_id: str, fields: dict[str, Any], queue: str = "default") -> None:
    """Write a job hash straight into Redis and queue it, as a broken client might."""
    conn.hset(f"rq:job:{job_id}", mapping={"status": "queued", "origin": queue, **fields})
    conn.sadd("rq:queues", f"rq:queue:{queue}")
    conn.rpush(f"rq:queue:{queue}", job_id)


@SQLITE
@pytest.mark.parametrize("kind", sorted(WORKER_CLASSES))
def test_malformed_job_hashes_fail_their_job_and_the_worker_keeps_running(
    app: Flask, ctx: None, rel_env: Any, kind: str
) -> None:
    conn = jobs_app.jobs.connection
    before = tasks.nap.enqueue(0)
    for name, fields in MALFORMED.items():
        plant(conn, f"malformed-{name}", fields)
    # Readable enough to run: a meta RQ cannot decode; no data at all (RQ skips it as no job).
    plant(conn, "odd-meta", {"meta": b"\x00\x01", "data": MALFORMED["bad-timeout"]["data"]})
    plant(conn, "no-data", {})
    after = tasks.nap.enqueue(0)
    done = _run_worker(rel_env(), kind)
    assert done.returncode == 0, done.stderr
    assert before.get_status() == JobStatus.FINISHED
    assert conn.llen("rq:queue:default") == 0, done.stderr[-3000:]
    assert after.get_status() == JobStatus.FINISHED  # the worker kept going
    statuses = {
        name: (conn.hget(f"rq:job:malformed-{name}", "status") or b"").decode()
        for name in MALFORMED
    }
    failed = set(j.decode() for j in conn.zrange("rq:failed:default", 0, -1))
    not_failed = {
        name: status
        for name, status in statuses.items()
        if status != "failed" or f"malformed-{name}" not in failed
    }
    report(
        f"malformed job hashes ({kind} worker): {len(MALFORMED)} planted; "
        f"{len(MALFORMED) - len(not_failed)}/{len(MALFORMED)} marked failed, worker kept running"
    )
    assert not not_failed, (not_failed, done.stderr[-3000:])


class Boom:
    """A pickle that leaves a mark when unpickled."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> Any:
        return (Path.touch, (self.mark,))


@SQLITE
def test_planted_pickle_is_never_unpickled_with_the_json_serializer(
    app: Flask, ctx: None, rel_env: Any, tmp_path: Path, client: Any
) -> None:
    import pickle

    conn = jobs_app.jobs.connection
    mark = tmp_path / "unpickled"
    payload = pickle.dumps(("jobs_app.add", None, (Boom(mark),), {}))
    plant(conn, "pickled-data", {"data": zlib.compress(payload)})
    plant(conn, "pickled-meta", {
        "data": zlib.compress(json.dumps(["jobs_app.add", None, [1, 2], {}]).encode()),
        "meta": pickle.dumps(Boom(mark)),
    })  # fmt: skip
    after = tasks.nap.enqueue(0)
    done = _run_worker(rel_env())
    assert done.returncode == 0, done.stderr
    assert after.get_status() == JobStatus.FINISHED
    for job_id in ("pickled-data", "pickled-meta"):
        for url in (f"/jobs/job/{job_id}", f"/jobs/api/jobs/{job_id}", "/jobs/jobs", "/jobs/"):
            assert client.get(url).status_code < 500
    assert not mark.exists()
    assert conn.hget("rq:job:pickled-data", "status") == b"failed"
    # Its data is JSON, so it may run; its pickled meta is dropped, never loaded.
    assert conn.hget("rq:job:pickled-meta", "status") in (b"finished", b"failed")
