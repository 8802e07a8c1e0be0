"""The dashboard's jobs list: filters, paging, bulk and matching actions, and failures."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from rq.job import JobStatus

import jobs_app
from browser import browser_page, serve
from conftest import csrf, drain_history, failed_jobs, status_of, text
from flask_jobs import FlaskJob

ROW_ID = re.compile(r'name="job_ids" value="([^"]+)"')


def test_list_shows_jobs_and_filters_work(app: Flask, ctx: None, client: Any, work: Any) -> None:
    added = jobs_app.add.enqueue(1, 2)
    failed = jobs_app.fail.enqueue("disk full")
    echoed = jobs_app.echo.options(queue="other").enqueue("customer-4711")
    work(queues=["default", "other"])

    def listed(query: str = "") -> set[str]:
        page = client.get(f"/jobs/jobs{query}")
        assert page.status_code == 200, text(page)
        return set(ROW_ID.findall(text(page)))

    page = text(client.get("/jobs/jobs"))
    assert "<h1>Jobs <span" in page and 'class="fj-filters"' in page
    assert f'href="/jobs/job/{failed.id}"' in page and "RuntimeError" in page
    assert 'class="fj-status fj-status-failed"' in page
    assert listed() == {added.id, failed.id, echoed.id}
    assert listed("?status=failed") == {failed.id}
    assert listed("?queue=other") == {echoed.id}
    assert listed("?function=jobs_app:add") == {added.id}
    assert listed("?text=4711") == {echoed.id}
    assert listed("?text=disk+full") == {failed.id}  # the exception's message
    assert listed("?origin=code") == {added.id, failed.id, echoed.id}
    assert listed("?since=2999-01-01T00:00") == set()
    assert listed("?until=2999-01-01T00:00&since=2000-01-01T00:00") == {
        added.id,
        failed.id,
        echoed.id,
    }
    # input that must be harmless, not an error
    assert listed("?text=%27%20OR%201%3D1%20--") == set()
    assert listed("?text=%E2%9C%93%20caf%C3%A9%20%25_") == set()
    assert listed("?function=<script>alert(1)</script>") == set()
    # htmx asks for the rows only
    partial = client.get("/jobs/jobs?status=failed", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in text(partial) and set(ROW_ID.findall(text(partial))) == {failed.id}


def test_pagination_returns_every_row_once(app: Flask, ctx: None, client: Any) -> None:
    ids = {jobs_app.add.enqueue(i, i).id for i in range(23)}
    drain_history(app)
    seen: list[str] = []
    url: str | None = "/jobs/jobs?limit=5"
    pages = 0
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200
        body = text(page)
        seen.extend(ROW_ID.findall(body))
        found = re.search(r'<a href="([^"]+)" rel="next">', body)
        url = html.unescape(found.group(1)) if found else None
        pages += 1
    assert pages == 5
    assert len(seen) == 23 and set(seen) == ids


def test_post_without_a_token_is_a_400(app: Flask, ctx: None, client: Any, work: Any) -> None:
    (job,) = failed_jobs(work, "x")
    csrf(client)
    for url, data in (
        (f"/jobs/job/{job.id}/requeue", {}),
        (f"/jobs/job/{job.id}/requeue", {"csrf_token": "forged" * 8}),
        ("/jobs/jobs/bulk", {"action": "requeue", "job_ids": job.id}),
        ("/jobs/failures/requeue-group", {"function": "jobs_app.fail", "exc_type": "x"}),
    ):
        response = client.post(url, data=data)
        assert response.status_code == 400
        assert "CSRF token is missing or stale" in text(response)
    assert status_of(job.id) == JobStatus.FAILED


def test_bulk_requeue_cancel_and_delete(
    app: Flask, ctx: None, client: Any, work: Any, redis_client: redis.Redis
) -> None:
    one, two, three = failed_jobs(work, "a", "b", "c")
    token = csrf(client)
    back = "status=failed&text=%3Cx%3E"
    response = client.post(
        "/jobs/jobs/bulk",
        data={
            "csrf_token": token,
            "action": "requeue",
            "job_ids": [one.id, two.id, one.id, "not an id!", "missing-job"],
            "back": back,
        },
    )
    assert response.status_code == 303
    assert response.location.startswith("/jobs/jobs?status=failed&text=%3Cx%3E&done=")
    message = text(client.get(response.location))
    assert "Requeued 2 job(s). Skipped 2" in message
    assert status_of(one.id) == status_of(two.id) == JobStatus.QUEUED
    assert status_of(three.id) == JobStatus.FAILED

    later = jobs_app.add.enqueue_in(timedelta(hours=1), 1, 1)
    response = client.post(
        "/jobs/jobs/bulk",
        data={"csrf_token": token, "action": "cancel", "job_ids": [later.id, three.id]},
    )
    assert "Canceled+1+job" in response.location
    assert status_of(later.id) == JobStatus.CANCELED

    data = {"csrf_token": token, "action": "delete", "job_ids": [three.id, later.id]}
    confirm = client.post("/jobs/jobs/bulk", data=data)
    assert confirm.status_code == 200 and "Delete 2 job(s) from Redis?" in text(confirm)
    assert FlaskJob.exists(three.id, connection=redis_client)
    response = client.post("/jobs/jobs/bulk", data={**data, "confirm": "yes"})
    assert response.status_code == 303 and "Deleted+2+job" in response.location
    assert not FlaskJob.exists(three.id, connection=redis_client)
    assert not FlaskJob.exists(later.id, connection=redis_client)

    # the way back never leaves the dashboard, and bad input is a 400
    response = client.post(
        "/jobs/jobs/bulk",
        data={"csrf_token": token, "action": "requeue", "back": "https://evil.example/"},
    )
    assert response.status_code == 303 and response.location.startswith("/jobs/jobs?done=")
    bad = client.post("/jobs/jobs/bulk", data={"csrf_token": token, "action": "explode"})
    assert bad.status_code == 400 and "'action' must be one of" in html.unescape(text(bad))
    many = client.post(
        "/jobs/jobs/bulk",
        data={"csrf_token": token, "action": "requeue", "job_ids": [str(i) for i in range(1001)]},
    )
    assert many.status_code == 400


def test_requeue_all_matching(app: Flask, ctx: None, client: Any, work: Any) -> None:
    jobs = failed_jobs(work, "net down 1", "net down 2", "net down 3", "disk full")
    requeued_already = jobs[2]
    token = csrf(client)
    client.post(f"/jobs/job/{requeued_already.id}/requeue", data={"csrf_token": token})
    page = text(client.get("/jobs/jobs?status=failed&text=net+down"))
    assert "Requeue all matching failed jobs" in page
    form = {"csrf_token": token, "status": "failed", "text": "net down"}
    confirm = client.post("/jobs/jobs/requeue-matching", data=form)
    assert confirm.status_code == 200
    body = text(confirm)
    assert "Requeue 2 failed job(s)?" in body
    assert "3 job(s) in the history match; 2 of them are failed" in body
    assert status_of(jobs[0].id) == JobStatus.FAILED  # nothing happens before the confirmation
    response = client.post("/jobs/jobs/requeue-matching", data={**form, "confirm": "yes"})
    assert response.status_code == 303
    assert "Requeued+2+failed+job" in response.location
    assert response.location.startswith("/jobs/jobs?status=failed&text=net+down&done=")
    assert status_of(jobs[0].id) == status_of(jobs[1].id) == JobStatus.QUEUED
    assert status_of(jobs[3].id) == JobStatus.FAILED
    bad = client.post("/jobs/jobs/requeue-matching", data={**form, "since": "yesterday"})
    assert bad.status_code == 400


def test_requeue_all_matching_runs_large_sets_in_the_background(
    app: Flask, ctx: None, client: Any, work: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_jobs.dashboard import views_jobs

    monkeypatch.setattr(views_jobs, "INLINE_LIMIT", 2)  # "large" is anything above 2 here
    jobs = failed_jobs(work, "quota 1", "quota 2", "quota 3", "other")
    token = csrf(client)
    form = {"csrf_token": token, "status": "failed", "text": "quota"}
    body = text(client.post("/jobs/jobs/requeue-matching", data=form))
    assert "Requeue 3 failed job(s)?" in body
    assert "a background job on queue &#39;default&#39; requeues them" in body
    response = client.post("/jobs/jobs/requeue-matching", data={**form, "confirm": "yes"})
    assert response.status_code == 303 and response.location.startswith("/jobs/job/")
    assert "in+the+background" in response.location
    assert status_of(jobs[0].id) == JobStatus.FAILED  # a worker does it, not the request
    background = jobs_app.jobs.fetch_job(response.location.split("/jobs/job/")[1].split("?")[0])
    assert background.origin == "default" and background.meta["origin"] == "dashboard"
    work()
    background.refresh()
    assert background.return_value() == {
        "matched": 3,
        "requeued": 3,
        "skipped": 0,
        "capped": False,
    }
    drain_history(app)
    attempts = {job.id: len(jobs_app.jobs.history.get(job.id)) for job in jobs}
    assert attempts == {jobs[0].id: 2, jobs[1].id: 2, jobs[2].id: 2, jobs[3].id: 1}
    page = text(client.get(f"/jobs/job/{background.id}"))
    assert "3 of 3 checked, 3 requeued" in page


def test_failures_are_grouped(
    app: Flask, ctx: None, client: Any, work: Any, redis_client: redis.Redis
) -> None:
    jobs = failed_jobs(work, "a", "b", "c")
    jobs_app.always_fails.enqueue(1)
    work()
    page = client.get("/jobs/failures")
    assert page.status_code == 200
    body = text(page)
    rows = re.findall(
        r"<tr>\s*<td><a href=\"[^\"]+\"><code>([^<]+)</code></a></td>\s*<td[^>]*><a [^>]+>([^<]+)"
        r"</a></td>\s*<td class=\"fj-num\"><a [^>]+>(\d+)</a></td>",
        body,
    )
    assert ("jobs_app.fail", "RuntimeError", "3") in rows
    assert ("jobs_app.always_fails", "ValueError", "3") in rows  # attempts, retries included
    assert len(rows) == 2
    assert "/jobs/jobs?status=failed&amp;function=jobs_app.fail&amp;text=RuntimeError" in body
    listed = text(client.get("/jobs/jobs?status=failed&function=jobs_app.fail&text=RuntimeError"))
    assert set(ROW_ID.findall(listed)) == {job.id for job in jobs}
    assert client.get("/jobs/failures?window=1h").status_code == 200
    assert client.get("/jobs/failures?window=forever").status_code == 400

    token = csrf(client)
    group = {"csrf_token": token, "function": "jobs_app.fail", "exc_type": "RuntimeError"}
    client.post(f"/jobs/job/{jobs[0].id}/requeue", data={"csrf_token": token})
    response = client.post("/jobs/failures/requeue-group", data={**group, "window": "7d"})
    assert response.status_code == 303 and response.location.startswith("/jobs/failures?")
    assert "Requeued+2+failed+job" in response.location
    assert all(status_of(job.id) == JobStatus.QUEUED for job in jobs)
    work()  # they fail again
    confirm = client.post("/jobs/failures/delete-group", data=group)
    assert confirm.status_code == 200 and "Delete failed jobs" in text(confirm)
    response = client.post("/jobs/failures/delete-group", data={**group, "confirm": "yes"})
    assert response.status_code == 303 and "Deleted+3+failed+job" in response.location
    assert not any(FlaskJob.exists(job.id, connection=redis_client) for job in jobs)
    missing = client.post("/jobs/failures/requeue-group", data={"csrf_token": token})
    assert missing.status_code == 400


def test_filter_select_all_and_requeue_in_a_real_browser(app: Flask, ctx: None, work: Any) -> None:
    jobs = failed_jobs(work, "a", "b")
    jobs_app.add.enqueue(1, 1)
    work()
    with serve(app) as base, browser_page() as page:
        page.goto(f"{base}/jobs/jobs")
        assert page.locator("input[name=job_ids]").count() == 3
        page.select_option("select[name=status]", "failed")
        page.click("button:has-text('Filter')")  # htmx swaps the rows in, and the URL follows
        page.wait_for_function("document.querySelectorAll('input[name=job_ids]').length === 2")
        assert "status=failed" in page.url
        page.check("th input[type=checkbox]")  # select all on this page
        assert page.locator("input[name=job_ids]:checked").count() == 2
        with page.expect_navigation():
            page.click("button[value=requeue]")
        assert page.locator(".fj-flash").inner_text() == "Requeued 2 job(s)."
        assert "status=failed" in page.url
    assert all(status_of(job.id) == JobStatus.QUEUED for job in jobs)


def test_the_list_refreshes_itself_with_the_current_filters(
    app: Flask, ctx: None, work: Any, client: Any
) -> None:
    failed_jobs(work, "first")
    jobs_app.add.enqueue(1, 1)
    work()
    drain_history(app)
    page = text(client.get("/jobs/jobs?status=failed"))
    assert 'hx-get="/jobs/jobs?status=failed"' in page and "every 5s" in page
    assert "hx-trigger" not in text(client.get("/jobs/jobs?poll=0")).split("fj-job-rows")[1]
    with serve(app) as base, browser_page() as page:
        page.goto(f"{base}/jobs/jobs?poll=2")
        page.select_option("select[name=status]", "failed")
        page.click("button:has-text('Filter')")
        page.wait_for_function("document.querySelectorAll('input[name=job_ids]').length === 1")
        newer = failed_jobs(work, "second")[0]
        jobs_app.add.enqueue(2, 2)  # finished: the failed filter must keep it out
        work()
        drain_history(app)
        page.wait_for_selector(f"input[value='{newer.id}']", timeout=15_000)
        assert page.locator("input[name=job_ids]").count() == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=-1", "'limit' must be between 1 and 500"),
        ("limit=abc", "'limit' must be a whole number"),
        ("limit=501", "'limit' must be between 1 and 500"),
        ("limit=99999999999999999999999", "'limit' must be between 1 and 500"),
        ("cursor=abc", "'cursor' must be a whole number"),
        ("cursor=-5", "'cursor' must be between"),
        ("cursor=99999999999999999999999", "'cursor' must be between"),
        ("since=garbage", "'since' must be a date and time"),
        ("until=2024-13-45T99:99", "'until' must be a date and time"),
        ("since=0001-01-01T00:00%2B01:00", "'since' must be a date and time"),
        ("status=exploded", "'status' must be one of"),
        ("queue=no%20spaces", "is not a queue name"),
        ("text=a%00b", "must not contain control characters"),
        ("function=" + "f" * 300, "'function' is too long"),
    ],
)
def test_bad_query_arguments_are_a_400(app: Flask, client: Any, query: str, message: str) -> None:
    page = client.get(f"/jobs/jobs?{query}")
    assert page.status_code == 400
    assert message in html.unescape(text(page))


def test_without_history_the_list_says_so_and_the_detail_uses_redis(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = jobs_app.create_app({"JOBS_REDIS_URL": redis_url, "JOBS_HISTORY_ENABLED": False})
    client = app.test_client()
    with app.app_context():
        job = jobs_app.add.enqueue(1, 2)
    for url in ("/jobs/jobs", "/jobs/failures"):
        page = client.get(url)
        assert page.status_code == 200 and "The job history is off" in text(page)
    detail = client.get(f"/jobs/job/{job.id}")
    assert detail.status_code == 200 and "jobs_app.add" in text(detail)
    assert "The job history is off." in text(detail)


def test_history_database_down_is_a_clear_503(redis_url: str, redis_client: redis.Redis) -> None:
    app = jobs_app.create_app(
        {
            "JOBS_REDIS_URL": redis_url,
            "JOBS_HISTORY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/x",
        }
    )
    client = app.test_client()
    for url in ("/jobs/jobs", "/jobs/failures"):
        page = client.get(url)
        assert page.status_code == 503 and "History unavailable" in text(page)
    with app.app_context():
        job = jobs_app.add.enqueue(1, 2)
    detail = client.get(f"/jobs/job/{job.id}")
    assert detail.status_code == 200 and "cannot be read right now" in text(detail)
    assert client.get("/jobs/job/not-in-redis").status_code == 503
