"""The on-call defects of issue 16 that only a browser shows (real Chromium): 1-4, 10, 16."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from flask import Flask
from test_dashboard_oncall import make_app

import jobs_app
from browser import browser_page, serve

PAGES = (
    "/jobs/", "/jobs/jobs", "/jobs/failed", "/jobs/scheduled", "/jobs/retrying", "/jobs/running",
    "/jobs/failures", "/jobs/queues",
    "/jobs/workers", "/jobs/schedules", "/jobs/audit",
)  # fmt: skip


def _fill_history(app: Flask, count: int = 60) -> list[str]:
    """``count`` realistic failed attempts, written in an order unlike their enqueue order."""
    store = jobs_app.jobs.state(app).history
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    rows = [
        {
            "job_id": job_id,
            "attempt": 3,
            "status": "failed",
            "status_rank": 2,
            "args_truncated": False,
            "func": "example_app.tasks.flaky_sync",
            "queue": "default",
            "origin": "schedule:crm-sync",
            "enqueued_at": now - timedelta(seconds=n),
            "ended_at": now - timedelta(seconds=n),
            "run_seconds": 0.004,
            "exc_type": "ConnectionError",
            "exc_message": f"upstream crm did not answer after 30 s (try {n}) " + "y" * 120,
        }
        for n, job_id in enumerate(ids)
    ]
    with store.engine(app).begin() as conn:
        for row in rows[::2] + rows[1::2]:  # ids out of enqueue order
            conn.execute(store.table.insert().values(**row))
    return ids  # newest enqueued first


def test_1_refresh_keeps_every_filter(app: Flask, ctx: None) -> None:
    with serve(app) as base, browser_page() as page:
        for path, kept in (
            ("/jobs/jobs?status=failed&queue=default", ("status=failed", "queue=default")),
            ("/jobs/?range=24h", ("range=24h",)),
            ("/jobs/failures?window=30d", ("window=30d",)),
        ):
            page.goto(base + path)
            with page.expect_navigation():
                page.select_option("select[name=poll]", "10")
            assert page.url.startswith(base + path.partition("?")[0] + "?"), page.url
            for part in (*kept, "poll=10"):
                assert part in page.url, (part, page.url)
            assert page.locator("select[name=poll]").input_value() == "10"


def _chart_labels(page: Any) -> list[str]:
    """The x-axis labels of the chart."""
    texts = page.eval_on_selector_all(
        "svg.fj-chart text.fj-x", "els => els.map(e => e.textContent)"
    )
    return list(texts)


def test_2_the_seven_day_chart_is_labelled_with_dates(app: Flask, ctx: None) -> None:
    _fill_history(app, 3)
    with serve(app) as base, browser_page() as page:
        page.goto(f"{base}/jobs/?range=7d")
        labels = _chart_labels(page)
        assert len(labels) >= 6 and len(set(labels)) == len(labels), labels
        assert all(re.fullmatch(r"[A-Z][a-z]{2} \d\d [A-Z][a-z]{2}", label) for label in labels)
        page.goto(f"{base}/jobs/?range=24h")
        day_labels = _chart_labels(page)
        assert re.fullmatch(r"\d\d [A-Z][a-z]{2} \d\d:\d\d", day_labels[0]), day_labels


def test_3_and_4_dense_rows_newest_first_fit_the_screen(app: Flask, ctx: None) -> None:
    ids = _fill_history(app)
    with serve(app) as base, browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(f"{base}/jobs/jobs")
        shown = page.eval_on_selector_all(
            "#fj-jobs tbody a[title]:first-of-type", "links => links.map(a => a.title)"
        )
        assert [i for i in shown if i in ids] == ids[:50]  # newest enqueued first
        heights = page.eval_on_selector_all(
            "#fj-jobs tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
        )
        line = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('#fj-jobs td')).lineHeight)"
        )
        # one line per row: the error clips (its first line is in the title)
        assert len(heights) == 50 and max(heights) < 1.6 * line + 12, (max(heights), line)
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 1400
        table = page.locator("#fj-jobs").bounding_box()
        assert table is not None and table["width"] > 1100  # the space is used
        page.set_viewport_size({"width": 800, "height": 900})
        for path in PAGES:
            page.goto(base + path)
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 800, (path, width)
            if path == "/jobs/jobs":  # still one line per row
                heights = page.eval_on_selector_all(
                    "#fj-jobs tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
                )
                assert max(heights) < 1.6 * line + 12, (max(heights), line)


def test_10_error_messages_and_drill_down_links(app: Flask, ctx: None, work: Any) -> None:
    jobs_app.fail.enqueue("the disk is full\nsecond line")
    jobs_app.add.enqueue(1, 2)
    work()
    with serve(app) as base, browser_page() as page:
        page.goto(f"{base}/jobs/jobs")
        assert page.locator("#fj-jobs").inner_text().count("RuntimeError: the disk is full") == 1
        assert "second line" not in page.locator("#fj-jobs").inner_text()
        page.click("#fj-jobs a:has-text('fail')")
        assert page.url.endswith("/jobs/jobs?function=jobs_app.fail")
        assert page.locator("input[name=job_ids]").count() == 1
        page.goto(f"{base}/jobs/")
        with page.expect_navigation():
            page.click("#fj-queue-counts a:has-text('default')")
        assert page.url.endswith("/jobs/jobs?queue=default")
        page.goto(f"{base}/jobs/")
        with page.expect_navigation():
            page.click(".fj-card a[href$='/jobs/failed']")
        assert page.locator("h1").inner_text() == "Failed now"
        assert page.locator("#fj-live-jobs").inner_text().count("the disk is full") == 1


def test_16_user_read_only_favicon_and_clean_filter_urls(
    redis_url: str, redis_client: redis.Redis, tmp_path: Any
) -> None:
    user = {"name": "ann", "sign_out_url": "/logout"}
    app = make_app(redis_url, tmp_path, user=user, JOBS_DASHBOARD_AUTH=lambda: "read")

    with app.app_context():
        jobs_app.db.create_all()
    missing: list[str] = []
    with serve(app) as base, browser_page() as page:
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        page.goto(f"{base}/jobs/jobs")
        header = page.locator(".fj-header").inner_text()
        assert "read-only" in header and "signed in as\nann" in header
        assert page.locator(".fj-header a:has-text('Sign out')").get_attribute("href") == "/logout"
        assert page.evaluate("document.querySelector('link[rel=icon]').href").startswith(
            "data:image/svg+xml"
        )
        page.select_option("select[name=status]", "failed")
        page.click("button:has-text('Filter')")  # htmx, then the address bar
        page.wait_for_url(re.compile(r"status=failed"))
        assert page.url == f"{base}/jobs/jobs?status=failed"
        with page.expect_navigation():
            page.evaluate("document.querySelector('form.fj-filters').submit()")  # without htmx
        assert page.url == f"{base}/jobs/jobs?status=failed"
        page.wait_for_timeout(300)
    assert missing == []
    with app.app_context():
        jobs_app.db.drop_all()
