"""The outbox (JOBS_OUTBOX): jobs written in the caller's transaction, relayed to Redis
once, even when the web process dies after its commit or Redis is down."""

from __future__ import annotations

import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from transaction_support import killed_web_process, queued, spare_redis_fixture  # noqa: F401

import jobs_app
from conftest import flask_command, stop_process, wait_for
from flask_jobs import ConfigurationError, HeldStatus, Jobs, enqueue_many
from flask_jobs.keys import OUTBOX_RELAY_LOCK_KEY
from flask_jobs.outbox import OutboxRelay
from jobs_app import Note, db, jobs


def rows() -> int:
    return int(db.session.execute(sa.select(sa.func.count()).select_from(outbox())).scalar_one())


def outbox() -> sa.Table:
    assert jobs.outbox_table is not None
    return jobs.outbox_table


def relay(app: Flask) -> OutboxRelay:
    return OutboxRelay(app, jobs.state(app))


def test_outbox_needs_a_database() -> None:
    app = Flask("no_db")
    app.config.update(TESTING=True, JOBS_REDIS_URL="redis://127.0.0.1:6379/3", JOBS_OUTBOX=True)
    with pytest.raises(ConfigurationError, match="JOBS_OUTBOX = True needs a database"):
        Jobs(app)


def test_the_table_is_on_db_metadata() -> None:
    assert "flask_jobs_outbox" in db.metadata.tables


def test_written_in_the_transaction_and_relayed(
    outbox_app: Flask, redis_client: redis.Redis, work: Any
) -> None:
    db.session.add(Note(text="order"))
    job = jobs_app.count_notes.enqueue()
    assert job.get_status() == HeldStatus.PENDING_COMMIT
    assert rows() == 1  # in our own transaction, not yet committed
    db.session.commit()
    assert job.get_status() == HeldStatus.IN_OUTBOX
    assert queued(redis_client) == 0
    assert relay(outbox_app).relay_once() == 1
    assert rows() == 0
    assert queued(redis_client) == 1
    assert job.get_status() == "queued"
    # RQ's own classes read it: the data contract of a plain `rq worker`
    fetched = Job.fetch(job.id, connection=redis_client, serializer=JSONSerializer)
    assert fetched.func_name == "jobs_app.count_notes"
    assert fetched.origin == "default"
    work()
    assert job.get_status() == "finished"
    assert job.return_value() == 1
    assert not redis_client.keys("flask_jobs:outbox:sent:*")  # marks go once the rows do


def test_rollback_leaves_no_row(outbox_app: Flask, redis_client: redis.Redis) -> None:
    db.session.add(Note(text="order"))
    job = jobs_app.add.enqueue(1, 2)
    db.session.rollback()
    assert job.get_status() == HeldStatus.DROPPED
    assert rows() == 0
    assert relay(outbox_app).relay_once() == 0


def test_scheduled_many_and_by_path(outbox_app: Flask, redis_client: redis.Redis) -> None:
    db.session.add(Note(text="order"))
    later = jobs_app.add.enqueue_at(datetime.now(timezone.utc) + timedelta(hours=1), 1, 2)
    soon = jobs_app.add.enqueue_in(timedelta(minutes=5), 3, 4)
    many = enqueue_many(jobs_app.add, [((i, i), {}) for i in range(5)])
    by_path = jobs.enqueue("jobs_app:plain_function", 4)
    first = jobs_app.add.options(at_front=True).enqueue(0, 0)
    db.session.commit()
    assert rows() == 9
    assert relay(outbox_app).relay_once() == 9
    assert redis_client.zcard("rq:scheduled:default") == 2
    assert later.get_status() == soon.get_status() == "scheduled"
    assert redis_client.lindex("rq:queue:default", 0) == first.id.encode()
    assert queued(redis_client) == 7
    assert {job.get_status() for job in [*many, by_path]} == {"queued"}
    assert b"rq:queue:default" in redis_client.smembers("rq:queues")
    assert Queue("default", connection=redis_client).count == 7
    events = [fields for _, fields in redis_client.xrange("flask_jobs:history")]
    assert len(events) == 9
    assert {e[b"status"] for e in events} == {b"queued"}


def test_a_row_relayed_twice_makes_one_job(outbox_app: Flask, redis_client: redis.Redis) -> None:
    db.session.add(Note(text="order"))
    jobs_app.add.enqueue(1, 2)
    db.session.commit()
    crashing = relay(outbox_app)
    real_push = crashing.push

    def push_then_die(batch: Any) -> int:
        real_push(batch)
        raise SystemExit("relay killed after the push, before its commit")

    crashing.push = push_then_die  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        crashing.relay_once()
    assert rows() == 1 and queued(redis_client) == 1
    redis_client.delete(OUTBOX_RELAY_LOCK_KEY)  # the dead relay's lease runs out
    assert relay(outbox_app).relay_once() == 1  # the restarted relay: pushes nothing new
    assert rows() == 0
    assert queued(redis_client) == 1
    assert len(redis_client.keys("rq:job:*")) == 1


