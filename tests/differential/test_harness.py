"""The comparison itself: what it normalises, what it still sees, and the allow-list's shape."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import redis
from flask import Flask

from differential import tasks
from differential.allowed import ALLOWED
from differential.compare import Difference, differences
from differential.divergences import DIVERGENCES
from differential.sides import Side
from differential.snapshot import Approx, take_snapshot


def test_placeholders_replace_ids_times_and_machines(redis_client: redis.Redis) -> None:
    job_id, other = str(uuid.uuid4()), uuid.uuid4().hex
    redis_client.hset(
        f"rq:job:{job_id}",
        mapping={
            "started_at": "2026-12-01T10:00:00.123456Z",
            "exc_string_like": f"at 2026-12-01 10:00:00.5+00:00 in {other}",
            "execution_ended_at": "1796162626.13014",
            "hostname": "some-host",
            "pid": "4242",
            "status": "finished",
        },
    )
    redis_client.expire(f"rq:job:{job_id}", 500)
    redis_client.zadd("rq:finished:default", {job_id: 1e10})
    snapshot = take_snapshot(redis_client, [job_id], [])
    job = snapshot["rq:job:{job1}"]
    assert job.value == {
        "started_at": "{ts}",
        "exc_string_like": "at {ts} in {id}",
        "execution_ended_at": "{ts}",
        "hostname": "{host}",
        "pid": "{pid}",
        "status": "finished",
    }
    assert job.ttl == Approx(500) and job.ttl != Approx(400) and job.ttl != "persistent"
    assert snapshot["rq:finished:default"].ttl == "persistent"


def test_every_kind_of_difference_is_reported(redis_client: redis.Redis) -> None:
    redis_client.hset("h", mapping={"status": "finished", "same": "1"})
    redis_client.rpush("l", "a")
    before = take_snapshot(redis_client, [], [])
    redis_client.hset("h", "status", "failed")
    redis_client.expire("h", 100)
    redis_client.rpush("l", "b")
    redis_client.set("new", "1")
    after = take_snapshot(redis_client, [], [])
    found = {(d.key, d.field) for d in differences(before, after)}
    assert found == {("h", "status"), ("h", "(ttl)"), ("l", "(value)"), ("new", "(key)")}


def test_a_changed_job_status_is_not_normalised_away(
    diff_app: Flask, redis_client: redis.Redis, redis_url: str
) -> None:
    side = Side("default", redis_client, diff_app, redis_url)
    job_id = side.enqueue(tasks.add, 2, 3)
    side.work()
    before = take_snapshot(redis_client, side.job_ids, side.worker_names)
    redis_client.hset(side.fetch(job_id).key, "status", "failed")
    after = take_snapshot(redis_client, side.job_ids, side.worker_names)
    assert differences(before, after) == [
        Difference("rq:job:{job1}", "status", "finished", "failed")
    ]


def test_the_allow_list_names_each_difference_with_a_reason() -> None:
    for rule in ALLOWED:
        # a key or a field of it, never "anything": an allowance is one difference
        assert rule.key.strip("*:") and rule.field.strip("*"), rule
        assert len(rule.reason) > 60, f"say why: {rule}"
    for bug in DIVERGENCES:
        assert bug.scenarios != ("*",), f"name the scenarios it shows in: {bug}"
        assert len(bug.reason) > 60, f"say precisely what differs: {bug}"


def test_scenario_names_are_unique() -> None:
    from differential import test_interrupted, test_scenarios

    names: list[Callable[[Side], None]] = [
        *test_scenarios.SCENARIOS,
        test_interrupted.scenario_stop_job,
        test_interrupted.scenario_killed_then_abandoned,
    ]
    assert len({f.__name__ for f in names}) == len(names)
