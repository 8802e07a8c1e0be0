"""The release of a job's dependents (flask_jobs/worker/dependents.py, dependents.lua):
RQ 3's rules, once per child however many parents end at the same moment, and a reading
that went stale before the script ran."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask
from rq import Queue
from rq.job import Dependency, Job
from rq.registry import DeferredJobRegistry
from rq.serializers import JSONSerializer

import jobs_app
from flask_jobs.keys import (
    DEPENDENTS_OWED_KEY,
    dependencies_key,
    dependents_key,
    job_key,
    queue_key,
)
from flask_jobs.worker.build import build_worker
from flask_jobs.worker.dependents import ATTEMPTS, Dependents, Reading, release_keys
from flask_jobs.worker.scripts import Scripts

FUNC = "workflow_jobs.double"


@pytest.fixture
def queue(redis_client: redis.Redis) -> Queue:
    return Queue("default", connection=redis_client, serializer=JSONSerializer)


@pytest.fixture
def dependents(redis_client: redis.Redis) -> Iterator[Dependents]:
    scripts = Scripts(redis_client)
    yield Dependents(redis_client, scripts.dependents)
    scripts.channel.close()


def enqueue(queue: Queue, depends_on: object = None, **options: object) -> Job:
    return queue.enqueue_call(FUNC, args=(1,), depends_on=depends_on, **options)  # type: ignore[arg-type]


def end(client: redis.Redis, job: Job, status: str = "finished") -> None:
    """What a worker writes of a job's end before it releases its dependents."""
    client.hset(job.key, "status", status)


def status(client: redis.Redis, job: Job) -> str:
    return client.hget(job.key, "status").decode()  # type: ignore[union-attr]


def queued(client: redis.Redis, name: str = "default") -> list[str]:
    return [i.decode() for i in client.lrange(queue_key(name), 0, -1)]  # type: ignore[union-attr]


def end_and_release(
    client: redis.Redis, scripts: Scripts, parent: Job, queue: Queue, barrier: threading.Barrier
) -> None:
    """One worker: the end of ``parent``, then (with the other worker) its release."""
    end(client, parent)
    barrier.wait()
    try:
        Dependents(client, scripts.dependents).release(parent, queue)
    finally:
        scripts.channel.close()  # the thread's connection, back to the pool


def test_two_parents_ending_together_release_their_child_once(
    redis_client: redis.Redis, queue: Queue
) -> None:
    # Each thread has a connection of its own (as each worker thread or process does);
    # both parents' ends are written before either release, so both find the child ready.
    scripts = Scripts(redis_client)
    for round_ in range(300):
        redis_client.flushdb()
        parents = [enqueue(queue) for _ in range(2)]
        child = enqueue(queue, depends_on=parents)
        redis_client.delete(queue_key("default"))  # the parents were taken by workers
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(
                target=end_and_release, args=(redis_client, scripts, parent, queue, barrier)
            )
            for parent in parents
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert queued(redis_client) == [child.id], f"round {round_}"
        assert status(redis_client, child) == "queued"
        assert not DeferredJobRegistry(queue=queue).get_job_ids()
        assert not redis_client.exists(*(dependents_key(p.id) for p in parents))


def test_a_child_waits_for_its_last_parent(
    redis_client: redis.Redis, queue: Queue, dependents: Dependents
) -> None:
    first, second = enqueue(queue), enqueue(queue)
    child = enqueue(queue, depends_on=[first, second], job_id="child")
    redis_client.delete(queue_key("default"))
    end(redis_client, first)
    dependents.release(first, queue)
    assert status(redis_client, child) == "deferred" and not queued(redis_client)
    # RQ leaves a child that is not ready in the set of the parent that ended
    assert redis_client.smembers(dependents_key(first.id)) == {b"child"}
    end(redis_client, second)
    dependents.release(second, queue)
    assert queued(redis_client) == ["child"]
    enqueued_at = redis_client.hget(child.key, "enqueued_at")
    assert enqueued_at and Job.fetch("child", redis_client, JSONSerializer).enqueued_at
    # the first parent's set still names the child: a late release there leaves it be
    dependents.release(first, queue)
    assert queued(redis_client) == ["child"]
    assert not redis_client.exists(dependents_key(first.id))


