"""The fail script (flask_jobs/worker/fail.lua): each outcome's writes in Redis, read back
as RQ reads them, and a call sent twice (its reply lost) or after a script flush written
once."""

from __future__ import annotations

import sys
import threading
import zlib
from base64 import b64decode
from typing import Any

import pytest
import redis
from flask import Flask
from rq.job import JobStatus
from rq.results import Result
from rq.utils import current_timestamp, now

import jobs_app
from flask_jobs.history.events import forget_traceback, formatted_traceback
from flask_jobs.jobs.flask_job import FlaskJob
from flask_jobs.keys import (
    RQ_QUEUES_KEY,
    execution_key,
    executions_key,
    failed_key,
    job_key,
    queue_key,
    results_key,
    scheduled_key,
    started_key,
    worker_executions_key,
    worker_key,
)
from flask_jobs.worker.build import build_worker
from flask_jobs.worker.execution import start
from flask_jobs.worker.failure import Failure, Run, failure
from flask_jobs.worker.loop import JobsWorker

EXC = "Traceback (most recent call last):\nValueError: kaput"


def _worker(app: Flask) -> JobsWorker:
    worker = build_worker(app, jobs_app.jobs.state(app), name="fail-test")
    assert isinstance(worker, JobsWorker)
    worker.connection.hset(worker_key(worker.name), "name", worker.name)
    return worker


def _running(app: Flask, worker: JobsWorker) -> tuple[FlaskJob, Run]:
    """The next job claimed and started (its start script settled), then ended."""
    found = worker.claim()
    assert isinstance(found, tuple)
    _, job_id, fields = found
    job = FlaskJob.claimed(job_id, fields, worker.connection, worker.serializer)
    with app.app_context():
        run = start(worker, job)
    worker.scripts.channel.settle()
    job.ended_at = now()
    return job, run


def _fail(worker: JobsWorker, job: FlaskJob, run: Run | None, **options: Any) -> Failure:
    queue = worker.queue(job.origin)
    written = failure(job, queue, run, worker.name, EXC, worker.stream, **options)
    assert worker.fail(written) == 1
    return written


def _run_cleaned(client: redis.Redis, worker: JobsWorker, run: Run) -> None:
    assert not client.exists(execution_key(run.job_id, run.execution_id))
    assert client.zscore(started_key(run.queue), run.composite) is None
    assert client.zscore(executions_key(run.job_id), run.execution_id) is None
    assert not client.sismember(worker_executions_key(worker.name), run.composite)


def _count(client: redis.Redis, worker: JobsWorker) -> int:
    return int(client.hget(worker_key(worker.name), "failed_job_count") or 0)


def test_a_failure_is_rqs_failed_job(app: Flask, ctx: None, redis_client: redis.Redis) -> None:
    job_id = jobs_app.fail.enqueue("kaput").id
    worker = _worker(app)
    job, run = _running(app, worker)
    assert not _fail(worker, job, run).retried
    fetched = FlaskJob.fetch(job_id, connection=redis_client)
    assert fetched.get_status() == JobStatus.FAILED
    assert fetched.ended_at is not None
    ttl = jobs_app.jobs.state(app).config.failure_ttl
    score = redis_client.zscore(failed_key("default"), job_id)
    assert score is not None and abs(score - (current_timestamp() + ttl)) <= 2
    assert 0 < redis_client.ttl(job_key(job_id)) <= ttl
    assert 0 < redis_client.ttl(results_key(job_id)) <= ttl
    result = fetched.latest_result()
    assert result is not None and result.type == Result.Type.FAILED
    assert result.exc_string == EXC and result.worker_name == worker.name
    assert result.execution_id == run.execution_id
    assert redis_client.xlen(results_key(job_id)) == 1
    entry = redis_client.xrange(results_key(job_id))[0][1]
    assert zlib.decompress(b64decode(entry[b"exc_string"])).decode() == EXC
    _run_cleaned(redis_client, worker, run)
    assert _count(redis_client, worker) == 1
    assert float(redis_client.hget(worker_key(worker.name), "total_working_time") or 0) > 0


