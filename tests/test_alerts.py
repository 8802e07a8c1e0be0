"""Alerts: late schedules, queues that wait, failing functions, queues nobody serves; each
incident opens and resolves once (hooks called once each), shown and exported."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

import jobs_app
from conftest import flask_command, stop_process, text, wait_for
from flask_jobs.errors import ConfigurationError
from flask_jobs.history.alerts import evaluate
from flask_jobs.history.incidents import open_alerts, recent_incidents
from flask_jobs.history.recorder import HistoryRecorder
from flask_jobs.keys import (
    ALERTS_EVALUATED_KEY,
    ALERTS_LOCK_KEY,
    PAUSED_QUEUES_KEY,
    job_key,
    schedule_key,
)
from flask_jobs.reporting import Alert

SENT: list[Alert] = []


def record(alert: Alert) -> None:
    SENT.append(alert)


def broken(alert: Alert) -> None:
    raise RuntimeError("the pager is down")


@pytest.fixture
def make_app(
    redis_client: redis.Redis, redis_url: str, database_url: str, tmp_path: Any
) -> Iterator[Any]:
    made: list[Flask] = []

    def make(**config: Any) -> Flask:
        app = jobs_app.create_app(
            {"JOBS_REDIS_URL": redis_url, "SQLALCHEMY_DATABASE_URI": database_url, **config}
        )
        app.instance_path = str(tmp_path / "instance")
        with app.app_context():
            jobs_app.db.create_all()
        made.append(app)
        return app

    SENT.clear()
    yield make
    for app in made:
        with app.app_context():
            jobs_app.db.session.remove()
            jobs_app.db.drop_all()
            jobs_app.db.engine.dispose()


def _age(redis_client: redis.Redis, job_id: str, minutes: int) -> None:
    moment = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    redis_client.hset(job_key(job_id), "enqueued_at", moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def test_a_waiting_queue_with_no_worker_opens_once_and_resolves_once(
    make_app: Any, redis_client: redis.Redis
) -> None:
    app = make_app(JOBS_ALERT_QUEUE_WAIT="5m", JOBS_ON_ALERT=[broken, record])
    state = jobs_app.jobs.state(app)
    with app.app_context():
        job = jobs_app.add.enqueue(1, 2)
    assert [a.kind for a in evaluate(app, state)] == ["no_worker"]  # not waited 5 min yet
    _age(redis_client, job.id, 10)
    opened = evaluate(app, state)
    assert [a.key for a in opened] == ["queue_wait:default"]
    assert "waited 10 min, longer than 5 min" in opened[0].message
    assert evaluate(app, state) == []  # still open: nothing sent again
    assert [(a.key, a.state) for a in SENT] == [
        ("no_worker:default", "open"),
        ("queue_wait:default", "open"),
    ]
    assert SENT[0].app is app  # the hook that raised did not stop the next one
    assert {a.key for a in open_alerts(redis_client)} == {
        "no_worker:default",
        "queue_wait:default",
    }

    client = app.test_client()
    banner = text(client.get("/jobs/"))
    assert 'id="fj-alert-banner"' in banner and "2 open alerts" in banner
    page = text(client.get("/jobs/alerts"))
    assert "no worker listens on it" in page and 'href="/jobs/queues/default"' in page
    api = client.get("/jobs/api/alerts").get_json()
    assert {a["key"] for a in api["open"]} == {"no_worker:default", "queue_wait:default"}
    metrics = text(client.get("/jobs/metrics"))
    assert 'flask_jobs_alert_open{kind="queue_wait",subject="default"} 1.0' in metrics
    assert 'flask_jobs_alerts_open{kind="no_worker"} 1.0' in metrics

    # a queue paused on purpose waits on purpose: its incidents resolve
    redis_client.sadd(PAUSED_QUEUES_KEY, "default")
    paused = evaluate(app, state)
    assert sorted(a.key for a in paused) == ["no_worker:default", "queue_wait:default"]
    redis_client.srem(PAUSED_QUEUES_KEY, "default")
    assert len(evaluate(app, state)) == 2  # resumed, and still waiting: open again

    with app.app_context():
        job.delete()
    redis_client.delete("rq:queue:default")
    resolved = evaluate(app, state)
    assert sorted((a.key, a.state) for a in resolved) == [
        ("no_worker:default", "resolved"),
        ("queue_wait:default", "resolved"),
    ]
    assert evaluate(app, state) == []
    assert [a.state for a in SENT] == ["open"] * 2 + ["resolved"] * 2 + ["open"] * 2 + [
        "resolved"
    ] * 2  # once per incident and transition, whatever the number of evaluations
    assert open_alerts(redis_client) == []
    recent = recent_incidents(redis_client)
    assert {a.key for a in recent} == {"no_worker:default", "queue_wait:default"}
    assert all(a.resolved_at and a.resolved_at >= a.opened_at for a in recent)
    assert 'id="fj-alert-banner"' not in text(client.get("/jobs/"))
    assert "Recently resolved" in text(client.get("/jobs/alerts"))


def _attempts(app: Flask, func: str, finished: int, failed: int) -> None:
    now = datetime.now(timezone.utc)
    rows = [
        {
            "job_id": f"{func}-{i}",
            "attempt": 1,
            "func": func,
            "queue": "default",
            "args_truncated": False,
            "status": "failed" if i < failed else "finished",
            "status_rank": 3,
            "ended_at": now - timedelta(minutes=1),
            "updated_at": now,
        }
        for i in range(finished + failed)
    ]
    state = jobs_app.jobs.state(app)
    with state.history.engine(app).begin() as conn:
        conn.execute(sa.insert(state.history.table), rows)


def test_a_failure_rate_above_the_limit_needs_enough_runs(make_app: Any) -> None:
    app = make_app(JOBS_ALERT_FAILURE_RATE=0.2, JOBS_ALERT_MIN_RUNS=10, JOBS_ON_ALERT=record)
    state = jobs_app.jobs.state(app)
    _attempts(app, "app.tasks.busy", finished=12, failed=8)
    _attempts(app, "app.tasks.rare", finished=0, failed=2)  # 100%, but 2 runs only
    _attempts(app, "app.tasks.fine", finished=19, failed=1)
    opened = evaluate(app, state)
    assert [a.key for a in opened] == ["failure_rate:app.tasks.busy"]
    assert "8 of 20 runs failed in the last 15 min (40%, above 20%)" in opened[0].message
    assert opened[0].value == pytest.approx(0.4) and opened[0].threshold == 0.2
    page = text(app.test_client().get("/jobs/alerts"))
    assert 'href="/jobs/functions/app.tasks.busy?range=1h"' in page


def test_a_schedule_that_did_not_fire_is_a_dead_mans_switch(
    make_app: Any, redis_client: redis.Redis
) -> None:
    app = make_app(
        JOBS_SCHEDULE={
            "digest": {"job": "jobs_app:add", "every": "1h", "args": [1, 2]},
            "paused": {"job": "jobs_app:add", "every": "1h", "args": [1, 2]},
        },
        JOBS_ALERT_SCHEDULE_GRACE="2m",
        JOBS_ON_ALERT=record,
    )
    state = jobs_app.jobs.state(app)
    due = datetime.now(timezone.utc) - timedelta(minutes=10)
    for name in ("digest", "paused"):
        redis_client.hset(schedule_key(name), "next_fire", repr(due.timestamp()))
    redis_client.hset(schedule_key("paused"), "paused", "1")
    opened = evaluate(app, state)
    assert [a.key for a in opened] == ["schedule_late:digest"]
    assert "did not run" in opened[0].message and "flask jobs scheduler" in opened[0].message
    # the scheduler comes back and plans the next run: resolved
    later = datetime.now(timezone.utc) + timedelta(minutes=50)
    redis_client.hset(schedule_key("digest"), "next_fire", repr(later.timestamp()))
    assert [(a.key, a.state) for a in evaluate(app, state)] == [
        ("schedule_late:digest", "resolved")
    ]


def test_the_grace_can_be_turned_off_and_unset_checks_stay_quiet(
    make_app: Any, redis_client: redis.Redis
) -> None:
    app = make_app(
        JOBS_SCHEDULE={"digest": {"job": "jobs_app:add", "every": "1h", "args": [1, 2]}},
        JOBS_ALERT_SCHEDULE_GRACE=None,
    )
    past = datetime.now(timezone.utc) - timedelta(hours=3)
    redis_client.hset(schedule_key("digest"), "next_fire", repr(past.timestamp()))
    _attempts(app, "app.tasks.busy", finished=0, failed=30)
    assert evaluate(app, jobs_app.jobs.state(app)) == []


def test_one_recorder_evaluates_per_interval(make_app: Any, redis_client: redis.Redis) -> None:
    app = make_app()
    state = jobs_app.jobs.state(app)
    first = HistoryRecorder(app, state, name="r1")
    first._ensure_group()
    with app.app_context():
        jobs_app.add.enqueue(1, 2)
    first._sample_and_alert()
    assert redis_client.get(ALERTS_LOCK_KEY) == b"r1"
    stamp = redis_client.get(ALERTS_EVALUATED_KEY)
    assert stamp and [a.key for a in open_alerts(redis_client)] == ["no_worker:default"]
    HistoryRecorder(app, state, name="r2")._sample_and_alert()
    assert redis_client.get(ALERTS_EVALUATED_KEY) == stamp  # r2 left it to r1


def test_the_banner_says_when_nobody_evaluates_any_more(
    make_app: Any, redis_client: redis.Redis
) -> None:
    app = make_app()
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    redis_client.set(ALERTS_EVALUATED_KEY, repr(old.timestamp()))
    html = text(app.test_client().get("/jobs/queues"))
    assert "fj-alert-stale" in html and "no history recorder is running" in html


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("JOBS_ALERT_FAILURE_RATE", 1.5, "above 0 and at most 1"),
        ("JOBS_ALERT_FAILURE_RATE", "often", "above 0 and at most 1"),
        ("JOBS_ALERT_FAILURE_RATE", 0, "above 0 and at most 1"),
        ("JOBS_ALERT_QUEUE_WAIT", "soon", "expected a duration"),
        ("JOBS_ALERT_SCHEDULE_GRACE", -5, "expected a duration"),
        ("JOBS_ALERT_MIN_RUNS", 0, "whole number >= 1"),
        ("JOBS_ON_ALERT", "nowhere:nothing", "JOBS_ON_ALERT"),
        ("JOBS_ON_ALERT", 42, "list of functions"),
    ],
)
def test_bad_alert_settings_are_one_line_errors(
    redis_url: str, key: str, value: Any, says: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        jobs_app.create_app({"JOBS_REDIS_URL": redis_url, key: value})
    message = str(caught.value)
    assert key in message and says in message and "\n" not in message


def test_alert_settings_come_from_the_environment_as_text(redis_url: str) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "JOBS_ALERT_FAILURE_RATE": "0.25",
            "JOBS_ALERT_QUEUE_WAIT": "5m",
            "JOBS_ALERT_MIN_RUNS": "20",
            "JOBS_ON_ALERT": "test_alerts:record",
        }
    )
    config = jobs_app.jobs.state(app).config
    assert config.alert_failure_rate == 0.25 and config.alert_queue_wait == timedelta(minutes=5)
    assert config.alert_min_runs == 20 and config.on_alert == (record,)


def test_a_running_workers_recorder_samples_and_raises_the_alert(
    app: Flask, ctx: None, subprocess_env: dict[str, str], redis_client: redis.Redis
) -> None:
    jobs_app.add.options(queue="orphans").enqueue(1, 2)  # nobody listens on "orphans"
    proc = subprocess.Popen(flask_command("jobs", "worker", "default"), env=subprocess_env)
    try:
        wait_for(lambda: [a.key for a in open_alerts(redis_client)] == ["no_worker:orphans"], 60)
        state = jobs_app.jobs.state(app)
        table = state.history.samples.table

        def sampled() -> list[Any]:
            with state.history.engine(app).connect() as conn:
                return conn.execute(sa.select(table).where(table.c.span == 60)).all()

        rows = wait_for(sampled, 30)
        assert {row.queue: row.depth for row in rows}["orphans"] == 1
    finally:
        stop_process(proc)
