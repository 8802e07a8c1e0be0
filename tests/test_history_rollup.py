"""Hourly roll-ups: week-long aggregates read closed hours from a summary, and stay exact."""

from __future__ import annotations

import logging
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import jobs_app
from flask_jobs.history.functions import FunctionStats
from flask_jobs.history.rollup import ROLLUP_DELAY, hour_of

FUNCS = ["app.tasks.report", "app.tasks.email", "app.tasks.sync"]
STATUSES = ["finished"] * 6 + ["failed", "retried", "abandoned", "canceled"]
ERRORS = ["TimeoutError", "ValueError"]


def fill(app: Flask, count: int, span: timedelta, seed: int = 7) -> list[dict[str, Any]]:
    """Insert ``count`` ended attempts spread over the last ``span``, like a recorded history."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    rows = []
    for i in range(count):
        status = rng.choice(STATUSES)
        ended = now - timedelta(seconds=rng.uniform(0, span.total_seconds()))
        failed = status in ("failed", "retried", "abandoned")
        rows.append(
            {
                "job_id": f"job-{seed}-{i}",
                "attempt": 1,
                "func": rng.choice(FUNCS),
                "queue": "default",
                "args_truncated": False,
                "status": status,
                "status_rank": 3,
                "enqueued_at": ended - timedelta(seconds=2),
                "started_at": ended - timedelta(seconds=1),
                "ended_at": ended,
                "run_seconds": 1.0,
                "exc_type": rng.choice(ERRORS) if failed else None,
                "updated_at": ended,
            }
        )
    state = jobs_app.jobs.state(app)
    with state.history.engine(app).begin() as conn:
        conn.execute(sa.insert(state.history.table), rows)
    return rows


def rolled_hours(app: Flask) -> int:
    state = jobs_app.jobs.state(app)
    hourly = state.history.hourly
    with state.history.engine(app).connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).where(hourly.c.func == "*")) or 0)


def expected_series(rows: list[dict[str, Any]], size: float) -> Counter[tuple[int, str]]:
    counted: Counter[tuple[int, str]] = Counter()
    for row in rows:
        if row["status"] in ("finished", "failed", "retried", "abandoned"):
            outcome = "finished" if row["status"] == "finished" else "failed"
            counted[(int(row["ended_at"].timestamp() // size), outcome)] += 1
    return counted


def series_counts(series: list[dict[str, Any]], size: float) -> Counter[tuple[int, str]]:
    counted: Counter[tuple[int, str]] = Counter()
    for point in series:
        for outcome in ("finished", "failed"):
            if point[outcome]:
                counted[(int(point["at"].timestamp() // size), outcome)] = point[outcome]
    return counted


def test_week_aggregates_match_a_plain_count(app: Flask, ctx: None) -> None:
    rows = fill(app, 3000, timedelta(days=6))
    history = jobs_app.jobs.history
    size = 7200.0
    series = history.throughput(timedelta(days=7), timedelta(hours=2))
    assert series_counts(series, size) == expected_series(rows, size)
    # every closed hour of the week is rolled up once, and reused
    assert rolled_hours(app) >= 7 * 24 - 1
    assert series_counts(history.throughput(timedelta(days=7), timedelta(hours=2)), size) == (
        expected_series(rows, size)
    )

    stats = {s["func"]: s for s in history.function_stats(timedelta(days=7))}
    for func in FUNCS:
        mine = [r for r in rows if r["func"] == func]
        assert stats[func]["total"] == len(mine)
        assert stats[func]["finished"] == sum(r["status"] == "finished" for r in mine)
        assert stats[func]["failed"] == sum(
            r["status"] in ("failed", "retried", "abandoned") for r in mine
        )

    groups = {(g["func"], g["exc_type"]): g for g in history.top_exceptions(timedelta(days=7), 50)}
    expected = Counter((r["func"], r["exc_type"]) for r in rows if r["exc_type"])
    assert {key: g["count"] for key, g in groups.items()} == dict(expected)
    for key, group in groups.items():
        ended = [r["ended_at"] for r in rows if (r["func"], r["exc_type"]) == key]
        assert abs((group["first_seen"] - min(ended)).total_seconds()) < 1e-3
        assert abs((group["last_seen"] - max(ended)).total_seconds()) < 1e-3


def test_a_late_attempt_reopens_its_rolled_hour(app: Flask, ctx: None) -> None:
    rows = fill(app, 500, timedelta(hours=20))
    history = jobs_app.jobs.history
    before = sum(p["failed"] for p in history.throughput(timedelta(hours=24), timedelta(hours=1)))
    late_end = datetime.now(timezone.utc) - ROLLUP_DELAY - timedelta(hours=3)
    assert rolled_hours(app) >= 20
    # the recorder catches up on an attempt that ended hours ago (after a database outage)
    store = jobs_app.jobs.state(app).history
    store.write(
        app,
        [
            {
                "job_id": "late-one",
                "attempt": "1",
                "status": "failed",
                "func": FUNCS[0],
                "exc_type": "LateError",
                "started_at": str(late_end.timestamp() - 1),
                "ended_at": str(late_end.timestamp()),
            }
        ],
    )
    series = history.throughput(timedelta(hours=24), timedelta(hours=1))
    assert sum(p["failed"] for p in series) == before + 1
    slot = [p for p in series if p["at"] == hour_of(late_end)]
    assert slot and slot[0]["failed"] == 1 + sum(
        1
        for r in rows
        if hour_of(r["ended_at"]) == hour_of(late_end)
        and r["status"] in ("failed", "retried", "abandoned")
    )
    assert ("app.tasks.report", "LateError") in {
        (g["func"], g["exc_type"]) for g in history.top_exceptions(timedelta(hours=24), 50)
    }


def test_without_the_rollup_table_counts_live(
    app: Flask, ctx: None, caplog: pytest.LogCaptureFixture
) -> None:
    rows = fill(app, 400, timedelta(hours=30))
    store = jobs_app.jobs.state(app).history
    store.hourly.drop(store.engine(app))  # an app that has not migrated the new table yet
    with caplog.at_level(logging.WARNING, logger="flask_jobs.history"):
        stats = {s["func"]: s for s in jobs_app.jobs.history.function_stats(timedelta(days=2))}
    assert sum(s["total"] for s in stats.values()) == len(rows)
    assert "flask_jobs_history_hourly" in caplog.text and "history init" in caplog.text
    store.hourly.create(store.engine(app))  # the fixture drops it again


def test_recorder_chore_rolls_up_and_purge_drops_old_hours(app: Flask, ctx: None) -> None:
    fill(app, 300, timedelta(hours=40))
    store = jobs_app.jobs.state(app).history
    store.roll_up(app)
    assert rolled_hours(app) >= 8 * 24 - 1  # the chore covers the last 8 days, empty hours too
    store.purge(app, timedelta(hours=10))
    hourly = store.hourly
    with store.engine(app).connect() as conn:
        oldest = conn.scalar(sa.select(sa.func.min(hourly.c.hour)))
    assert oldest is not None
    assert hour_of(oldest) >= hour_of(datetime.now(timezone.utc) - timedelta(hours=10))


def test_kept_sums_are_read_again_when_a_late_write_rolls_an_hour_anew(
    app: Flask, ctx: None
) -> None:
    rows = fill(app, 600, timedelta(days=3))
    history = jobs_app.jobs.history
    state = jobs_app.jobs.state(app)
    size = 7200.0
    first = history.throughput(timedelta(days=7), timedelta(hours=2))
    assert series_counts(first, size) == expected_series(rows, size)
    # kept per process: asked again, the same sums come back without a query
    assert history.throughput(timedelta(days=7), timedelta(hours=2)) == first
    function = FunctionStats(state.history, app)
    week, two_hours = timedelta(days=7), timedelta(hours=2)
    runs = function.detail(rows[0]["func"], week, two_hours)["runs"]
    assert function.detail(rows[0]["func"], week, two_hours)["runs"] == runs
    # a late attempt (the recorder catching up) drops its hour's roll-up, as the writer does
    late = {**rows[0], "job_id": "late-one", "status": "failed", "exc_type": "ValueError"}
    late["ended_at"] = datetime.now(timezone.utc) - timedelta(days=2)
    with state.history.engine(app).begin() as conn:
        conn.execute(sa.insert(state.history.table), [late])
        state.history.rollup.invalidate(conn, {hour_of(late["ended_at"])})
    after = history.throughput(timedelta(days=7), timedelta(hours=2))
    assert series_counts(after, size) == expected_series([*rows, late], size)
    stats = {s["func"]: s for s in history.function_stats(timedelta(days=7))}
    assert stats[late["func"]]["total"] == sum(r["func"] == late["func"] for r in [*rows, late])
    assert function.detail(rows[0]["func"], week, two_hours)["runs"] == runs + 1
    exceptions = {(g["func"], g["exc_type"]): g["count"] for g in history.top_exceptions(
        timedelta(days=7), limit=100
    )}  # fmt: skip
    failed = [r for r in [*rows, late] if r["exc_type"]]
    assert exceptions[(late["func"], "ValueError")] == sum(
        r["func"] == late["func"] and r["exc_type"] == "ValueError" for r in failed
    )
