"""Enqueue after commit (JOBS_ENQUEUE_ON_COMMIT): held until the transaction commits,
dropped on rollback, savepoints and several commits as SQLAlchemy has them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from transaction_support import killed_web_process, queued, spare_redis_fixture  # noqa: F401

import jobs_app
from flask_jobs import HeldStatus, JobArgumentError, enqueue_many
from jobs_app import Note, db, jobs


def write(text: str = "order") -> Note:
    note = Note(text=text)
    db.session.add(note)
    return note


@pytest.mark.usefixtures("ctx")
def test_held_until_commit_then_pushed(redis_client: redis.Redis, work: Any) -> None:
    write()
    job = jobs_app.add.enqueue(1, 2)
    assert job.get_status() == HeldStatus.PENDING_COMMIT
    assert queued(redis_client) == 0
    db.session.commit()
    assert queued(redis_client) == 1
    assert job.get_status() == "queued"
    work()
    assert job.get_status() == "finished"
    assert job.return_value() == 3


@pytest.mark.usefixtures("ctx")
def test_rollback_drops(redis_client: redis.Redis) -> None:
    write()
    job = jobs_app.add.enqueue(1, 2)
    db.session.rollback()
    assert job.get_status() == HeldStatus.DROPPED
    assert queued(redis_client) == 0
    db.session.commit()
    assert queued(redis_client) == 0


@pytest.mark.usefixtures("ctx")
def test_outside_a_transaction_or_without_writes_enqueues_at_once(
    redis_client: redis.Redis,
) -> None:
    jobs_app.add.enqueue(1, 1)
    assert queued(redis_client) == 1
    db.session.query(Note).count()  # a read begins a transaction, but writes nothing
    assert db.session().in_transaction()
    jobs_app.add.enqueue(1, 1)
    assert queued(redis_client) == 2


@pytest.mark.usefixtures("ctx")
def test_per_call_option_and_config_switch(app: Flask, redis_client: redis.Redis) -> None:
    write()
    jobs_app.add.options(on_commit=False).enqueue(1, 1)
    assert queued(redis_client) == 1
    jobs.state(app).config = jobs.state(app).config.__class__(
        **{**jobs.state(app).config.__dict__, "enqueue_on_commit": False}
    )
    jobs_app.add.enqueue(1, 1)
    assert queued(redis_client) == 2
    jobs_app.add.options(on_commit=True).enqueue(1, 1)
    assert queued(redis_client) == 2
    db.session.commit()
    assert queued(redis_client) == 3


@pytest.mark.usefixtures("ctx")
def test_savepoints(redis_client: redis.Redis) -> None:
    write("outer")
    outer = jobs_app.add.enqueue(0, 0)
    with pytest.raises(ValueError), db.session.begin_nested():
        write("inner, rolled back")
        inner = jobs_app.add.enqueue(1, 0)
        raise ValueError
    assert inner.get_status() == HeldStatus.DROPPED
    with db.session.begin_nested():
        write("inner, released")
        kept = jobs_app.add.enqueue(2, 0)
    assert kept.get_status() == HeldStatus.PENDING_COMMIT
    assert queued(redis_client) == 0
    db.session.commit()
    assert queued(redis_client) == 2
    assert outer.get_status() == kept.get_status() == "queued"
    assert inner.get_status() == HeldStatus.DROPPED


@pytest.mark.usefixtures("ctx")
def test_several_commits_in_one_context(redis_client: redis.Redis) -> None:
    write()
    first = jobs_app.add.enqueue(1, 0)
    db.session.commit()
    assert queued(redis_client) == 1
    write()
    second = jobs_app.add.enqueue(2, 0)
    assert second.get_status() == HeldStatus.PENDING_COMMIT
    db.session.rollback()
    write()
    third = jobs_app.add.enqueue(3, 0)
    db.session.commit()
    assert (first.get_status(), second.get_status(), third.get_status()) == (
        "queued",
        HeldStatus.DROPPED,
        "queued",
    )
    assert queued(redis_client) == 2


@pytest.mark.usefixtures("ctx")
def test_every_way_to_enqueue_waits(redis_client: redis.Redis) -> None:
    write()
    held = [
        jobs_app.add.enqueue_in(timedelta(hours=1), 1, 1),
        jobs_app.add.enqueue_at(datetime.now(timezone.utc) + timedelta(hours=1), 1, 2),
        *enqueue_many(jobs_app.add, [((i, i), {}) for i in range(3)]),
        jobs.enqueue("jobs_app:plain_function", 4),
    ]
    assert {job.get_status() for job in held} == {HeldStatus.PENDING_COMMIT}
    assert redis_client.zcard("rq:scheduled:default") == 0
    db.session.commit()
    assert redis_client.zcard("rq:scheduled:default") == 2
    assert queued(redis_client) == 4
    assert [job.get_status() for job in held] == ["scheduled"] * 2 + ["queued"] * 4


@pytest.mark.usefixtures("ctx")
def test_a_bad_argument_fails_at_enqueue(redis_client: redis.Redis) -> None:
    write()
    with pytest.raises(JobArgumentError):
        jobs_app.echo.enqueue(object())
    db.session.commit()
    assert queued(redis_client) == 0


@pytest.mark.usefixtures("ctx")
def test_session_closed_without_commit_drops(redis_client: redis.Redis) -> None:
    write()
    job = jobs_app.add.enqueue(1, 2)
    db.session.remove()  # what the end of a request does
    assert job.get_status() == HeldStatus.DROPPED
    assert queued(redis_client) == 0


def test_in_a_view(client: Any, redis_client: redis.Redis, app: Flask) -> None:
    @app.post("/order/<int:fail>")
    def order(fail: int) -> str:
        note = write("order")
        db.session.flush()
        job = jobs_app.count_notes.enqueue()
        if fail:
            raise RuntimeError("the view fails before its commit")
        db.session.commit()
        return f"{note.id} {job.id}"

    app.testing = False  # an error is a 500, as in production
    assert client.post("/order/1").status_code == 500
    assert queued(redis_client) == 0
    response = client.post("/order/0")
    assert response.status_code == 200
    assert redis_client.lrange("rq:queue:default", 0, -1) == [response.text.split()[1].encode()]


@pytest.mark.usefixtures("ctx")
def test_eager_runs_at_commit(app: Flask) -> None:
    state = jobs.state(app)
    state.config = state.config.__class__(**{**state.config.__dict__, "eager": True})
    write("first")
    db.session.flush()
    job = jobs_app.count_notes.enqueue()
    assert job.get_status() == HeldStatus.PENDING_COMMIT
    db.session.commit()
    assert job.get_status() == "finished"
    assert job.return_value() == 1  # it ran after the commit: it sees the row
    write()
    dropped = jobs_app.count_notes.enqueue()
    db.session.rollback()
    assert dropped.get_status() == HeldStatus.DROPPED


def test_redis_down_at_commit_logs_each_lost_job(
    spare_redis: Any, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": f"redis://127.0.0.1:{spare_redis.port}/0",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'down.db'}",
        },
        instance_path=str(tmp_path / "instance"),
    )
    with app.app_context():
        db.create_all()
        write()
        lost = [jobs_app.add.enqueue(1, 2), jobs_app.add.enqueue(3, 4)]
        spare_redis.stop()
        with caplog.at_level(logging.ERROR, logger="flask_jobs.enqueue"):
            db.session.commit()  # the commit itself succeeds
        assert db.session.query(Note).count() == 1
        assert [job.get_status() for job in lost] == [HeldStatus.DROPPED] * 2
        message = caplog.text
        assert "LOST 1 job(s)" in message
        assert all(job.id in message for job in lost)
        db.session.remove()
        db.engine.dispose()


def test_killed_between_commit_and_push_loses_the_job(
    subprocess_env: dict[str, str], redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    job_id = killed_web_process(subprocess_env, {"SQLALCHEMY_DATABASE_URI": url})
    # The order is committed; its job never reached Redis (documented: use JOBS_OUTBOX).
    app = jobs_app.create_app({"SQLALCHEMY_DATABASE_URI": url, "JOBS_REDIS_URL": redis_url})
    with app.app_context():
        assert db.session.query(Note).count() == 1
        db.engine.dispose()
    assert not redis_client.exists(f"rq:job:{job_id}")
    assert queued(redis_client) == 0
