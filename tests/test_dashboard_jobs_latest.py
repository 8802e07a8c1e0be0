"""The jobs list shows one row per job (its latest attempt, with the number of attempts),
newest enqueued first; a toggle shows every attempt; the plan stays on indexes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from flask import Flask
from test_dashboard_oncall import ROW_ID

import jobs_app
from conftest import text
from flask_jobs.dashboard import listing
from flask_jobs.dashboard.listing import jobs_statement
from flask_jobs.dashboard.views_jobs import LIST_COLUMNS
from flask_jobs.history.query import HistoryQuery

BASE = datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)
LONG = "could not reach the billing service at https://billing.internal/v2/charge " * 3


def _rows(app: Flask) -> None:
    """Job "a" with three attempts (two retried, then failed), "b" and "c" with one each."""
    store = jobs_app.jobs.state(app).history
    rows = [
        ("a", 1, "retried", 0, "first line\nsecond"),
        ("a", 2, "retried", 5, "again"),
        ("b", 1, "finished", 7, None),
        ("a", 3, "failed", 9, LONG + "\nTraceback line"),
        ("c", 1, "finished", 3, None),
    ]
    with store.engine(app).begin() as conn:
        for job_id, attempt, status, minute, message in rows:
            conn.execute(
                store.table.insert().values(
                    job_id=f"job-{job_id}", attempt=attempt, status=status, status_rank=2,
                    args_truncated=False, func="jobs_app.add", queue="default", origin="view",
                    enqueued_at=BASE + timedelta(minutes=minute),
                    exc_type="ConnectionError" if message else None, exc_message=message,
                )
            )  # fmt: skip


def test_one_row_per_job_with_its_attempts_and_a_toggle(app: Flask, ctx: None, client: Any) -> None:
    _rows(app)
    page = text(client.get("/jobs/jobs"))
    assert ROW_ID.findall(page) == ["job-a", "job-b", "job-c"]  # newest enqueued first
    assert "one per job (its latest attempt)" in page and 'href="/jobs/jobs?attempts=all"' in page
    row_a = page.split('value="job-a"')[1].split("</tr>")[0]
    assert '<a href="/jobs/job/job-a#attempts" title="every attempt of this job">3</a>' in row_a
    # the error's first line, cut with an ellipsis; the whole id on hover, a copy button
    assert "ConnectionError</span>: could not reach the billing" in row_a
    shown = re.sub(r"<[^>]+>", "", row_a)  # the text, without the full message on hover
    assert "charge could…" in shown and "Traceback line" not in shown
    assert 'title="job-a"' in page and 'data-copy="job-a"' in page
    every = text(client.get("/jobs/jobs?attempts=all"))
    assert ROW_ID.findall(every) == ["job-a", "job-b", "job-a", "job-c", "job-a"]
    assert "one per attempt" in every and 'href="/jobs/jobs">Show one row per job</a>' in every
    # filters apply to the latest attempt; "retried" lists attempts (never a latest one)
    assert ROW_ID.findall(text(client.get("/jobs/jobs?status=failed"))) == ["job-a"]
    assert ROW_ID.findall(text(client.get("/jobs/jobs?status=retried"))) == ["job-a", "job-a"]
    # paging keeps the view
    first = text(client.get("/jobs/jobs?attempts=all&limit=2"))
    assert 'href="/jobs/jobs?attempts=all&amp;limit=2&amp;cursor=' in first
    assert client.get("/jobs/jobs?attempts=some").status_code == 400
    # the API answers by job too
    assert [j["id"] for j in client.get("/jobs/api/live/failed").get_json()["jobs"]] == []


def test_the_latest_attempt_is_found_through_the_unique_index(app: Flask, ctx: None) -> None:
    query = HistoryQuery(jobs_app.jobs.state(app).history, app)
    stmt = jobs_statement(query, limit=50, columns=LIST_COLUMNS)
    engine = jobs_app.jobs.state(app).history.engine(app)
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            plan = " | ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "flask_jobs_history USING INDEX ix_flask_jobs_history_enqueued_at" in plan
            assert "SEARCH later USING" in plan and "(job_id=? AND attempt>?)" in plan, plan
        else:
            # an empty table is read whole and sorted; with that off, the plan is the one
            # a million rows get: the enqueue-time index walked backwards, and the later attempts
            # looked up in the unique (job id, attempt) index
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.execute(sa.text(f"SET LOCAL {setting} = off"))
            plan = " | ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
            assert "Index Scan Backward using ix_flask_jobs_history_enqueued_at" in plan, plan
            assert "uq_flask_jobs_history_job_attempt on flask_jobs_history later" in plan, plan


def test_pages_after_a_cursor_are_the_rows_that_follow_it(
    app: Flask, ctx: None, monkeypatch: Any
) -> None:
    """Paging by cursor gives every matching row once, in order, whether the filter is read
    through its own index or the enqueue-time index is walked (a broad filter), with ties
    on the enqueue time and rows without one; an anchored page's plan starts at its anchor."""
    store = jobs_app.jobs.state(app).history
    with store.engine(app).begin() as conn:
        for n in range(240):
            conn.execute(
                store.table.insert().values(
                    job_id=f"job-{n % 200}", attempt=1 + n // 200, status_rank=2,
                    status="failed" if n % 3 else "finished", args_truncated=False,
                    func="jobs_app.add", queue="default",
                    # ties: four rows share each minute; every 25th has no enqueue time
                    enqueued_at=None if n % 25 == 0 else BASE + timedelta(minutes=n // 4),
                )
            )  # fmt: skip
        table = store.table
        everything = [dict(row._mapping) for row in conn.execute(sa.select(table))]
    latest = {}
    for row in everything:
        if row["attempt"] >= latest.get(row["job_id"], 0):
            latest[row["job_id"]] = row["attempt"]
    expected = [
        row["id"]
        for row in sorted(
            everything,
            key=lambda row: (
                row["enqueued_at"] is None,
                -(
                    row["enqueued_at"].replace(tzinfo=None) - BASE.replace(tzinfo=None)
                ).total_seconds()
                if row["enqueued_at"]
                else 0,
                -row["id"],
            ),
        )
        if row["status"] == "failed" and row["attempt"] == latest[row["job_id"]]
    ]
    query = HistoryQuery(store, app)
    for selective in (5_000, 1):  # the status index, then the enqueue-time walk
        monkeypatch.setattr(listing, "SELECTIVE", selective)
        seen: list[int] = []
        cursor = None
        while True:
            page = listing.jobs_page(
                query, status="failed", cursor=cursor, limit=7, columns=LIST_COLUMNS
            )
            seen += [row["id"] for row in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected, selective
    anchor = (expected[50], BASE + timedelta(minutes=20))
    stmt = listing.jobs_statement(query, status="failed", anchor=anchor, columns=LIST_COLUMNS)
    engine = store.engine(app)
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            plan = " | ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "ix_flask_jobs_history_enqueued_at (enqueued_at>? AND enqueued_at<?)" in plan
        else:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.execute(sa.text(f"SET LOCAL {setting} = off"))
            plan = " | ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
            assert "Index Cond: ((enqueued_at IS NOT NULL) AND (enqueued_at <= " in plan, plan
