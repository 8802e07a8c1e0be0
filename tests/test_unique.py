"""Unique jobs: a second enqueue while one with the key waits gives back the first job,
checked inside the one-call store script (the direct path, many runs, the outbox)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from rq.utils import now as utcnow

import jobs_app
import workflow_jobs as wj
from conftest import flask_command, stop_process, wait_for
from flask_jobs import ConfigurationError, JobArgumentError, enqueue_many
from flask_jobs.keys import unique_key
from flask_jobs.outbox import OutboxRelay
from flask_jobs.scheduler import Scheduler
from flask_jobs.scheduler.declarations import parse_schedule
from jobs_app import Note, db, jobs


def test_a_second_enqueue_gives_back_the_waiting_job(app: Flask, ctx: None) -> None:
    first = wj.sync_account.enqueue(42)
    again = wj.sync_account.enqueue(42)
    other = wj.sync_account.enqueue(43)
    assert again.id == first.id
    assert other.id != first.id
    assert jobs.get_queue().count == 2


def test_a_key_of_ones_own_with_a_ttl(app: Flask, ctx: None, redis_client: redis.Redis) -> None:
    call = wj.note_run.options(unique_key="sync:42", unique_for=timedelta(minutes=10))
    first = call.enqueue("runs")
    assert call.enqueue("other arguments, same key").id == first.id
    assert redis_client.get(unique_key("sync:42")) == first.id.encode()
    assert 0 < redis_client.ttl(unique_key("sync:42")) <= 600


def test_a_key_whose_job_ended_is_released(
    app: Flask, work: Callable[..., bool], redis_client: redis.Redis
) -> None:
    with app.app_context():
        first = wj.sync_account.enqueue(7)
    work()
    with app.app_context():
        assert first.get_status() == "finished"
        second = wj.sync_account.enqueue(7)
        assert second.id != first.id
        assert second.get_status() == "queued"


def test_scheduled_and_deferred_jobs_hold_their_key(app: Flask, ctx: None) -> None:
    later = wj.sync_account.enqueue_in(timedelta(hours=1), 5)
    assert later.get_status() == "scheduled"
    assert wj.sync_account.enqueue(5).id == later.id


def test_many_runs_are_checked_one_by_one(app: Flask, ctx: None) -> None:
    runs = enqueue_many(wj.sync_account, [((1,), {}), ((2,), {}), ((1,), {})])
    assert runs[2].id == runs[0].id
    assert runs[1].id != runs[0].id
    assert jobs.get_queue().count == 2


def test_the_outbox_relay_keeps_one_job_per_key(outbox_app: Flask) -> None:
    first = wj.sync_account.enqueue(9)  # no writes in the session: straight to Redis
    db.session.add(Note(text="with a write"))
    second = wj.sync_account.enqueue(9)  # a row of the outbox, in the transaction
    db.session.commit()
    relay = OutboxRelay(outbox_app, jobs.state(outbox_app))
    assert relay.relay_once() == 1  # the row is done with...
    assert second.id != first.id
    assert jobs.get_queue().job_ids == [first.id]  # ...but the relay found the key taken


def test_unique_while_running_holds_the_key_during_the_run(
    app: Flask, subprocess_env: dict[str, str]
) -> None:
    with app.app_context():
        slow = wj.limited_sleep.options(unique_key="slow", unique_while="running", concurrency=None)
        running = slow.enqueue(3)
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        with app.app_context():
            wait_for(lambda: running.get_status() == "started")
            assert slow.enqueue(3).id == running.id
            queued_only = wj.limited_sleep.options(unique_key="slow", concurrency=None)
            assert queued_only.enqueue(0).id != running.id
    finally:
        stop_process(proc)


def test_a_unique_key_over_512_bytes_is_refused(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    before = set(redis_client.keys("*"))
    with pytest.raises(JobArgumentError, match="513 bytes long, more than the 512"):
        wj.note_run.options(unique_key="k" * 513).enqueue("x")
    assert set(redis_client.keys("*")) == before


def test_bad_unique_options_are_refused(app: Flask, ctx: None) -> None:
    with pytest.raises(ConfigurationError, match="unique_while='forever'"):
        wj.note_run.options(unique_key="k", unique_while="forever")
    with pytest.raises(ConfigurationError, match="unique_for"):
        wj.note_run.options(unique_key="k", unique_for=timedelta(0))
    with pytest.raises(ConfigurationError, match="cannot have depends_on"):
        wj.sync_account.options(depends_on=wj.double.enqueue(1)).enqueue(1)


@pytest.fixture
def unique_sched_app(redis_url: str, redis_client: redis.Redis, tmp_path: Any) -> Flask:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 's.db'}",
            "JOBS_SCHEDULE": {
                "sync": {"job": "jobs_app:add", "args": [1, 1], "every": 10, "unique": True},
            },
        }
    )
    with app.app_context():
        jobs_app.db.create_all()
    return app


def test_a_unique_schedule_skips_a_tick_while_its_run_is_not_finished(
    unique_sched_app: Flask,
) -> None:
    app = unique_sched_app
    scheduler = Scheduler(app, jobs.state(app))
    assert scheduler._lead()
    start = utcnow()
    with app.app_context():
        scheduler.fire_due(start)
        assert scheduler.fire_due(start + timedelta(seconds=10)) == 1
        assert scheduler.fire_due(start + timedelta(seconds=20)) == 0  # the first still queued
        assert jobs.get_queue().count == 1
        row = next(r for r in jobs.schedules.list() if r["name"] == "sync")
        assert row["skipped"] == 1 and row["last_skipped"] is not None
    listing = app.test_cli_runner().invoke(args=["jobs", "schedule", "list"])
    assert "1 skipped (still running)" in listing.output, listing.output
    page = app.test_client().get("/jobs/schedules")
    assert "1 skipped (still running)" in page.get_data(as_text=True)
    with app.app_context():
        jobs.get_queue().empty()  # the run ended (gone): the next tick runs
        assert scheduler.fire_due(start + timedelta(seconds=30)) == 1


def test_unique_must_be_true_or_false_in_a_schedule() -> None:
    with pytest.raises(ConfigurationError, match="unique must be True or False"):
        parse_schedule("s", {"job": "jobs_app:add", "every": 5, "unique": "yes"}, "UTC")
