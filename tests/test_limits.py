"""Concurrency limits on RQ's rate-limit data (a plain `rq worker` releases the slots),
rate limits (the sliding window a worker checks at claim time) and bad limits."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from rq.job import Job
from rq.rate_limit import RateLimitRegistry
from rq.serializers import JSONSerializer

import jobs_app
import workflow_jobs as wj
from conftest import drain_history, flask_command, stop_process, wait_for
from flask_jobs import ConfigurationError, JobArgumentError, Retry, enqueue_many
from flask_jobs.jobs.limits import Rate, parse_rate
from flask_jobs.jobs.rate import job_rate, rate_allows, start_allowed
from flask_jobs.keys import RQ_RATE_LIMIT_KEYS
from jobs_app import jobs

RQ = str(Path(sys.executable).parent / "rq")


def _max_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at one moment (an end at the same instant as a start closes first)."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def test_a_limit_uses_rqs_own_rate_limit_data(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    runs = [wj.limited_sleep.enqueue(0) for _ in range(4)]
    assert [r.get_status() for r in runs] == ["queued", "queued", "rate_limited", "rate_limited"]
    key = "workflow_jobs:limited_sleep"
    assert redis_client.smembers(RQ_RATE_LIMIT_KEYS) == {key.encode()}
    registry = RateLimitRegistry(key, redis_client)
    assert registry.concurrency == 2
    assert set(registry.get_allowed_job_ids()) == {runs[0].id, runs[1].id}
    assert set(registry.get_rate_limited_job_ids()) == {runs[2].id, runs[3].id}
    fetched = Job.fetch(runs[2].id, connection=redis_client, serializer=JSONSerializer)
    assert (fetched.rate_limit_key, fetched.rate_limit_concurrency) == (key, 2)
    assert jobs.get_queue().job_ids == [runs[0].id, runs[1].id]


def test_a_key_formatted_from_the_arguments(app: Flask, ctx: None) -> None:
    a1 = wj.per_tenant.enqueue(tenant_id=1)
    a2 = wj.per_tenant.enqueue(tenant_id=1)
    b1 = wj.per_tenant.enqueue(tenant_id=2)
    assert a1.rate_limit_key == "tenant:1" and b1.rate_limit_key == "tenant:2"
    assert [a1.get_status(), a2.get_status(), b1.get_status()] == [
        "queued",
        "rate_limited",
        "queued",
    ]
    before = set(jobs.connection.keys("*"))
    with pytest.raises(JobArgumentError, match="names tenant_id"):
        wj.double.options(concurrency=1, concurrency_key="tenant:{tenant_id}").enqueue(1)
    with pytest.raises(JobArgumentError, match="names tenant_id"):
        enqueue_many(wj.per_tenant, [((), {"tenant_id": 1}), ((), {})])
    assert set(jobs.connection.keys("*")) == before  # nothing enqueued


def test_enqueue_many_acquires_per_run(app: Flask, ctx: None) -> None:
    runs = enqueue_many(wj.limited_sleep, [((0,), {})] * 3)
    assert [r.get_status() for r in runs] == ["queued", "queued", "rate_limited"]


def _spans(ids: list[str], client: redis.Redis) -> list[tuple[datetime, datetime]]:
    jobs_ = Job.fetch_many(ids, connection=client, serializer=JSONSerializer)
    return [(j.started_at, j.ended_at) for j in jobs_ if j is not None]


def test_plain_rq_workers_never_run_three_of_a_limit_of_two(
    app: Flask, redis_url: str, redis_client: redis.Redis, subprocess_env: dict[str, str]
) -> None:
    with app.app_context():
        ids = [wj.limited_sleep.enqueue(0.2).id for _ in range(9)]
    command = [
        RQ, "worker", "--burst", "--url", redis_url, "--serializer", "json",
        "--job-class", "flask_jobs.FlaskJob", "--worker-class", "rq.worker.SimpleWorker",
        "default",
    ]  # fmt: skip
    workers = [subprocess.Popen(command, env=subprocess_env) for _ in range(3)]
    try:
        # A burst worker leaves when the queue is empty; the others promote the waiting runs.
        for proc in workers:
            proc.wait(120)
        with app.app_context():
            while jobs.get_queue().count:  # what the last to leave promoted
                extra = subprocess.run(command, env=subprocess_env, timeout=120, check=False)
                assert extra.returncode == 0
            statuses = [jobs.fetch_job(i).get_status() for i in ids]
        assert statuses == ["finished"] * 9
        spans = _spans(ids, redis_client)
        assert len(spans) == 9
        assert _max_overlap(spans) <= 2
        assert not RateLimitRegistry(
            "workflow_jobs:limited_sleep", redis_client
        ).get_allowed_job_ids()
    finally:
        for proc in workers:
            stop_process(proc)


def test_our_workers_never_run_three_of_a_limit_of_two_by_the_history(
    app: Flask, subprocess_env: dict[str, str]
) -> None:
    with app.app_context():
        ids = [wj.limited_sleep.enqueue(0.2).id for _ in range(9)]
    workers = [
        subprocess.Popen(flask_command("jobs", "worker", "--name", f"lim{i}"), env=subprocess_env)
        for i in range(3)
    ]
    try:
        with app.app_context():
            wait_for(
                lambda: all(jobs.fetch_job(i).get_status() == "finished" for i in ids), timeout=60
            )
    finally:
        for proc in workers:
            stop_process(proc)
    drain_history(app)
    with app.app_context():
        rows = [row for i in ids for row in jobs.history.get(i)]
    spans: list[Any] = [(r["started_at"], r["ended_at"]) for r in rows]
    assert len(spans) == 9 and all(s and e for s, e in spans)
    assert _max_overlap(spans) <= 2


@pytest.mark.parametrize(
    ("text", "rate"),
    [("20/s", Rate(20, 1)), ("100/m", Rate(100, 60)), ("1000/h", Rate(1000, 3600)),
     (" 5 / 10s ", Rate(5, 10))],
)  # fmt: skip
def test_rates_parse(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "20", "20/d", "0/s", "x/s", "20/0s", 20])
def test_a_rate_that_does_not_parse_is_refused_at_declaration(text: Any) -> None:
    with pytest.raises(ConfigurationError, match="rate="):

        @jobs.job(rate=text)
        def never() -> None: ...


def test_the_rate_is_stored_on_the_job_hash(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    job = wj.rated.enqueue()
    fields = redis_client.hgetall(job.key)
    assert job_rate(fields) == ("workflow_jobs:rated", Rate(20, 1))
    assert job_rate(redis_client.hgetall(wj.double.enqueue(1).key)) is None
    # what the claim does with it: 20 starts, then a wait
    checks = [start_allowed(redis_client, job.id, fields) for _ in range(21)]
    assert [bool(c) for c in checks] == [True] * 20 + [False]
    assert 0 < checks[-1].wait_seconds <= 1
    plain = wj.double.enqueue(1)
    assert start_allowed(redis_client, plain.id, redis_client.hgetall(plain.key))


def test_a_rate_of_20_a_second_holds_across_two_workers(
    app: Flask, subprocess_env: dict[str, str]
) -> None:
    """A job over its rate waits (scheduled) and the worker takes the next one; the starts
    the history records never pass 20 in any second, nor 200 in any ten."""
    with app.app_context():
        ids = [job.id for job in enqueue_many(wj.rated, [((), {}) for _ in range(300)])]
    workers = [
        subprocess.Popen(flask_command("jobs", "worker", "--name", f"rate{i}"), env=subprocess_env)
        for i in range(2)
    ]
    try:
        with app.app_context():
            finished = lambda: sum(jobs.fetch_job(i).get_status() == "finished" for i in ids)  # noqa: E731
            wait_for(lambda: finished() >= 240, timeout=120)
    finally:
        for proc in workers:
            stop_process(proc)
    drain_history(app)
    with app.app_context():
        starts = sorted(
            row["started_at"] for i in ids for row in jobs.history.get(i) if row["started_at"]
        )
    assert len(starts) >= 240
    seconds = [(b - a).total_seconds() for a, b in zip(starts, starts[20:], strict=False)]
    # each start is stamped a moment after its check in Redis: a tenth of a second of slack
    assert min(seconds) >= 0.9, "21 starts within one second"
    tens = [(b - a).total_seconds() for a, b in zip(starts, starts[200:], strict=False)]
    assert min(tens) >= 9.9, "201 starts within ten seconds"


def test_rate_allows_is_a_sliding_window(redis_client: redis.Redis) -> None:
    start = 1_000_000
    first = [
        rate_allows(redis_client, "api", 20, 1, member=str(i), now_ms=start) for i in range(25)
    ]
    assert sum(bool(c) for c in first) == 20
    refused = first[-1]
    assert not refused and refused.wait_seconds == 1.0
    # half a period on, the window still holds the twenty
    assert not rate_allows(redis_client, "api", 20, 1, member="a", now_ms=start + 500)
    # a period on, they have left it
    later = [rate_allows(redis_client, "api", 20, 1, member=f"b{i}", now_ms=start + 1000)
             for i in range(21)]  # fmt: skip
    assert sum(bool(c) for c in later) == 20
    # Redis's own clock when no time is given
    assert rate_allows(redis_client, "other", 1, 60, member="x")
    assert not rate_allows(redis_client, "other", 1, 60, member="y")


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True])
def test_a_concurrency_that_is_not_a_whole_number_of_one_or_more_is_refused(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="concurrency="):

        @jobs.job(concurrency=value)
        def never() -> None: ...


def test_a_concurrency_key_needs_a_limit(app: Flask, ctx: None) -> None:
    with pytest.raises(ConfigurationError, match="needs concurrency=N"):
        wj.double.options(concurrency_key="k")


def test_soft_timeout_is_checked_and_kept_in_meta(app: Flask, ctx: None) -> None:
    job = wj.double.options(soft_timeout=5, timeout=10).enqueue(1)
    assert jobs.fetch_job(job.id).meta["soft_timeout"] == 5.0
    with pytest.raises(ConfigurationError, match="must be shorter than timeout"):
        wj.double.options(soft_timeout=10, timeout=10)


def test_rate_allows_admits_no_more_than_the_limit_from_racing_processes(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # Four processes ask 100 times each for a start of a 20-per-minute limit at once.
    script = (
        "import sys, redis\n"
        "from flask_jobs.jobs.rate import rate_allows\n"
        "c = redis.Redis.from_url(sys.argv[1])\n"
        "n = sum(bool(rate_allows(c, 'race', 20, 60, member=f'{sys.argv[2]}:{i}')) "
        "for i in range(100))\n"
        "c.rpush('admitted', n)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, redis_url, str(p)]) for p in range(4)]
    for proc in procs:
        assert proc.wait(60) == 0
    admitted = [int(n) for n in redis_client.lrange("admitted", 0, -1)]
    assert len(admitted) == 4 and sum(admitted) == 20


def test_a_limited_job_behind_a_dependency_takes_a_slot_when_ready(
    app: Flask, work: Any, redis_client: redis.Redis
) -> None:
    with app.app_context():
        holders = [wj.limited_sleep.enqueue(0) for _ in range(2)]  # the two slots, taken
        parent = wj.double.enqueue(1)
        waiting = wj.limited_sleep.options(depends_on=parent).enqueue(0)
        chained = jobs.chain(wj.double.s(2), wj.limited_sleep.si(0)).enqueue()
        assert waiting.get_status() == "deferred"
        assert [h.get_status() for h in holders] == ["queued", "queued"]
    work()
    with app.app_context():
        assert waiting.get_status() == "finished"
        assert chained.status == "finished"
        registry = RateLimitRegistry("workflow_jobs:limited_sleep", redis_client)
        assert not registry.get_allowed_job_ids() and not registry.get_rate_limited_job_ids()


def test_a_limited_job_waiting_for_a_later_retry_frees_its_slot(
    app: Flask, work: Any, redis_client: redis.Redis
) -> None:
    with app.app_context():
        failing = jobs_app.fail.options(
            concurrency=1, concurrency_key="one", retry=Retry(1, delay=600)
        ).enqueue("boom")
        waiting = jobs_app.add.options(concurrency=1, concurrency_key="one").enqueue(1, 2)
        assert [failing.get_status(), waiting.get_status()] == ["queued", "rate_limited"]
    work()
    with app.app_context():
        # RQ's rule: a run queued again at once keeps its slot, one waiting for a later
        # retry frees it, so the next run of the key is not held for ten minutes
        assert failing.get_status() == "scheduled"
        assert waiting.get_status() == "finished"
        registry = RateLimitRegistry("one", redis_client)
        assert not registry.get_allowed_job_ids() and not registry.get_rate_limited_job_ids()
