"""The scheduler: exactly one enqueue per fire time, failover, pause/resume/run, misfires."""

from __future__ import annotations

import dataclasses
import itertools
import json
import signal
import subprocess
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskCliRunner
from rq.job import JobStatus
from rq.utils import now as utcnow

import jobs_app
from conftest import drain_history, flask_command, stop_process, wait_for
from flask_jobs.keys import SCHEDULER_LEADER_KEY as LEADER_KEY
from flask_jobs.keys import schedule_fired_key, schedule_key
from flask_jobs.scheduler import Scheduler
from flask_jobs.scheduler.control import enqueue_schedule

TICK = {"tick": {"job": "jobs_app:add", "args": [1, 2], "every": 1}}


@pytest.fixture
def sched_app(redis_url: str, redis_client: redis.Redis, tmp_path: Any) -> Flask:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 's.db'}",
            "JOBS_SCHEDULE": {
                "ten": {"job": "jobs_app:add", "args": [1, 1], "every": 10, "misfire_grace": 15},
                "nightly": {"job": "jobs_app:add", "args": [2, 2], "cron": "30 2 * * *"},
            },
        }
    )
    with app.app_context():
        jobs_app.db.create_all()
    return app


def queued_origins(app: Flask) -> list[str]:
    with app.app_context():
        return [job.meta.get("origin") for job in jobs_app.jobs.get_queue().jobs]


def test_fires_when_due_and_records_state(sched_app: Flask) -> None:
    scheduler = Scheduler(sched_app, jobs_app.jobs.state(sched_app))
    assert scheduler._lead()
    start = utcnow()
    with sched_app.app_context():
        assert scheduler.fire_due(start) == 0  # a new schedule starts from now
        assert scheduler.fire_due(start + timedelta(seconds=10)) == 1
        assert scheduler.fire_due(start + timedelta(seconds=11)) == 0
        assert scheduler.fire_due(start + timedelta(seconds=20)) == 1
        stored = jobs_app.jobs.schedules.stored("ten")
    assert queued_origins(sched_app) == ["schedule:ten", "schedule:ten"]
    assert stored["last_job_id"]
    assert float(stored["next_fire"]) > float(stored["last_fire"])


def test_missed_runs_within_grace_are_coalesced_older_ones_recorded(
    sched_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = Scheduler(sched_app, jobs_app.jobs.state(sched_app))
    scheduler._lead()
    start = utcnow()
    with sched_app.app_context():
        scheduler.fire_due(start)
        # the scheduler was away for 60 s: due at +10 ... +60; grace is 15 s
        fired = scheduler.fire_due(start + timedelta(seconds=61))
        stored = jobs_app.jobs.schedules.stored("ten")
        listed = {row["name"]: row for row in jobs_app.jobs.schedules.list()}
    assert fired == 1  # +50 and +60 are within grace: coalesced into one run
    # +10 ... +40 are older than the grace (the timetable started as the app did, a moment
    # before `start`, so +50 is 11 s late and +40 21 s)
    assert stored["missed"] == "4"
    assert "ten missed 4 run(s)" in caplog.text
    assert listed["ten"]["missed"] == 4
    drain_history(sched_app)
    with sched_app.app_context():
        missed_rows = jobs_app.jobs.history.search(origin="schedule:ten:missed").rows
    assert len(missed_rows) == 4 and {r["exc_type"] for r in missed_rows} == {"MissedRun"}


def test_without_coalesce_each_run_within_grace_is_enqueued(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "JOBS_SCHEDULE": {
                "each": {"job": "jobs_app:add", "args": [1, 1], "every": 10, "coalesce": False}
            },
        }
    )
    scheduler = Scheduler(app, jobs_app.jobs.state(app))
    scheduler._lead()
    start = utcnow()
    with app.app_context():
        scheduler.fire_due(start)
        assert scheduler.fire_due(start + timedelta(seconds=35)) == 3


def test_a_standby_does_not_fire_and_claims_stop_double_leaders(sched_app: Flask) -> None:
    state = jobs_app.jobs.state(sched_app)
    leader, other = Scheduler(sched_app, state), Scheduler(sched_app, state)
    assert leader._lead() and not other._lead()
    start = utcnow()
    with sched_app.app_context():
        leader.fire_due(start)
        assert other.fire_due(start + timedelta(seconds=10)) == 0  # not the lock holder
        # both believe they lead (e.g. a pause longer than the lock TTL): claims decide
        state.connection.set(LEADER_KEY, other.token)
        other.leading = True
        assert other.fire_due(start + timedelta(seconds=10)) == 1
        # the first leader, with a stale view, tries the same fire time: its claim is taken
        fired_at = state.connection.hget(schedule_key("ten"), "last_fire")
        state.connection.set(LEADER_KEY, leader.token)
        state.connection.hdel(schedule_key("ten"), "last_fire")
        state.connection.hset(schedule_key("ten"), "next_fire", fired_at)
        assert leader.fire_due(start + timedelta(seconds=10)) == 0
    assert len(queued_origins(sched_app)) == 1