def test_allow_failure(redis_client: redis.Redis, queue: Queue, dependents: Dependents) -> None:
    parent, other = enqueue(queue), enqueue(queue)
    lenient = enqueue(queue, Dependency(jobs=[parent], allow_failure=True), job_id="lenient")
    strict = enqueue(queue, depends_on=parent, job_id="strict")
    # allowed to fail, but its other dependency was stopped: RQ admits only "failed"
    held = enqueue(queue, Dependency(jobs=[parent, other], allow_failure=True), job_id="held")
    redis_client.delete(queue_key("default"))
    end(redis_client, other, "stopped")
    end(redis_client, parent, "failed")
    dependents.release(parent, queue)
    assert queued(redis_client) == ["lenient"]
    assert [status(redis_client, j) for j in (lenient, strict, held)] == [
        "queued",
        "deferred",
        "deferred",
    ]
    assert redis_client.smembers(dependents_key(parent.id)) == {b"strict", b"held"}
    assert set(DeferredJobRegistry(queue=queue).get_job_ids()) == {"strict", "held"}


@pytest.mark.parametrize("ended", ["stopped", "canceled"])
def test_a_stopped_or_canceled_parent_holds_even_lenient_children(
    redis_client: redis.Redis, queue: Queue, dependents: Dependents, ended: str
) -> None:
    parent = enqueue(queue)
    child = enqueue(queue, Dependency(jobs=[parent], allow_failure=True))
    redis_client.delete(queue_key("default"))
    end(redis_client, parent, ended)
    dependents.release(parent, queue)
    assert status(redis_client, child) == "deferred" and not queued(redis_client)


def test_at_front_ttl_origin_and_what_stays_in_the_set(
    redis_client: redis.Redis, queue: Queue, dependents: Dependents
) -> None:
    parent = enqueue(queue)
    redis_client.delete(queue_key("default"))
    enqueue(queue, job_id="waiting-already")  # a job in the queue before the release
    other_queue = Queue("other", connection=redis_client, serializer=JSONSerializer)
    front = enqueue(queue, Dependency(jobs=[parent], enqueue_at_front=True), job_id="front")
    back = enqueue(queue, depends_on=parent, job_id="back", ttl=300)
    elsewhere = enqueue(other_queue, depends_on=parent, job_id="elsewhere")
    canceled = enqueue(queue, depends_on=parent, job_id="canceled")
    canceled.cancel()
    enqueue(queue, depends_on=parent, job_id="gone")
    redis_client.delete(job_key("gone"))
    redis_client.sadd(dependents_key(parent.id), "canceled")  # cancel took it out
    end(redis_client, parent)
    dependents.release(parent, queue)
    assert queued(redis_client) == ["front", "waiting-already", "back"]
    assert queued(redis_client, "other") == ["elsewhere"]
    assert status(redis_client, elsewhere) == "queued"
    assert 0 < redis_client.ttl(back.key) <= 300 and redis_client.ttl(front.key) == -1
    assert 0 < redis_client.ttl(dependencies_key(back.id)) <= 300
    assert redis_client.hget(front.key, "timeout") is not None
    # RQ leaves a canceled dependent and one whose hash is gone in the set
    assert redis_client.smembers(dependents_key(parent.id)) == {b"canceled", b"gone"}
    assert not DeferredJobRegistry(queue=other_queue).get_job_ids()


def test_a_dependency_added_after_the_reading_makes_the_script_write_nothing(
    redis_client: redis.Redis, queue: Queue, dependents: Dependents
) -> None:
    parent = enqueue(queue)
    child = enqueue(queue, depends_on=parent, job_id="child")
    late = enqueue(queue, job_id="late")
    redis_client.delete(queue_key("default"))
    end(redis_client, parent)
    reading = dependents.read(parent.id)
    assert reading == ([("child", "default")], [])
    # between the reading and the script, the child gets a dependency that runs
    redis_client.sadd(dependencies_key("child"), "late")  # as RQ registers a dependency
    redis_client.sadd(dependents_key("late"), "child")
    redis_client.hset(late.key, "status", "started")
    keys, args = release_keys(parent.id, reading, child.created_at, 180)
    assert dependents.script(keys=keys, args=args) == [b"retry"]
    assert status(redis_client, child) == "deferred"
    assert redis_client.smembers(dependents_key(parent.id)) == {b"child"}
    # the release reads again: now the child waits for the late dependency
    dependents.release(parent, queue)
    assert status(redis_client, child) == "deferred" and not queued(redis_client)
    end(redis_client, late)
    dependents.release(late, queue)
    assert queued(redis_client) == ["child"]


