"""The dashboard's jobs list on a million history rows: one row per job, and every attempt.

Writes 1,000,000 rows (800,000 jobs, the first 100,000 with three attempts, the
first two of them "retried") into the database at URL (its history table is
dropped and made again), then times the list's query, first page and next page,
for each filter (median of 7), and prints the plan of the unfiltered one.

    .venv/bin/python bench/jobs_list.py sqlite:///bench.db
    .venv/bin/python bench/jobs_list.py postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import jobs_app
from flask_jobs.dashboard.listing import jobs_page, jobs_statement
from flask_jobs.dashboard.views_jobs import LIST_COLUMNS
from flask_jobs.history.query import HistoryQuery

CASES: dict[str, dict[str, str]] = {
    "no filter": {},
    "status=failed": {"status": "failed"},
    "queue=low": {"queue": "low"},
    "function=flaky": {"function": "flaky"},
    "function=app.tasks.flaky": {"function": "app.tasks.flaky"},
}
BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _row(j: int, attempt: int) -> dict[str, Any]:
    retried = attempt < 3 and j < 100_000
    bad = retried or j % 50 == 0
    return {
        "job_id": f"job-{j}", "attempt": attempt, "status_rank": 2, "args_truncated": False,
        "func": "app.tasks.flaky" if j % 10 == 0 else f"app.tasks.t{j % 7}",
        "queue": "low" if j % 3 == 0 else "default",
        "status": "retried" if retried else "failed" if j % 50 == 0 else "finished",
        "enqueued_at": BASE + timedelta(seconds=j + attempt * 10), "origin": "view",
        "exc_type": "ValueError" if bad else None, "exc_message": "bad value" if bad else None,
    }  # fmt: skip


def fill(engine: sa.Engine, table: sa.Table) -> None:
    rows: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for j in range(800_000):
            rows += [_row(j, attempt) for attempt in ((1, 2, 3) if j < 100_000 else (1,))]
            if len(rows) >= 50_000:
                conn.execute(table.insert(), rows)
                rows = []
        if rows:
            conn.execute(table.insert(), rows)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"ANALYZE {table.name}")


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///bench.db"
    app = jobs_app.create_app({"JOBS_REDIS_URL": "redis://127.0.0.1:6379/15",
                               "SQLALCHEMY_DATABASE_URI": url})  # fmt: skip
    with app.app_context():
        state = jobs_app.jobs.state(app)
        table = state.history.table
        engine = state.history.engine(app)
        table.drop(engine, checkfirst=True)
        table.create(engine)
        started = time.time()
        fill(engine, table)
        print(f"{engine.dialect.name}: 1,000,000 rows written in {time.time() - started:.0f} s")
        query = HistoryQuery(state.history, app)
        for every in (False, True):
            for name, filters in CASES.items():
                first, following = [], []
                for _ in range(7):
                    start = time.perf_counter()
                    page = jobs_page(query, columns=LIST_COLUMNS, every_attempt=every, **filters)
                    first.append((time.perf_counter() - start) * 1000)
                    start = time.perf_counter()
                    jobs_page(query, columns=LIST_COLUMNS, every_attempt=every,
                              cursor=page.next_cursor, **filters)  # fmt: skip
                    following.append((time.perf_counter() - start) * 1000)
                view = "every attempt" if every else "one per job"
                print(f"{view:13} {name:26} first page {statistics.median(first):6.1f} ms, "
                      f"next page {statistics.median(following):6.1f} ms")  # fmt: skip
        stmt = jobs_statement(query, limit=50, columns=LIST_COLUMNS)
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        with engine.connect() as conn:
            for line in conn.exec_driver_sql(explain + sql):
                print("   ", line[-1])
        table.drop(engine)


if __name__ == "__main__":
    main()