def test_a_fire_time_is_claimed_in_the_call_that_enqueues_its_run(
    sched_app: Flask, redis_client: redis.Redis
) -> None:
    state = jobs_app.jobs.state(sched_app)
    claim = schedule_fired_key("ten", 1_000)
    with sched_app.app_context():
        schedule = jobs_app.jobs.schedules.get("ten")
        first, new = enqueue_schedule(state, schedule, origin="schedule:ten", claim=(claim, 60))
        # a second process (or a retry) with the same fire time enqueues nothing
        again = enqueue_schedule(state, schedule, origin="schedule:ten", claim=(claim, 60))
    assert first is not None and new and again == (None, False)
    assert redis_client.lrange("rq:queue:default", 0, -1) == [first.encode()]
    assert 0 < redis_client.ttl(claim) <= 60
    # a run that cannot be stored (an argument JSON cannot carry) leaves its fire time free
    bad = dataclasses.replace(schedule, args=(object(),))
    other = schedule_fired_key("ten", 2_000)
    with sched_app.app_context(), pytest.raises(Exception, match="JSON"):
        enqueue_schedule(state, bad, origin="schedule:ten", claim=(other, 60))
    assert not redis_client.exists(other)


def test_a_unique_schedule_held_by_its_last_run_claims_the_fire_time_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "JOBS_SCHEDULE": {
                "one": {"job": "jobs_app:add", "args": [1, 1], "every": 10, "unique": True}
            },
        }
    )
    state = jobs_app.jobs.state(app)
    with app.app_context():
        schedule = jobs_app.jobs.schedules.get("one")
        held, new = enqueue_schedule(state, schedule, origin="s", claim=("c:1", 60))
        kept, new_again = enqueue_schedule(state, schedule, origin="s", claim=("c:2", 60))
        taken = enqueue_schedule(state, schedule, origin="s", claim=("c:2", 60))
    assert new and held == kept and not new_again
    assert taken == (None, False)
    assert redis_client.exists("c:1", "c:2") == 2
    assert redis_client.llen("rq:queue:default") == 1


def test_pause_resume_run_from_the_cli(sched_app: Flask) -> None:
    runner: FlaskCliRunner = sched_app.test_cli_runner()
    scheduler = Scheduler(sched_app, jobs_app.jobs.state(sched_app))
    scheduler._lead()
    start = utcnow()
    with sched_app.app_context():
        scheduler.fire_due(start)
    assert runner.invoke(args=["jobs", "schedule", "pause", "ten"]).exit_code == 0
    with sched_app.app_context():
        assert scheduler.fire_due(start + timedelta(seconds=30)) == 0
    listing = runner.invoke(args=["jobs", "schedule", "list"])
    assert listing.exit_code == 0, listing.output
    assert "every 10 seconds" in listing.output and "paused" in listing.output
    assert "every day at 02:30 (UTC)" in listing.output
    ran = runner.invoke(args=["jobs", "schedule", "run", "nightly"])
    assert ran.exit_code == 0, ran.output
    assert runner.invoke(args=["jobs", "schedule", "resume", "ten"]).exit_code == 0
    with sched_app.app_context():
        # runs due while paused are skipped; the next one comes 10 s after the resume
        assert scheduler.fire_due(utcnow() + timedelta(seconds=1)) == 0
        assert scheduler.fire_due(utcnow() + timedelta(seconds=11)) == 1
    data = json.loads(runner.invoke(args=["jobs", "schedule", "list", "--json"]).output)
    nightly = next(row for row in data if row["name"] == "nightly")
    assert nightly["last_job_id"] == ran.output.strip() and nightly["last_outcome"] == "queued"
    unknown = runner.invoke(args=["jobs", "schedule", "pause", "nope"])
    assert unknown.exit_code == 1 and "no schedule named 'nope'" in unknown.output


def _claims(client: redis.Redis, name: str) -> list[int]:
    return sorted(
        int(key.rsplit(b":", 1)[1])
        for key in client.keys(schedule_fired_key(name, 0).removesuffix("0") + "*")
    )


def test_three_schedulers_one_job_per_fire_and_failover(
    redis_client: redis.Redis, subprocess_env: dict[str, str]
) -> None:
    env = dict(subprocess_env, JOBS_APP_SCHEDULE=json.dumps(TICK))
    procs = [subprocess.Popen(flask_command("jobs", "scheduler"), env=env) for _ in range(3)]
    try:
        wait_for(lambda: len(_claims(redis_client, "tick")) >= 10, timeout=30)
        claims = _claims(redis_client, "tick")
        # one claim per second, no gaps, and exactly one job per claim
        assert all(b - a == 1000 for a, b in itertools.pairwise(claims))
        # kill -9 the leader: a standby takes over within the lock TTL
        token = redis_client.get(LEADER_KEY).decode()
        leader_pid = int(token.split(":")[1])
        leader = next(p for p in procs if p.pid == leader_pid)
        leader.send_signal(signal.SIGKILL)
        leader.wait(5)
        before = len(_claims(redis_client, "tick"))
        wait_for(lambda: len(_claims(redis_client, "tick")) > before + 2, timeout=20)
        new_token = redis_client.get(LEADER_KEY).decode()
        assert new_token != token
    finally:
        for proc in procs:
            stop_process(proc)
    # exactly one job per claimed fire time, over the whole run
    assert redis_client.llen("rq:queue:default") == len(_claims(redis_client, "tick"))


def test_worker_with_scheduler_runs_the_schedule(
    redis_client: redis.Redis, subprocess_env: dict[str, str], app: Flask
) -> None:
    env = dict(subprocess_env, JOBS_APP_SCHEDULE=json.dumps(TICK))
    proc = subprocess.Popen(
        flask_command("jobs", "worker", "--with-scheduler", "--threads", "1"), env=env
    )
    try:
        wait_for(lambda: redis_client.zcard("rq:finished:default") >= 2, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        stop_process(proc)
    with app.app_context():
        job_id = redis_client.zrange("rq:finished:default", 0, 0)[0].decode()
        job = jobs_app.jobs.fetch_job(job_id)
        assert job.meta["origin"] == "schedule:tick"
        assert job.get_status() == JobStatus.FINISHED
