"""Per-function pages: runs, failure rate, run and wait percentiles from the roll-ups,
failures grouped by exception and message, schedules; bad names and ranges are 4xx."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

import jobs_app
from conftest import text
from flask_jobs.history import histogram
from flask_jobs.history.functions import RANGES, FunctionStats

FUNC = "app.tasks.report"
OTHER = "app.tasks.email"


def fill(
    app: Flask,
    days: float = 10,
    count: int = 3000,
    seed: int = 3,
    funcs: tuple[str, str] = (FUNC, OTHER),
) -> list[dict[str, Any]]:
    """Attempts of two functions over ``days``: run times 0.1-10 s, waits 0-2 s, some failures."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    rows = []
    for i in range(count):
        ended = now - timedelta(seconds=rng.uniform(0, days * 86_400))
        func = funcs[0] if i % 3 else funcs[1]
        failed = rng.random() < 0.2
        run = 10 ** rng.uniform(-1, 1)
        wait = rng.uniform(0, 2)
        message = rng.choice(["timed out after 30 s", "bad row 17\nmore lines"])
        rows.append(
            {
                "job_id": f"job-{seed}-{i}",
                "attempt": 1,
                "func": func,
                "queue": "default",
                "args_truncated": False,
                "status": "failed" if failed else "finished",
                "status_rank": 3,
                "enqueued_at": ended - timedelta(seconds=run + wait),
                "started_at": ended - timedelta(seconds=run),
                "ended_at": ended,
                "run_seconds": run,
                "wait_seconds": wait,
                "exc_type": ("TimeoutError" if "timed" in message else "ValueError")
                if failed
                else None,
                "exc_message": message if failed else None,
                "updated_at": ended,
            }
        )
    state = jobs_app.jobs.state(app)
    with state.history.engine(app).begin() as conn:
        conn.execute(sa.insert(state.history.table), rows)
    return rows


def exact(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@pytest.fixture
def filled(app: Flask, ctx: None) -> Iterator[list[dict[str, Any]]]:
    yield fill(app)


def test_the_function_page_reads_percentiles_from_the_roll_ups(
    app: Flask, filled: list[dict[str, Any]]
) -> None:
    stats = FunctionStats(jobs_app.jobs.state(app).history, app)
    since = datetime.now(timezone.utc) - timedelta(days=7)
    week = [r for r in filled if r["func"] == FUNC and r["ended_at"] >= since]
    detail = stats.detail(FUNC, *RANGES["7d"])
    # whole hours: the window starts at the top of its first hour, so a few more may count
    assert len(week) <= detail["runs"] <= len(week) + 40
    failed = sum(r["status"] == "failed" for r in week)
    assert failed <= detail["failed"] <= failed + 40
    assert 0.1 < detail["failure_rate"] < 0.3
    for name in ("run", "wait"):
        values = [r[f"{name}_seconds"] for r in week]
        for label, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            got, want = detail[f"{name}_{label}"], exact(values, fraction)
            assert abs(got - want) / want < 0.15, (name, label, got, want)
    state = jobs_app.jobs.state(app)
    with state.history.engine(app).connect() as conn:
        hourly = state.history.hourly
        rolled = conn.execute(
            sa.select(hourly.c.run_hist).where(hourly.c.func == FUNC, hourly.c.status == "finished")
        ).all()
    assert len(rolled) > 100  # the week came from roll-ups, with their histograms
    assert sum(histogram.decode(row.run_hist).total() for row in rolled) > 0
    assert (
        len(detail["series"]) >= 84 and sum(p["runs"] for p in detail["series"]) == detail["runs"]
    )


def test_the_functions_index_and_page_render_every_range(
    app: Flask, client: Any, filled: list[dict[str, Any]]
) -> None:
    for chosen in RANGES:
        index = client.get(f"/jobs/functions?range={chosen}")
        assert index.status_code == 200
        html = text(index)
        assert f'href="/jobs/functions/{FUNC}?range={chosen}"' in html
        page = client.get(f"/jobs/functions/{FUNC}?range={chosen}")
        assert page.status_code == 200, chosen
        html = text(page)
        assert html.count('<svg class="fj-chart"') == 3
        assert "p50 / p95 / p99" in html
    html = text(client.get(f"/jobs/functions/{FUNC}?range=30d"))
    # failures grouped by exception and first line of the message, with a link to the list
    assert "TimeoutError" in html and "timed out after 30 s" in html
    assert "bad row 17" in html and "more lines" not in html
    assert "/jobs/jobs?" in html and "status=failed" in html
    # charts: legend, several y ticks, dates on a range of days, a title per bar
    assert html.count('class="fj-y"') >= 3 * 3 and "<title>" in html and "Finished" in html


def test_a_bare_name_redirects_and_unknown_or_bad_input_is_a_clear_4xx(
    client: Any, filled: list[dict[str, Any]]
) -> None:
    moved = client.get("/jobs/functions/report?range=7d")
    assert moved.status_code == 302
    assert moved.headers["Location"].endswith(f"/jobs/functions/{FUNC}?range=7d")
    missing = client.get("/jobs/functions/app.tasks.nope")
    assert missing.status_code == 404 and "no run of a function named" in text(missing)
    assert "fj-header" in text(missing)  # the dashboard's own frame
    bad = client.get(f"/jobs/functions/{FUNC}?range=2y")
    assert bad.status_code == 400 and "must be one of 1h, 24h, 7d, 30d" in text(bad)
    assert client.get("/jobs/functions/%3Cscript%3E").status_code == 404
    api = client.get("/jobs/api/functions/app.tasks.nope")
    assert api.status_code == 404 and "no run of a function" in api.get_json()["error"]
    assert client.get("/jobs/api/functions?range=1y").status_code == 400


def test_the_json_api_has_the_same_figures(client: Any, filled: list[dict[str, Any]]) -> None:
    listed = client.get("/jobs/api/functions?range=24h").get_json()
    by_name = {row["func"]: row for row in listed["functions"]}
    assert set(by_name) == {FUNC, OTHER}
    one = client.get(f"/jobs/api/functions/{FUNC}?range=24h").get_json()
    assert one["runs"] == by_name[FUNC]["runs"] and one["run_p95"] == by_name[FUNC]["run_p95"]
    assert one["bucket_seconds"] == 3600 and len(one["series"]) >= 24
    assert {g["exc_type"] for g in one["failures"]} <= {"TimeoutError", "ValueError"}
    assert one["schedules"] == []


def test_the_page_lists_the_functions_schedules(
    redis_client: redis.Redis, redis_url: str, database_url: str, tmp_path: Any
) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JOBS_SCHEDULE": {"nightly-report": {"job": "jobs_app:add", "cron": "0 3 * * *"}},
        }
    )
    with app.app_context():
        jobs_app.db.create_all()
        try:
            fill(app, days=1, count=30, funcs=("jobs_app.add", "jobs_app.fail"))
            html = text(app.test_client().get("/jobs/functions/jobs_app.add"))
            assert "nightly-report" in html and "No schedule runs this function" not in html
            other = text(app.test_client().get("/jobs/functions/jobs_app.fail"))
            assert "No schedule runs this function" in other
        finally:
            jobs_app.db.session.remove()
            jobs_app.db.drop_all()
            jobs_app.db.engine.dispose()


