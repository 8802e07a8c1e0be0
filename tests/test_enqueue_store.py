"""Our one-call enqueue against RQ's own: the same job for RQ's classes and a plain RQ worker."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker
from transaction_support import spare_redis_fixture  # noqa: F401

import jobs_app
from flask_jobs import Retry, enqueue_many

pytestmark = pytest.mark.usefixtures("ctx")

COMPARED = (
    "func_name",
    "args",
    "kwargs",
    "origin",
    "description",
    "timeout",
    "result_ttl",
    "failure_ttl",
    "ttl",
    "meta",
    "retries_left",
    "retry_intervals",
    "worker_name",
    "started_at",
    "ended_at",
    "group_id",
)


def fetch(conn: redis.Redis, job_id: str) -> Job:
    return Job.fetch(job_id, connection=conn, serializer=JSONSerializer)


def rq_enqueue(conn: redis.Redis, **options: Any) -> Job:
    """The same job through RQ's own Queue.enqueue_call."""
    queue = Queue("default", connection=conn, serializer=JSONSerializer)
    return queue.enqueue_call(
        "jobs_app.add",
        args=(1, 2),
        result_ttl=500,
        failure_ttl=31_536_000,
        meta={"origin": "code"},
        **options,
    )


def same(ours: Job, theirs: Job) -> None:
    for name in COMPARED:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.get_status() == theirs.get_status()
    assert (ours.enqueued_at is None) == (theirs.enqueued_at is None)


def test_the_job_rq_reads_is_the_one_rq_writes(redis_client: redis.Redis) -> None:
    ours = jobs_app.add.enqueue(1, 2)
    theirs = rq_enqueue(redis_client)
    same(fetch(redis_client, ours.id), fetch(redis_client, theirs.id))
    assert redis_client.lrange("rq:queue:default", 0, -1) == [ours.id.encode(), theirs.id.encode()]
    assert redis_client.smembers("rq:queues") == {b"rq:queue:default"}


def test_with_retry_ttl_and_at_front(redis_client: redis.Redis) -> None:
    jobs_app.add.enqueue(0, 0)
    options = {"ttl": 600, "retry": Retry(3, delay=5)}
    ours = jobs_app.add.options(at_front=True, **options).enqueue(1, 2)
    theirs = rq_enqueue(redis_client, ttl=600, retry=Retry(3, delay=5).to_rq(), at_front=True)
    fetched = fetch(redis_client, ours.id)
    fetched.meta.pop("retry_policy")  # ours keeps the policy for our worker's jitter
    same(fetched, fetch(redis_client, theirs.id))
    assert redis_client.lindex("rq:queue:default", 1) == ours.id.encode()
    assert 0 < redis_client.ttl(f"rq:job:{ours.id}") <= 600


def test_scheduled(redis_client: redis.Redis) -> None:
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    ours = jobs_app.add.enqueue_at(when, 1, 2)
    queue = Queue("default", connection=redis_client, serializer=JSONSerializer)
    theirs = queue.enqueue_at(
        when, "jobs_app.add", 1, 2, result_ttl=500, failure_ttl=31_536_000, meta={"origin": "code"}
    )
    same(fetch(redis_client, ours.id), fetch(redis_client, theirs.id))
    scores = dict(redis_client.zrange("rq:scheduled:default", 0, -1, withscores=True))
    assert scores[ours.id.encode()] == scores[theirs.id.encode()] == when.timestamp()


def test_a_plain_rq_worker_runs_them(redis_client: redis.Redis) -> None:
    one = jobs_app.add.enqueue(1, 2)
    many = enqueue_many(jobs_app.add, [((i, i), {}) for i in range(3)])
    queue = Queue("default", connection=redis_client, serializer=JSONSerializer)
    worker = SimpleWorker([queue], connection=redis_client, serializer=JSONSerializer)
    worker.work(burst=True)
    for job, expected in [(one, 3), *((job, 2 * i) for i, job in enumerate(many))]:
        fetched = fetch(redis_client, job.id)
        assert fetched.get_status() == "finished"
        assert fetched.return_value() == expected


def test_a_redis_that_lost_the_script_gets_it_again(spare_redis: Any, tmp_path: Any) -> None:
    # SCRIPT FLUSH is server-wide: on a redis-server of this test's own
    app = jobs_app.create_app(
        {"JOBS_REDIS_URL": f"redis://127.0.0.1:{spare_redis.port}/0"},
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        conn = jobs_app.jobs.connection
        jobs_app.add.enqueue(1, 2)
        for _ in range(2):
            conn.script_flush()
            assert len(enqueue_many(jobs_app.add, [((i, i), {}) for i in range(3)])) == 3
            conn.script_flush()
            jobs_app.add.enqueue(1, 2)
        assert conn.llen("rq:queue:default") == 9


def test_many_runs_over_several_script_calls(redis_client: redis.Redis) -> None:
    runs = [((i, 1), {}) for i in range(1200)]
    jobs = enqueue_many(jobs_app.add.options(ttl=900, description="sum"), runs)
    assert redis_client.llen("rq:queue:default") == 1200
    for i in (0, 499, 500, 1199):
        fetched = fetch(redis_client, jobs[i].id)
        assert (fetched.args, fetched.description, fetched.ttl) == ([i, 1], "sum", 900)
        assert fetched.get_status() == "queued"
    events = redis_client.xrange("flask_jobs:history")
    assert len(events) == 1200
    assert events[777][1][b"args"] == b"[777,1]"
    assert events[777][1][b"job_id"] == jobs[777].id.encode()
    front = enqueue_many(jobs_app.add.options(at_front=True), [((0, 0), {}), ((1, 1), {})])
    assert redis_client.lrange("rq:queue:default", 0, 1) == [
        front[1].id.encode(),
        front[0].id.encode(),
    ]
