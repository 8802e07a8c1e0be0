"""Queue samples: one recorder a minute stores each queue's depth and oldest wait; the
queues page and a queue's page chart them; they are purged with the history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask

import jobs_app
from conftest import text
from flask_jobs.history.recorder import HistoryRecorder
from flask_jobs.history.samples import sample_queues
from flask_jobs.keys import QUEUE_SAMPLE_LOCK_KEY, job_key


def recorder(app: Flask, name: str = "r1") -> HistoryRecorder:
    found = HistoryRecorder(app, jobs_app.jobs.state(app), name=name)
    found._ensure_group()
    return found


def samples(app: Flask) -> list[Any]:
    state = jobs_app.jobs.state(app)
    table = state.history.samples.table
    with state.history.engine(app).connect() as conn:
        minutes = sa.select(table).where(table.c.span == 60).order_by(table.c.queue)
        return conn.execute(minutes).all()


def test_one_recorder_a_minute_samples_every_queue(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    jobs = [jobs_app.add.enqueue(1, 2) for _ in range(3)]
    ten_minutes_ago = datetime.now(timezone.utc) - timedelta(minutes=10)
    redis_client.hset(
        job_key(jobs[0].id), "enqueued_at", ten_minutes_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    rows = sample_queues(redis_client, ["default", "empty"])
    by_queue = {row["queue"]: row for row in rows}
    assert by_queue["default"]["depth"] == 3 and by_queue["empty"]["depth"] == 0
    assert 590 < by_queue["default"]["oldest_wait"] < 700
    assert by_queue["empty"]["oldest_wait"] is None

    recorder(app, "r1")._sample_and_alert()
    recorder(app, "r2")._sample_and_alert()  # the lock: the minute is sampled once
    stored = samples(app)
    assert [(row.queue, row.depth) for row in stored] == [("default", 3)]
    assert stored[0].oldest_wait > 590
    assert redis_client.ttl(QUEUE_SAMPLE_LOCK_KEY) > 50


def store_samples(
    app: Flask, queue: str, points: list[tuple[timedelta, int, float | None]]
) -> None:
    state = jobs_app.jobs.state(app)
    now = datetime.now(timezone.utc)
    with state.history.engine(app).connect() as conn:
        for ago, depth, wait in points:
            state.history.samples.write(
                conn, now - ago, [{"queue": queue, "depth": depth, "oldest_wait": wait}]
            )


def test_the_queues_page_and_a_queues_page_chart_the_samples(
    app: Flask, ctx: None, client: Any
) -> None:
    jobs_app.add.enqueue(1, 2)
    store_samples(app, "default", [(timedelta(minutes=m), 10 - m, 60.0 * m) for m in range(10)])
    store_samples(app, "reports", [(timedelta(days=2, minutes=m), m, None) for m in range(5)])
    page = text(client.get("/jobs/queues"))
    assert 'id="fj-queue-charts"' in page and page.count('<svg class="fj-chart"') == 2
    assert 'href="/jobs/queues/default"' in page
    assert "<title>" in page
    week = text(client.get("/jobs/queues?range=7d"))
    assert "reports" in week  # older samples show in the longer range, with dates
    one = client.get("/jobs/queues/default?range=1h")
    assert one.status_code == 200
    html = text(one)
    assert "Jobs waiting" in html and "Wait of the oldest job" in html
    assert html.count('<svg class="fj-chart"') == 2
    data = client.get("/jobs/api/queue-samples?range=1h&queue=default").get_json()
    points = data["queues"]["default"]
    assert len(points) == 10 and max(p["depth"] for p in points) == 10
    # a week reads the hourly rows: each hour's peak depth and longest wait
    week_points = client.get("/jobs/api/queue-samples?range=7d").get_json()["queues"]
    assert set(week_points) == {"default", "reports"}
    assert max(p["depth"] for p in week_points["default"]) == 10
    assert max(p["oldest_wait"] for p in week_points["default"]) == 540.0


def test_bad_queue_or_range_is_a_clear_4xx(app: Flask, client: Any) -> None:
    missing = client.get("/jobs/queues/nope")
    assert missing.status_code == 404 and "no queue named" in text(missing)
    assert client.get("/jobs/queues/default?range=5y").status_code == 400
    api = client.get("/jobs/api/queue-samples?queue=nope")
    assert api.status_code == 404 and "no queue named" in api.get_json()["error"]
    bad = client.get("/jobs/api/queue-samples?range=forever")
    assert bad.status_code == 400 and "must be one of" in bad.get_json()["error"]


def test_samples_are_retained_like_the_history(app: Flask, ctx: None) -> None:
    store_samples(app, "default", [(timedelta(days=40), 5, 1.0), (timedelta(minutes=1), 2, 1.0)])
    jobs_app.jobs.state(app).history.purge(app, timedelta(days=30))
    assert [row.depth for row in samples(app)] == [2]


def test_without_the_samples_table_the_pages_still_show_the_queues(
    app: Flask, ctx: None, client: Any
) -> None:
    state = jobs_app.jobs.state(app)
    state.history.samples.table.drop(state.history.engine(app))  # an app not migrated yet
    for path in ("/jobs/queues", "/jobs/queues/default"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "queue samples cannot be read" in text(page)
    api = client.get("/jobs/api/queue-samples")
    assert api.status_code == 503 and api.get_json()["status"] == 503