def test_a_stopped_run_is_rqs_stopped_job(app: Flask, ctx: None, redis_client: redis.Redis) -> None:
    job_id = jobs_app.fail.enqueue("kaput").id
    worker = _worker(app)
    job, run = _running(app, worker)
    _fail(worker, job, run, stopped=True)
    assert FlaskJob.fetch(job_id, connection=redis_client).get_status() == JobStatus.STOPPED
    assert redis_client.zscore(failed_key("default"), job_id) is not None
    _run_cleaned(redis_client, worker, run)


def test_a_retry_at_once_goes_to_the_back_of_its_queue(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    job_id = jobs_app.fail_with.enqueue("connection").id
    worker = _worker(app)
    job, run = _running(app, worker)
    other = jobs_app.add.enqueue(1, 1).id
    job._jobs_exc_type = ConnectionError  # the retry policy retries ConnectionError only
    assert _fail(worker, job, run).retried
    assert redis_client.lrange(queue_key("default"), 0, -1) == [other.encode(), job_id.encode()]
    fetched = FlaskJob.fetch(job_id, connection=redis_client)
    assert fetched.get_status() == JobStatus.QUEUED
    assert fetched.retries_left == 2 and fetched.enqueued_at is not None
    assert fetched.latest_result() is None  # RQ writes no result for a retried run
    assert redis_client.zscore(failed_key("default"), job_id) is None
    _run_cleaned(redis_client, worker, run)
    assert _count(redis_client, worker) == 1


def test_a_retry_with_a_delay_waits_in_the_scheduled_registry(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    job_id = jobs_app.flaky.enqueue("attempts", 9).id  # exponential backoff from 1 s
    worker = _worker(app)
    job, run = _running(app, worker)
    job._jobs_exc_type = ConnectionError
    assert _fail(worker, job, run).retried
    fetched = FlaskJob.fetch(job_id, connection=redis_client)
    assert fetched.get_status() == JobStatus.SCHEDULED and fetched.retries_left == 2
    score = redis_client.zscore(scheduled_key("default"), job_id)
    assert score is not None and 0 <= score - current_timestamp() <= 2
    assert redis_client.sismember(RQ_QUEUES_KEY, queue_key("default"))
    assert redis_client.llen(queue_key("default")) == 0
    _run_cleaned(redis_client, worker, run)


@pytest.mark.parametrize("retry", [False, True], ids=["failed", "retried"])
def test_a_call_whose_reply_was_lost_is_written_once(
    app: Flask, ctx: None, redis_client: redis.Redis, retry: bool
) -> None:
    job_id = (jobs_app.fail_with.enqueue("connection") if retry else jobs_app.fail.enqueue("x")).id
    worker = _worker(app)
    job, run = _running(app, worker)
    job._jobs_exc_type = ConnectionError
    written = failure(job, worker.queue(job.origin), run, worker.name, EXC, worker.stream)
    keys, args = written.call(worker.stream_maxlen, [])
    # Sent ahead, then the connection dies before its reply is read: the channel runs the
    # same call again on a new connection, which must write nothing more.
    worker.scripts.fail.send(keys, args)
    worker.scripts.channel._connection().disconnect()
    worker.scripts.channel.settle()
    assert worker.scripts.fail(keys, args) == 0  # and a third time, nothing either
    assert _count(redis_client, worker) == 1
    if retry:
        assert redis_client.lrange(queue_key("default"), 0, -1) == [job_id.encode()]
        assert not redis_client.exists(results_key(job_id))
    else:
        assert redis_client.xlen(results_key(job_id)) == 1
        assert redis_client.zcard(failed_key("default")) == 1


def test_a_call_after_a_script_flush_loads_the_script_and_writes_once(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    job_id = jobs_app.fail.enqueue("kaput").id
    worker = _worker(app)
    job, run = _running(app, worker)
    redis_client.script_flush()  # a restarted Redis: NOSCRIPT, loaded, run once
    _fail(worker, job, run)
    assert _count(redis_client, worker) == 1
    assert redis_client.xlen(results_key(job_id)) == 1


def test_the_events_waiting_go_out_in_the_same_call(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    jobs_app.fail.enqueue("kaput")
    worker = _worker(app)
    job, run = _running(app, worker)
    worker.take_events()  # the start's events went with the start
    before = redis_client.xlen(worker.stream)
    worker.record({"event": "failed", "job_id": job.id}, {"event": "other", "job_id": job.id})
    _fail(worker, job, run)
    assert redis_client.xlen(worker.stream) == before + 2
    assert worker.take_events() == []


def test_an_unreadable_hash_is_failed(app: Flask, ctx: None, redis_client: redis.Redis) -> None:
    job_id = jobs_app.add.enqueue(1, 1).id
    redis_client.hset(job_key(job_id), "enqueued_at", "not a date")  # no job can be built
    worker = _worker(app)
    found = worker.claim()
    before = redis_client.xlen(worker.stream)
    assert worker._load(found) is None
    assert redis_client.hget(job_key(job_id), "status") == b"failed"
    assert redis_client.hget(job_key(job_id), "ended_at")
    ttl = jobs_app.jobs.state(app).config.failure_ttl
    score = redis_client.zscore(failed_key("default"), job_id)
    assert score is not None and abs(score - (current_timestamp() + ttl)) <= 2
    assert redis_client.xlen(worker.stream) == before + 1  # the "malformed" event, same call


@pytest.mark.parametrize("retry", [False, True], ids=["failed", "retried"])
def test_an_abandoned_job_is_failed_or_retried_as_rqs_cleanup_does(
    app: Flask, ctx: None, redis_client: redis.Redis, retry: bool
) -> None:
    job_id = (jobs_app.always_fails.enqueue(1) if retry else jobs_app.add.enqueue(1, 1)).id
    dead = _worker(app)
    _, run = _running(app, dead)
    redis_client.zadd(started_key("default"), {run.composite: 1})  # its heartbeat lapsed
    worker = _worker(app)
    with app.app_context():
        worker.maintenance.clean()
    fetched = FlaskJob.fetch(job_id, connection=redis_client)
    assert redis_client.zcard(started_key("default")) == 0
    assert _count(redis_client, worker) == 0  # RQ's cleanup counts no worker's failure
    if retry:
        assert fetched.get_status() == JobStatus.QUEUED and fetched.retries_left == 1
        assert redis_client.lrange(queue_key("default"), 0, -1) == [job_id.encode()]
        return
    assert fetched.get_status() == JobStatus.FAILED
    assert redis_client.zscore(failed_key("default"), job_id) is not None
    result = fetched.latest_result()
    assert result is not None and result.type == Result.Type.FAILED
    assert result.worker_name == "" and result.execution_id is None
    assert (result.exc_string or "").startswith("Moved to FailedJobRegistry")


def test_a_failures_traceback_is_formatted_once_per_thread_and_not_kept() -> None:
    def raised(message: str) -> tuple[Any, ...]:
        try:
            raise RuntimeError(message)
        except RuntimeError:
            return sys.exc_info()

    first, second = raised("one"), raised("two")
    text = formatted_traceback(*first)
    assert "RuntimeError: one" in text
    assert formatted_traceback(*first) is text  # the second reader takes the first's text
    again = formatted_traceback(*first)  # taken once only: formatted anew
    assert again == text and again is not text
    two = formatted_traceback(*second)
    assert "RuntimeError: two" in two
    seen: list[str] = []  # another thread has no text of this one's
    worker_thread = threading.Thread(target=lambda: seen.append(formatted_traceback(*second)))
    worker_thread.start()
    worker_thread.join()
    assert seen[0] == two and seen[0] is not two
    assert formatted_traceback(*second) is two
    # forgotten: nothing (no exception, no frames) is kept
    formatted_traceback(*first)
    forget_traceback()
    assert formatted_traceback(*first) is not text