def test_a_dependent_added_or_a_dependency_dropped_after_the_reading(
    redis_client: redis.Redis, queue: Queue, dependents: Dependents
) -> None:
    parent, other = enqueue(queue), enqueue(queue)
    first = enqueue(queue, depends_on=[parent, other], job_id="first")
    redis_client.delete(queue_key("default"))
    end(redis_client, parent)
    reading = dependents.read(parent.id)
    assert reading is not None
    keys, args = release_keys(parent.id, reading, first.created_at, 180)
    # a dependency dropped since: the script reads the set as it is now, and goes on
    redis_client.srem(dependencies_key("first"), other.id)
    assert dependents.script(keys=keys, args=args) == [b"ok", [b"first"], []]
    assert queued(redis_client) == ["first"]
    # a dependent added since the reading (enqueued while the parent still ran)
    redis_client.hset(parent.key, "status", "started")
    second = enqueue(queue, depends_on=parent, job_id="second")
    end(redis_client, parent)
    assert dependents.script(keys=keys, args=args) == [b"retry"]
    assert status(redis_client, second) == "deferred"
    dependents.release(parent, queue)
    assert queued(redis_client) == ["first", "second"]


def test_the_ended_job_gone_releases_nothing(
    redis_client: redis.Redis, queue: Queue, dependents: Dependents
) -> None:
    parent = enqueue(queue)
    child = enqueue(queue, depends_on=parent)
    redis_client.delete(parent.key, queue_key("default"))
    dependents.release(parent, queue)
    assert status(redis_client, child) == "deferred" and not queued(redis_client)


class Churning(Dependents):
    """A release whose parent gains a dependent after each of its readings."""

    def read(self, job_id: str) -> Reading | None:
        reading = super().read(job_id)
        self.connection.sadd(dependents_key(job_id), f"new-{self.connection.incr('n')}")
        return reading


def test_a_release_reads_again_a_bounded_number_of_times(
    redis_client: redis.Redis,
    queue: Queue,
    dependents: Dependents,
    caplog: pytest.LogCaptureFixture,
) -> None:
    parent = enqueue(queue)
    child = enqueue(queue, depends_on=parent)
    redis_client.delete(queue_key("default"))
    end(redis_client, parent)
    Churning(redis_client, dependents.script).release(parent, queue)
    assert int(redis_client.get("n") or 0) == ATTEMPTS
    assert "changed under" in caplog.text
    assert status(redis_client, child) == "deferred" and not queued(redis_client)


@pytest.mark.parametrize("parent_fails", [False, True])
def test_a_release_its_worker_did_not_make_is_made_by_another_workers_maintenance(
    app: Flask,
    work: Callable[..., bool],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    parent_fails: bool,
) -> None:
    with app.app_context():
        parent = jobs_app.fail.enqueue("boom") if parent_fails else jobs_app.add.enqueue(1, 2)
        child = jobs_app.add.options(
            depends_on=Dependency(jobs=[parent], allow_failure=True)
        ).enqueue(3, 4)
    # the worker dies between the call that ends the parent and the release
    monkeypatch.setattr(Dependents, "release", lambda self, job, queue: None)
    work()
    monkeypatch.undo()
    assert status(redis_client, parent) == ("failed" if parent_fails else "finished")
    assert status(redis_client, child) == "deferred"
    assert redis_client.zrange(DEPENDENTS_OWED_KEY, 0, -1) == [parent.id.encode()]
    with app.app_context():
        worker = build_worker(app, jobs_app.jobs.state(app), None)
        queue = worker.queue("default")
        assert worker.maintenance.release_owed(queue) == 0  # within the grace: its own worker's
        redis_client.zadd(DEPENDENTS_OWED_KEY, {parent.id: 1})  # ended long ago
        assert worker.maintenance.release_owed(queue) == 1
    assert status(redis_client, child) == "queued" and queued(redis_client) == [child.id]
    assert not redis_client.exists(DEPENDENTS_OWED_KEY)
    work()
    assert status(redis_client, child) == "finished"