def test_a_roll_up_table_without_histograms_is_made_again(app: Flask, ctx: None) -> None:
    state = jobs_app.jobs.state(app)
    engine = state.history.engine(app)
    state.history.hourly.drop(engine)
    old = sa.Table(
        state.history.hourly.name,
        sa.MetaData(),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("func", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("exc_type", sa.String(255), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("run_seconds", sa.Float),
        sa.Column("first_ended", sa.DateTime(timezone=True)),
        sa.Column("last_ended", sa.DateTime(timezone=True)),
    )
    old.create(engine)
    rows = fill(app, days=3, count=300)
    stats = FunctionStats(state.history, app)
    # before: the roll-ups cannot be read, so every row is counted (still right)
    assert stats.detail(FUNC, *RANGES["7d"])["runs"] == sum(r["func"] == FUNC for r in rows)
    state.history.create(app)
    columns = {c["name"] for c in sa.inspect(engine).get_columns(state.history.hourly.name)}
    assert {"run_hist", "wait_hist"} <= columns
    assert stats.detail(FUNC, *RANGES["7d"])["runs"] == sum(r["func"] == FUNC for r in rows)


def test_an_hour_rolled_again_after_a_late_write_is_read_again(
    app: Flask, filled: list[dict[str, Any]]
) -> None:
    state = jobs_app.jobs.state(app)
    stats = FunctionStats(state.history, app)
    before = {row["func"]: row["runs"] for row in stats.functions(RANGES["7d"][0])}
    assert before == {row["func"]: row["runs"] for row in stats.functions(RANGES["7d"][0])}
    late = datetime.now(timezone.utc) - timedelta(days=2)
    row = {**filled[0], "job_id": "late-one", "func": FUNC, "ended_at": late, "status": "finished"}
    with state.history.engine(app).begin() as conn:
        conn.execute(sa.insert(state.history.table), [row])
        state.history.rollup.invalidate(conn, {late.replace(minute=0, second=0, microsecond=0)})
    after = {row["func"]: row["runs"] for row in stats.functions(RANGES["7d"][0])}
    assert after[FUNC] == before[FUNC] + 1 and after[OTHER] == before[OTHER]


def test_the_index_of_failures_is_added_to_an_existing_history(app: Flask, ctx: None) -> None:
    state = jobs_app.jobs.state(app)
    engine = state.history.engine(app)
    name = "ix_flask_jobs_history_failed_func_ended"
    [index] = [i for i in state.history.table.indexes if i.name == name]
    index.drop(engine)
    assert name not in {i["name"] for i in sa.inspect(engine).get_indexes("flask_jobs_history")}
    state.history.create(app)
    assert name in {i["name"] for i in sa.inspect(engine).get_indexes("flask_jobs_history")}


def test_the_index_of_failures_is_partial_on_the_history_database(app: Flask, ctx: None) -> None:
    # Its WHERE is added for the database the app names: on both PostgreSQL and SQLite.
    state = jobs_app.jobs.state(app)
    engine = state.history.engine(app)
    name = "ix_flask_jobs_history_failed_func_ended"
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        if engine.dialect.name == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE name = :name"
    )
    with engine.connect() as conn:
        definition = conn.execute(sa.text(query), {"name": name}).scalar_one()
    assert "WHERE" in definition.upper() and "abandoned" in definition
