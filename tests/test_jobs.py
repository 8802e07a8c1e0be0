"""Enqueue, run on a real burst worker, and read back: results, failures, retries, timeouts."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from flask import Flask
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

import jobs_app
from conftest import drain_history
from flask_jobs import FlaskJob, JobArgumentError, JobsConnectionError, Retry, UnknownJobError


@pytest.mark.parametrize("worker_class", ["default", "fork"])
def test_plain_job_runs_and_returns(app: Flask, ctx: None, work: Any, worker_class: str) -> None:
    job = jobs_app.add.enqueue(2, 3)
    assert isinstance(job, FlaskJob)
    assert job.get_status() == JobStatus.QUEUED
    assert work(worker_class)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value(refresh=True) == 5


@pytest.mark.parametrize("worker_class", ["default", "fork"])
def test_job_sees_app_config_and_db_session(
    app: Flask, ctx: None, work: Any, worker_class: str
) -> None:
    config_job = jobs_app.read_config.enqueue("GREETING")
    notes = [jobs_app.write_note.enqueue(f"note {i}") for i in range(3)]
    count = jobs_app.count_notes.options(depends_on=notes[-1]).enqueue()
    work(worker_class)
    assert config_job.return_value(refresh=True) == "hello from config"
    # each job had its own app context: `g` did not leak and every session committed
    assert [n.get_status() for n in notes] == [JobStatus.FINISHED] * 3
    assert count.return_value(refresh=True) == 3
    assert jobs_app.db.session.query(jobs_app.Note).count() == 3


def test_calling_the_wrapper_runs_in_process(ctx: None) -> None:
    assert jobs_app.add(1, 1) == 2
    assert jobs_app.add.__name__ == "add"
    assert jobs_app.add.path == "jobs_app:add"


def test_failed_job_lands_in_failed_registry_with_traceback(
    app: Flask, ctx: None, work: Any
) -> None:
    job = jobs_app.fail.enqueue("kaput")
    work()
    assert job.get_status() == JobStatus.FAILED
    assert job.id in FailedJobRegistry(queue=jobs_app.jobs.get_queue())
    result = job.latest_result()
    assert result is not None
    assert "Traceback" in result.exc_string
    assert "RuntimeError: kaput" in result.exc_string


def test_retry_with_exponential_backoff_succeeds_on_attempt_3(
    app: Flask, ctx: None, work: Any, redis_client: redis.Redis
) -> None:
    job = jobs_app.flaky.enqueue("flaky-counter", 3)
    work()  # attempt 1 fails; retry 1 is scheduled 1 s later
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.id in ScheduledJobRegistry(queue=jobs_app.jobs.get_queue())
    deadline = time.monotonic() + 20
    while job.get_status() != JobStatus.FINISHED and time.monotonic() < deadline:
        time.sleep(0.2)
        work()  # moves due retries to the queue and runs them
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value(refresh=True) == 3
    refreshed = jobs_app.jobs.fetch_job(job.id)
    assert refreshed.attempt == 3
    # delays of 1 s then 2 s (exponential, no jitter), at one-second resolution, as the
    # history recorded them (recorded times, not this test's clock)
    drain_history(app)
    attempts = jobs_app.jobs.history.get(job.id)
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    gap = attempts[2]["started_at"] - attempts[0]["ended_at"]
    assert gap.total_seconds() >= 2


def test_retry_policy_delays() -> None:
    exponential = Retry(5, delay=2, max_delay=10, jitter=False)
    assert [exponential.base_delay(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
    assert [Retry(3, backoff="fixed", delay=7).base_delay(n) for n in (1, 2, 3)] == [7, 7, 7]
    assert [Retry(3, backoff=[1, 5]).base_delay(n) for n in (1, 2, 3)] == [1, 5, 5]
    assert exponential.to_rq().intervals == [2, 4, 8, 10, 10]
    jittered = Retry.from_meta(Retry(5, delay=8).to_meta())
    assert all(4 <= jittered.delay_for(1) <= 8 for _ in range(50))
    with pytest.raises(ValueError, match="max"):
        Retry(0)
    with pytest.raises(ValueError, match="backoff"):
        Retry(2, backoff="linear")


def test_retry_only_for_listed_exceptions(app: Flask, ctx: None, work: Any) -> None:
    retried = jobs_app.fail_with.enqueue("connection")
    not_retried = jobs_app.fail_with.enqueue("value")
    work()
    # ConnectionError is retried (three retries, no delay), ValueError fails at once
    assert retried.get_status() == JobStatus.FAILED
    assert jobs_app.jobs.fetch_job(retried.id).attempt == 4
    assert not_retried.get_status() == JobStatus.FAILED
    assert jobs_app.jobs.fetch_job(not_retried.id).attempt == 1


def test_timeout_kills_a_sleeping_job(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.sleep_for.enqueue(10)
    work()
    assert job.get_status() == JobStatus.FAILED
    result = job.latest_result()
    assert result is not None
    assert "JobTimeoutException" in result.exc_string
    assert "maximum timeout value (1 seconds)" in result.exc_string  # 1 s, not the 10 s sleep


def test_enqueue_in_runs_when_due(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.add.enqueue_in(timedelta(seconds=2), 1, 2)
    assert job.get_status() == JobStatus.SCHEDULED
    work()
    assert job.get_status() == JobStatus.SCHEDULED
    time.sleep(2.2)
    work()
    assert job.get_status() == JobStatus.FINISHED


def test_enqueue_at_runs_when_due(app: Flask, ctx: None, work: Any) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=2)
    job = jobs_app.add.enqueue_at(when, 4, 4)
    work()
    assert job.get_status() == JobStatus.SCHEDULED
    time.sleep(2.2)
    work()
    assert job.return_value(refresh=True) == 8


def test_depends_on_waits_for_its_parent(app: Flask, ctx: None, work: Any) -> None:
    parent = jobs_app.add.options(queue="other").enqueue(1, 1)
    child = jobs_app.add.options(depends_on=parent).enqueue(2, 2)
    assert child.get_status() == JobStatus.DEFERRED
    work(queues=["default"])
    assert child.get_status() == JobStatus.DEFERRED
    work(queues=["other"])
    assert parent.get_status() == JobStatus.FINISHED
    work(queues=["default"])
    assert child.get_status() == JobStatus.FINISHED


def test_options_do_not_clash_with_function_kwargs(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.whoami.options(queue="high", job_id="my-id", timeout=30).enqueue(pause=0)
    assert job.id == "my-id"
    assert job.origin == "high"
    assert job.timeout == 30
    assert job.kwargs == {"pause": 0}
    with pytest.raises(TypeError, match="unexpected keyword argument 'nonsense'"):
        jobs_app.add.options(nonsense=1)  # type: ignore[call-arg]


def test_enqueue_by_import_path(app: Flask, ctx: None, work: Any) -> None:
    decorated = jobs_app.jobs.enqueue("jobs_app:add", 20, 22)
    plain = jobs_app.jobs.enqueue("jobs_app:plain_function", 21)
    work()
    assert decorated.return_value(refresh=True) == 42
    assert plain.return_value(refresh=True) == 42
    with pytest.raises(UnknownJobError, match="cannot import 'no_such_module:f'"):
        jobs_app.jobs.enqueue("no_such_module:f")
    with pytest.raises(UnknownJobError, match="has no attribute"):
        jobs_app.jobs.enqueue("jobs_app:no_such_function")


def test_json_argument_error_names_the_argument(app: Flask, ctx: None) -> None:
    queue = jobs_app.jobs.get_queue()
    with pytest.raises(JobArgumentError) as info:
        jobs_app.read_config.enqueue(datetime.now())  # type: ignore[arg-type]
    message = str(info.value)
    assert "positional argument 0" in message and "datetime.datetime" in message
    with pytest.raises(JobArgumentError, match=r"argument 'b' \(kwargs\['b'\]\[0\]\) is a set"):
        jobs_app.add.enqueue(1, b=[{1, 2}])  # type: ignore[arg-type]
    with pytest.raises(JobArgumentError, match="not a string"):
        jobs_app.add.enqueue({1: "x"}, 2)  # type: ignore[arg-type]
    assert queue.count == 0
    assert jobs_app.jobs.connection.dbsize() == 0


def test_pickle_serializer_is_an_opt_in(redis_url: str, redis_client: redis.Redis) -> None:
    from flask_jobs.worker import build_worker

    app = jobs_app.create_app({"JOBS_REDIS_URL": redis_url, "JOBS_SERIALIZER": "pickle"})
    with app.app_context():
        job = jobs_app.add.enqueue(timedelta(days=1), timedelta(days=2))  # type: ignore[arg-type]
        worker = build_worker(app, jobs_app.jobs.state(app))
        worker.work(burst=True, logging_level="WARNING")
        assert job.return_value(refresh=True) == timedelta(days=3)


def test_progress_is_stored_on_the_job(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.report_progress.enqueue()
    work()
    progress = jobs_app.jobs.fetch_job(job.id).meta["progress"]
    assert progress["fraction"] == 0.5
    assert progress["message"] == "half way"


def test_origin_is_recorded(app: Flask, ctx: None) -> None:
    assert jobs_app.add.enqueue(1, 2).meta["origin"] == "code"
    with app.test_request_context("/"):
        assert jobs_app.add.enqueue(1, 2).meta["origin"] == "view"


def test_eager_mode_runs_inline(redis_url: str) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": "redis://127.0.0.1:1/0",
            "JOBS_EAGER": True,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
        }
    )
    with app.app_context():
        jobs_app.db.create_all()
        job = jobs_app.write_note.enqueue("eager")  # no Redis behind that URL: nothing is stored
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == 1
        assert jobs_app.read_config.enqueue("GREETING").return_value() == "hello from config"
        with pytest.raises(RuntimeError, match="boom"):
            jobs_app.fail.enqueue("boom")
        with pytest.raises(JobArgumentError):
            jobs_app.read_config.enqueue(object())  # type: ignore[arg-type]
    app.config["JOBS_EAGER_PROPAGATE"] = False
    quiet = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": "redis://127.0.0.1:1/0",
            "JOBS_EAGER": True,
            "JOBS_EAGER_PROPAGATE": False,
        }
    )
    with quiet.app_context():
        assert jobs_app.fail.enqueue("boom").get_status() == JobStatus.FAILED


def test_dead_redis_is_a_clear_connection_error() -> None:
    app = jobs_app.create_app({"JOBS_REDIS_URL": "redis://:secret@127.0.0.1:1/0"})
    with app.app_context(), pytest.raises(JobsConnectionError) as info:
        jobs_app.add.enqueue(1, 2)
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in str(info.value)
    assert "secret" not in str(info.value)


def test_two_apps_in_one_process_do_not_interfere(
    redis_url: str, redis_client: redis.Redis
) -> None:
    other_url = redis_url.rsplit("/", 1)[0] + "/14" if redis_url.startswith("redis") else redis_url
    first = jobs_app.create_app({"JOBS_REDIS_URL": redis_url, "JOBS_QUEUES": ["a"]})
    second = jobs_app.create_app({"JOBS_REDIS_URL": other_url, "JOBS_QUEUES": ["b"]})
    with first.app_context():
        job_a = jobs_app.add.enqueue(1, 1)
    with second.app_context():
        jobs_app.jobs.connection.flushdb()
        job_b = jobs_app.add.enqueue(2, 2)
        assert jobs_app.jobs.get_queue().name == "b"
    assert job_a.origin == "a" and job_b.origin == "b"
    with first.app_context():
        assert [q.name for q in jobs_app.jobs.queues] == ["a"]
    with second.app_context():
        jobs_app.jobs.connection.flushdb()


def test_outside_app_context_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="application context"):
        jobs_app.add.enqueue(1, 2)


def test_unregistered_app_is_a_clear_error() -> None:
    app = Flask("bare")
    with app.app_context(), pytest.raises(RuntimeError, match="forget to call 'init_app'"):
        jobs_app.add.enqueue(1, 2)


@pytest.mark.parametrize("worker_class", ["default", "fork"])
def test_a_warm_stop_right_after_a_pop_runs_the_job_in_hand(
    app: Flask, ctx: None, redis_client: redis.Redis, worker_class: str
) -> None:
    """SIGTERM between taking a job off the queue and starting it: the job runs, then the
    worker stops (RQ's own shutdown would leave it in its intermediate list, never run)."""
    import os
    import signal

    from flask_jobs.worker import build_worker

    first = jobs_app.add.enqueue(1, 1)
    second = jobs_app.add.enqueue(2, 2)
    worker: Any = build_worker(app, jobs_app.jobs.state(app), worker_class=worker_class)
    queue_key = jobs_app.jobs.state(app).queue("default").key
    load = worker._load
    signalled: list[int] = []

    def load_then_signal(found: Any) -> Any:
        job = load(found)  # the job is in hand, not started
        if not signalled:
            signalled.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
        return job

    worker._load = load_then_signal
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert signalled
    assert first.get_status(refresh=True) == JobStatus.FINISHED
    assert second.get_status(refresh=True) == JobStatus.QUEUED
    assert redis_client.lrange(queue_key, 0, -1) == [second.id.encode()]
    assert redis_client.llen(queue_key + ":intermediate") == 0


def test_a_full_redis_is_a_clear_error_at_enqueue_and_stores_nothing(
    tmp_path: Any, database_url: str
) -> None:
    from flask_jobs.redis.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "full-redis", persist=False)
    server.start()
    try:
        app = jobs_app.create_app(
            {"JOBS_REDIS_URL": server.url, "SQLALCHEMY_DATABASE_URI": database_url}
        )
        client = redis.Redis.from_url(server.url)
        with app.app_context():
            kept = jobs_app.add.enqueue(1, 1)
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", client.info("memory")["used_memory"] + 100_000)
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                for i in range(10_000):
                    client.set(f"ballast:{i}", "x" * 1_000)
            keys_before = client.dbsize()
            with pytest.raises(JobsConnectionError, match=r"refused the job .*maxmemory"):
                jobs_app.add.enqueue(2, 2)
            assert client.dbsize() == keys_before  # nothing half-stored
            assert kept.get_status(refresh=True) == JobStatus.QUEUED
            client.close()
    finally:
        server.stop()


def test_workers_look_for_abandoned_jobs_every_minute(app: Flask, ctx: None) -> None:
    from flask_jobs.worker.maintenance import Maintenance

    chores = Maintenance([], None)  # type: ignore[arg-type]  # no chore runs
    chores.cleaned_at = time.monotonic() - 30
    assert not chores.cleaning_due
    chores.cleaned_at = time.monotonic() - 61
    assert chores.cleaning_due  # RQ's own default waits 10 minutes
