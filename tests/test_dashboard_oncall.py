"""The dashboard's on-call defects, without a browser: each test names the one it covers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskCliRunner
from rq.job import JobStatus

import jobs_app
from conftest import csrf, failed_jobs, text
from flask_jobs.dashboard import listing
from flask_jobs.keys import PAUSED_QUEUES_KEY, schedule_key

ROW_ID = re.compile(r'name="job_ids" value="([^"]+)"')


def make_app(
    redis_url: str, tmp_path: Any, *, user: dict[str, str] | None = None, **config: Any
) -> Flask:
    """A jobs_app on its own SQLite file with extra config; ``user`` for the header hook."""
    app = jobs_app.create_app(
        {"JOBS_REDIS_URL": redis_url, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd.db'}",
         **config}
    )  # fmt: skip
    if user is not None:
        app.context_processor(lambda: {"jobs_dashboard_user": user})
    return app


def _insert_rows(app: Flask, *rows: dict[str, Any]) -> None:
    """History rows written in this order (ids ascending), whatever their enqueue times."""
    store = jobs_app.jobs.state(app).history
    with store.engine(app).begin() as conn:
        for row in rows:
            conn.execute(store.table.insert().values(status_rank=2, args_truncated=False, **row))


def test_3_jobs_list_is_newest_enqueued_first_across_pages(
    app: Flask, ctx: None, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = datetime(2026, 11, 30, 20, 33, 35, tzinfo=timezone.utc)
    # written out of order: the row of the job enqueued last has the smallest id
    order = [4, 0, 2, 1, 3]
    _insert_rows(
        app,
        *(
            {"job_id": f"job-{n}", "attempt": 1, "status": "finished", "func": "jobs_app.add",
             "queue": "default", "enqueued_at": base + timedelta(seconds=n)}
            for n in order
        ),
    )  # fmt: skip
    first = client.get("/jobs/jobs?limit=2")
    assert ROW_ID.findall(text(first)) == ["job-4", "job-3"]
    seen = ROW_ID.findall(text(first))
    page = text(first)
    while (found := re.search(r'href="([^"]+)" rel="next"', page)) is not None:
        page = text(client.get(found.group(1).replace("&amp;", "&")))
        seen += ROW_ID.findall(page)
    assert seen == ["job-4", "job-3", "job-2", "job-1", "job-0"]
    # a filter is read through its own index when it matches few rows, else through the
    # enqueue-time index: the same order either way
    for selective in (5_000, 1):
        monkeypatch.setattr(listing, "SELECTIVE", selective)
        for query in ("status=finished", "queue=default", "function=jobs_app.add"):
            page = text(client.get(f"/jobs/jobs?{query}"))
            assert ROW_ID.findall(page) == ["job-4", "job-3", "job-2", "job-1", "job-0"], query


def test_5_paused_queue_on_the_overview_and_in_status(
    app: Flask, ctx: None, client: Any, runner: FlaskCliRunner, redis_client: redis.Redis
) -> None:
    jobs_app.add.enqueue(1, 2)
    redis_client.sadd(PAUSED_QUEUES_KEY, "default")
    page = text(client.get("/jobs/"))
    assert "queues paused" in page
    assert re.search(
        r"<code>default</code></a></td>\s*<td><span class=\"fj-warn\"[^>]*>paused", page
    )
    result = runner.invoke(args=["jobs", "status"])
    assert result.exit_code == 0, result.output
    (line,) = [row for row in result.output.splitlines() if row.startswith("default ")]
    assert line.split()[1] == "paused"
    assert "Paused: default;" in result.output


def test_6_failed_counts_say_what_they_count_and_link_to_failed_now(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    jobs = failed_jobs(work, "disk <full>", "second")
    overview = text(client.get("/jobs/"))
    assert "failed now (no retry left)" in overview
    assert 'href="/jobs/failed">2</a>' in overview
    assert "failed attempts</a>" in overview and "(retried ones included)" in overview
    page = client.get("/jobs/failed")
    assert page.status_code == 200 and "<h1>Failed now</h1>" in text(page)
    body = text(page)
    assert "<b>2</b> job(s)" in body and "in RQ's failed registry" in body
    assert set(ROW_ID.findall(body)) == {job.id for job in jobs}
    assert "RuntimeError: disk &lt;full&gt;" in body
    assert client.get("/jobs/failed?queue=nope").status_code == 404
    assert client.get("/jobs/failed?offset=x").status_code == 400
    listed = text(client.get("/jobs/jobs?status=failed"))
    assert "the jobs whose <strong>latest attempt</strong> failed" in listed
    every = text(client.get("/jobs/jobs?status=failed&attempts=all"))
    assert "These are <strong>attempts</strong> that failed" in every
    assert 'href="/jobs/failed">Failed now</a>' in listed
    # requeue from the failed-now page comes back to it
    response = client.post(
        "/jobs/jobs/bulk",
        data={"csrf_token": csrf(client), "action": "requeue", "back_to": "failed_now",
              "job_ids": [jobs[0].id]},
    )  # fmt: skip
    assert response.status_code == 303 and response.location.startswith("/jobs/failed")
    assert jobs_app.jobs.fetch_job(jobs[0].id).get_status() == JobStatus.QUEUED


def test_7_last_run_is_when_the_last_job_was_enqueued(
    redis_url: str, redis_client: redis.Redis, tmp_path: Any
) -> None:
    app = make_app(
        redis_url,
        tmp_path,
        JOBS_SCHEDULE={"ten": {"job": "jobs_app:add", "args": [1, 1], "every": 10}},
    )
    client = app.test_client()

    def last_run() -> str:
        page = text(client.get("/jobs/schedules"))
        cells = re.findall(r"<td[^>]*>(.*?)</td>", page.split("<code>ten</code>")[1], re.S)
        return cells[4].strip()

    assert last_run() == "-"
    token = csrf(client)
    assert client.post("/jobs/schedules/ten/run", data={"csrf_token": token}).status_code == 303
    assert last_run() == "0 s ago"
    # a resume moves the timetable's base, not the last run
    redis_client.hset(schedule_key("ten"), "last_job_id", "gone-job")
    client.post("/jobs/schedules/ten/pause", data={"csrf_token": token})
    client.post("/jobs/schedules/ten/resume", data={"csrf_token": token})
    assert last_run() == "-"
    listed = app.test_cli_runner().invoke(args=["jobs", "schedule", "list", "--json"])
    assert '"last_run": null' in listed.output


def test_8_api_accepts_every_window_the_failures_page_offers(client: Any) -> None:
    for window in ("1h", "24h", "7d", "30d"):
        assert client.get(f"/jobs/failures?window={window}").status_code == 200
        assert client.get(f"/jobs/api/failures?window={window}").status_code == 200


def test_9_unknown_paths_and_get_on_actions_get_the_dashboard_frame(
    app: Flask, ctx: None, client: Any
) -> None:
    job = jobs_app.add.enqueue(1, 2)
    for path, says in (
        ("/jobs/nonexistent", "There is no dashboard page"),
        ("/jobs/queues/nope", "There is no queue named"),  # a queue's page, of no queue
        ("/jobs/a/b/c", "There is no dashboard page"),
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert 'class="fj-header"' in text(response) and says in text(response)
    for path in (f"/jobs/job/{job.id}/requeue", "/jobs/queues/default/pause"):
        response = client.get(path)
        assert response.status_code == 405, path
        assert response.headers["Allow"] == "POST"
        assert 'class="fj-header"' in text(response) and "(POST)" in text(response)
        assert "is not a job id" not in text(response)
    api = client.get("/jobs/api/nope")
    assert api.status_code == 404 and api.get_json()["status"] == 404


def test_10_lists_show_the_error_message_and_link_names(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    failed_jobs(work, "first line of a long message " + "x" * 200 + "\nsecond line")
    page = text(client.get("/jobs/jobs"))
    assert "RuntimeError</span>: first line of a long message xxx" in page
    assert "…</td>" in page and "second line</td>" not in page
    assert 'href="/jobs/jobs?function=jobs_app.fail"' in page
    assert 'href="/jobs/jobs?queue=default"' in page
    overview = text(client.get("/jobs/"))
    assert 'href="/jobs/jobs?queue=default"><code>default</code>' in overview
    assert 'href="/jobs/jobs?function=jobs_app.fail"><code>jobs_app.fail</code>' in overview


def test_11_bare_function_names_and_since_after_until(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    added = jobs_app.add.enqueue(1, 2)
    jobs_app.fail.enqueue("x")
    work()
    for name in ("add", "jobs_app.add", "jobs_app:add"):
        assert ROW_ID.findall(text(client.get(f"/jobs/jobs?function={name}"))) == [added.id]
    nothing = text(client.get("/jobs/jobs?function=dd"))
    assert "a full path (<code>package.module.function</code>) or a bare function name" in nothing
    swapped = client.get("/jobs/jobs?since=2026-12-01T10:00&until=2026-12-01T09:00")
    assert swapped.status_code == 200
    assert "is not before &#39;until&#39;" in text(swapped) and not ROW_ID.findall(text(swapped))


def test_12_bulk_messages_say_why_jobs_were_skipped(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    done = [jobs_app.add.enqueue(1, n) for n in range(2)]
    work()
    failed = failed_jobs(work, "x")[0]
    response = client.post(
        "/jobs/jobs/bulk",
        data={"csrf_token": csrf(client), "action": "requeue",
              "job_ids": [done[0].id, done[1].id, failed.id, "gone-job"]},
        follow_redirects=True,
    )  # fmt: skip
    message = re.search(r'class="fj-flash[^"]*"[^>]*>([^<]+)<', text(response)).group(1)  # type: ignore[union-attr]
    assert message == (
        "Requeued 1 job(s). Skipped 3: 2 finished, 1 gone (gone: no longer in Redis): "
        "only failed, stopped or canceled jobs can be requeued."
    )
    assert "cancel:" not in message and "delete:" not in message


def test_13_a_manual_requeue_says_whether_the_retry_policy_applies(
    app: Flask, ctx: None, client: Any, work: Any, runner: FlaskCliRunner
) -> None:
    retried = jobs_app.always_fails.enqueue(1)
    plain = jobs_app.fail.enqueue("x")
    work()
    page = text(client.get(f"/jobs/job/{retried.id}"))
    assert "Requeue: It runs once: its retry policy is used up" in page
    response = client.post(
        f"/jobs/job/{retried.id}/requeue", data={"csrf_token": csrf(client)}, follow_redirects=True
    )
    assert "It runs once: its retry policy is used up" in text(response)
    response = client.post(
        f"/jobs/job/{plain.id}/requeue", data={"csrf_token": csrf(client)}, follow_redirects=True
    )
    assert "It has no retry policy" in text(response)
    work()  # both fail again; the CLI says the same
    result = runner.invoke(args=["jobs", "requeue", retried.id])
    assert result.exit_code == 0 and "It runs once: its retry policy is used up" in result.output


def test_15_tracebacks_show_the_jobs_own_frames_first(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    (job,) = failed_jobs(work, "boom")
    page = text(client.get(f"/jobs/job/{job.id}"))
    own = re.search(r"the job's own frames\)</summary><pre>(.*?)</pre>", page, re.S)
    assert own is not None
    assert "tests/jobs_app.py" in own.group(1) and "RuntimeError: boom" in own.group(1)
    assert "rq/job.py" not in own.group(1) and "flask_jobs/" not in own.group(1)
    full = re.search(r"frame\(s\) of flask-jobs and RQ</summary><pre>(.*?)</pre>", page, re.S)
    assert full is not None and "rq/" in full.group(1)


def test_16_filter_urls_drop_empty_parameters(app: Flask, client: Any) -> None:
    response = client.get("/jobs/jobs?status=failed&queue=&function=&since=&until=&text=")
    assert response.status_code == 303 and response.location == "/jobs/jobs?status=failed"
    assert client.get("/jobs/jobs?queue=&text=").location == "/jobs/jobs"
    # htmx's request keeps its answer, and is told the clean URL for the address bar
    partial = client.get("/jobs/jobs?status=failed&queue=", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert partial.headers["HX-Push-Url"] == "/jobs/jobs?status=failed"


def test_16_user_read_only_marker_and_favicon(
    redis_url: str, redis_client: redis.Redis, tmp_path: Any
) -> None:
    user = {"name": "ann <ops>", "sign_out_url": "/logout"}
    app = make_app(redis_url, tmp_path, user=user, JOBS_DASHBOARD_AUTH=lambda: "read")

    page = text(app.test_client().get("/jobs/"))
    assert 'class="fj-readonly"' in page and ">read-only<" in page
    assert "signed in as</span> <strong>ann &lt;ops&gt;</strong>" in page
    assert '<a href="/logout">Sign out</a>' in page
    assert '<link rel="icon" href="data:image/svg+xml,' in page


def test_6_scheduled_and_retrying_list_delayed_jobs_and_retries_apart(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    retrying = jobs_app.flaky.enqueue("flaky-counter", 10)
    work()  # fails once; its retry is due in a second
    later = jobs_app.add.enqueue_in(timedelta(hours=1), 1, 2)
    overview = text(client.get("/jobs/"))
    assert 'href="/jobs/scheduled">1</a>' in overview
    assert 'href="/jobs/retrying">1</a>' in overview
    page = client.get("/jobs/scheduled")
    assert page.status_code == 200 and "<h1>Scheduled</h1>" in text(page)
    body = text(page)
    assert ROW_ID.findall(body) == [later.id]
    assert (
        'value="cancel"' in body and 'value="requeue"' not in body and ">Run now</button>" in body
    )
    retries = text(client.get("/jobs/retrying"))
    assert ROW_ID.findall(retries) == [retrying.id]
    assert "ConnectionError: attempt 1 failed" in retries and ">Retry now</button>" in retries
    response = client.post(
        "/jobs/jobs/bulk",
        data={"csrf_token": csrf(client), "action": "cancel", "back_to": "scheduled_now",
              "job_ids": [later.id]},
    )  # fmt: skip
    assert response.status_code == 303 and response.location.startswith("/jobs/scheduled")
    assert ROW_ID.findall(text(client.get("/jobs/scheduled"))) == []