def test_depends_on_is_refused_with_the_fix(outbox_app: Flask) -> None:
    db.session.add(Note(text="order"))
    parent = jobs_app.add.options(on_commit=False).enqueue(1, 2)
    with pytest.raises(ValueError, match=r"on_commit=False"):
        jobs_app.add.options(depends_on=parent).enqueue(1, 2)


def test_two_relays_share_the_rows(outbox_app: Flask, redis_client: redis.Redis) -> None:
    db.session.add(Note(text="order"))
    enqueue_many(jobs_app.add, [((i, i), {}) for i in range(300)])
    db.session.commit()
    relays = [relay(outbox_app), relay(outbox_app)]
    for each in relays:
        each.batch = 20
    postgres = db.engine.dialect.name == "postgresql"

    def drain(each: OutboxRelay) -> None:
        for _ in range(200):
            each.relay_once()

    threads = [threading.Thread(target=drain, args=(each,)) for each in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rows() == 0
    assert queued(redis_client) == 300
    assert len(set(redis_client.lrange("rq:queue:default", 0, -1))) == 300
    if postgres:  # SKIP LOCKED: both took batches
        assert all(each.relayed for each in relays)
    else:  # one relay at a time, under the lease
        assert sorted(each.relayed for each in relays) == [0, 300]


def test_redis_down_keeps_the_rows(
    spare_redis: Any, tmp_path: Path, redis_client: redis.Redis
) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": f"redis://127.0.0.1:{spare_redis.port}/0",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'down.db'}",
            "JOBS_OUTBOX": True,
        },
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        db.create_all()
        db.session.add(Note(text="order"))
        job = jobs_app.add.enqueue(1, 2)
        spare_redis.stop()  # Redis is down: the commit does not care
        db.session.commit()
        assert rows() == 1
        with pytest.raises(redis.ConnectionError):
            relay(app).relay_once()
        assert rows() == 1
        spare_redis.start()  # back, empty
        assert relay(app).relay_once() == 1
        assert rows() == 0
        assert job.get_status() == "queued"
        db.session.remove()
        db.engine.dispose()


def test_killed_between_commit_and_push_loses_nothing(
    subprocess_env: dict[str, str], redis_client: redis.Redis, redis_url: str, database_url: str
) -> None:
    config = {"SQLALCHEMY_DATABASE_URI": database_url, "JOBS_OUTBOX": True}
    job_id = killed_web_process(subprocess_env, config)
    assert not redis_client.exists(f"rq:job:{job_id}")
    # A worker, with its relay beside it, runs the job exactly once.
    env = {**subprocess_env, "FLASK_APP": f"jobs_app:create_app({config!r})"}
    cli = subprocess.run(
        flask_command("jobs", "outbox", "status"), env=env, capture_output=True, text=True
    )
    assert "waiting: 1" in cli.stdout, cli.stderr
    worker = subprocess.Popen(
        flask_command("jobs", "worker", "--threads", "1"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        key = f"rq:job:{job_id}"
        wait_for(lambda: redis_client.hget(key, "status") == b"finished", timeout=60)
    finally:
        stop_process(worker)
    app = jobs_app.create_app({**config, "JOBS_REDIS_URL": redis_url})
    with app.app_context():
        try:
            assert rows() == 0
            assert jobs.fetch_job(job_id).return_value() == 1
        finally:
            db.session.remove()
            db.drop_all()  # the database may be a shared PostgreSQL one
            db.engine.dispose()
    assert queued(redis_client) == 0
    assert len(redis_client.keys("rq:job:*")) == 1


def test_cli_relay_once(outbox_app: Flask, redis_client: redis.Redis, runner: Any) -> None:
    db.session.add(Note(text="order"))
    jobs_app.add.enqueue(1, 2)
    db.session.commit()
    result = runner.invoke(args=["jobs", "outbox", "status"])
    assert "waiting: 1" in result.output
    result = runner.invoke(args=["jobs", "outbox", "relay", "--once"])
    assert result.exit_code == 0, result.output
    assert "relayed 1 job(s)" in result.output
    assert queued(redis_client) == 1


def test_scheduler_runs_a_relay(
    subprocess_env: dict[str, str], redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'sched.db'}", "JOBS_OUTBOX": True}
    app = jobs_app.create_app({**config, "JOBS_REDIS_URL": redis_url})
    with app.app_context():
        db.create_all()
        db.session.add(Note(text="order"))
        job = jobs_app.add.enqueue(1, 2)
        db.session.commit()
        db.engine.dispose()
    env = {**subprocess_env, "FLASK_APP": f"jobs_app:create_app({config!r})"}
    scheduler = subprocess.Popen(
        flask_command("jobs", "scheduler"), env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: redis_client.exists(f"rq:job:{job.id}"), timeout=60)
    finally:
        stop_process(scheduler)
    assert queued(redis_client) == 1
