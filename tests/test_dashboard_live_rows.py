"""The live lists' rows, read in one Redis call (`flask_jobs.ops.rows`), against what RQ's
own classes say of the same jobs; and the lists' page-size choice."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import redis
from flask import Flask
from rq import Queue
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

import jobs_app
from conftest import failed_jobs, text
from flask_jobs.jobs.flask_job import META_REQUEUES
from flask_jobs.keys import job_key, results_key
from flask_jobs.ops import rows, sets

ROW_ID = re.compile(r'name="job_ids" value="([^"]+)"')
#: A row's job id and its error, as a live list shows them.
ROW_ERROR = re.compile(
    r'<tr><td><input type="checkbox" name="job_ids" value="([^"]+)"'
    r'.*?<span class="fj-bad">([^<]*)</span>',
    re.S,
)


def test_failed_rows_match_rqs_own_view_of_each_job(
    app: Flask, ctx: None, client: Any, work: Any, redis_client: redis.Redis
) -> None:
    jobs = failed_jobs(work, "disk <full>", "second\nline two")
    state = jobs_app.jobs.state(app)
    ids = [job.id for job in jobs]
    found = rows.read_rows(state, [*ids, "no-such-job"])
    assert found[-1] is None
    for job_id, row in zip(ids, found, strict=False):
        assert row is not None
        job = Job.fetch(job_id, connection=state.connection, serializer=state.serializer)
        assert row["func"] == job.func_name
        assert row["ended_at"] == job.ended_at and row["started_at"] == job.started_at
        assert row["attempt"] == jobs_app.jobs.fetch_job(job_id).attempt
        latest = job.latest_result()
        assert latest is not None
        assert row["error"] == rows.exception_line(latest.exc_string)
    assert [row["error"] for row in found[:2] if row] == [
        "RuntimeError: disk <full>",
        "RuntimeError: second",
    ]
    # without errors (the running list), no result is read
    assert all(row and row["error"] is None for row in rows.read_rows(state, ids, errors=False))
    # a job whose data cannot be read shows its id alone, not an error page
    redis_client.hset(job_key(ids[0]), "data", b"\x00not zlib, not json")
    page = sets.live_set(state, "failed", limit=10)
    broken = next(row for row in page.rows if row["id"] == ids[0])
    assert broken["func"] is None and broken["error"] == "RuntimeError: disk <full>"
    body = text(client.get("/jobs/failed"))
    assert set(ROW_ID.findall(body)) == set(ids) and "gone" in body


def test_a_live_list_offers_pages_of_50_100_and_200(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    jobs = failed_jobs(work, "one", "two", "three")
    body = text(client.get("/jobs/failed"))
    assert 'href="/jobs/failed?limit=100">100</a>' in body
    assert '<b aria-current="true">50</b>' in body
    page = text(client.get("/jobs/failed?limit=2"))
    assert len(ROW_ID.findall(page)) == 2
    assert 'href="/jobs/failed?limit=2&amp;offset=2" rel="next"' in page
    rest = text(client.get("/jobs/failed?limit=2&offset=2"))
    assert set(ROW_ID.findall(page) + ROW_ID.findall(rest)) == {job.id for job in jobs}
    # the queue filter is kept by the page-size links
    assert 'href="/jobs/failed?limit=200&amp;queue=default">200</a>' in text(
        client.get("/jobs/failed?queue=default")
    )


def test_live_rows_escape_what_redis_holds(
    app: Flask, ctx: None, client: Any, work: Any, redis_client: redis.Redis
) -> None:
    (job,) = failed_jobs(work, "<img src=x onerror=\"alert(1)\"> & 'more'")
    registry = jobs_app.jobs.state(app).queue("default").failed_job_registry
    # a registry entry no RQ job id could be (its hash is gone: the row shows the id alone)
    odd = 'x"><script>alert(2)</script>&y'
    redis_client.zadd(registry.key, {odd: 1})
    body = text(client.get("/jobs/failed"))
    assert "<script>alert(2)" not in body and "<img src=x" not in body
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; &#39;more&#39;" in body
    assert f'value="{job.id}"' in body and f'href="/jobs/job/{job.id}"' in body
    escaped = "x&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;&amp;y"
    assert f'value="{escaped}"' in body and f'data-copy="{escaped}"' in body
    assert 'href="/jobs/job/x%22%3E%3Cscript%3Ealert%282%29%3C%2Fscript%3E%26y"' in body
    assert "<code>x&#34;&gt;&lt;scrip…</code>" in body
    # the page's rows are whole: a <tr> per job, each with its cells
    rows = re.findall(r"<tr><td><input type=\"checkbox\".*?</tr>", body, re.S)
    assert len(rows) == 2 and all(row.count("<td") == 8 for row in rows)


def test_failed_page_of_every_queue_is_their_union_latest_first(
    app: Flask, ctx: None, redis_client: redis.Redis
) -> None:
    """The page of failed jobs read in one call (`rows.queue_latest`): the registries of
    every queue merged, highest score first (then id, then queue), paged by offset."""
    state = jobs_app.jobs.state(app)
    redis_client.sadd("rq:queues", "rq:queue:high")
    scores = {
        "default": {"a": 5, "b": 3, "c": 3, "d": 1.5, "same": 2},
        "high": {"e": 4, "f": 3, "g": 0.25, "same": 2},
    }
    entries = []
    for name, members in scores.items():
        key = state.queue(name).failed_job_registry.key
        redis_client.zadd(key, members)
        entries += [(float(score), job_id, name) for job_id, score in members.items()]
    expected = sorted(entries, reverse=True)
    for limit in (1, 3, 20):
        seen = []
        for offset in range(0, len(expected), limit):
            page = sets.live_set(state, "failed", offset=offset, limit=limit)
            assert page.total == len(expected)
            seen += [(row["id"], row["queue"]) for row in page.rows]
        assert seen == [(job_id, name) for _, job_id, name in expected], limit
    only = sets.live_set(state, "failed", "high", limit=2)
    assert [row["id"] for row in only.rows] == ["e", "f"] and only.total == 4
    # one queue: its page is read at its offset
    pages = [sets.live_set(state, "failed", "default", offset=n, limit=2) for n in (0, 2, 4)]
    assert [[row["id"] for row in page.rows] for page in pages] == [
        ["a", "c"],
        ["b", "same"],
        ["d"],
    ]
    assert sets.live_set(state, "failed", offset=50, limit=5).rows == []


def test_a_row_read_before_is_read_again_when_its_job_changed(
    app: Flask, ctx: None, client: Any, work: Any, redis_client: redis.Redis, monkeypatch: Any
) -> None:
    """Rows are kept by the raw values they were read from: a job that failed again (a new
    end, a new result) shows its new failure, not the one read before."""
    (job,) = failed_jobs(work, "first failure")
    assert "RuntimeError: first failure" in text(client.get("/jobs/failed"))
    # its meta, which the job's own code may change while it is failed, is read each time
    assert '<td class="fj-num">1</td>' in text(client.get("/jobs/failed"))
    redis_client.hset(job_key(job.id), "meta", json.dumps({META_REQUEUES: 2}))
    assert '<td class="fj-num">3</td>' in text(client.get("/jobs/failed"))
    stored = Job.fetch(
        job.id, connection=redis_client, serializer=jobs_app.jobs.state(app).serializer
    )
    Result.create_failure(stored, ttl=60, exc_string=_traceback("second failure"))
    redis_client.hset(job_key(job.id), "ended_at", "2031-02-03T04:05:06.000000Z")
    body = text(client.get("/jobs/failed"))
    assert "RuntimeError: second failure" in body and "first failure" not in body
    assert "2031-02-03 04:05:06" in body
    # what is kept stays bounded: the oldest reads go first
    monkeypatch.setattr(rows, "READ_ROWS_KEPT", 2)
    failed_jobs(work, "a", "b", "c")
    assert len(text(client.get("/jobs/failed")).split('name="job_ids" value=')) == 5
    assert len(rows._READ_ROWS) <= 2


def _traceback(message: str) -> str:
    return (
        'Traceback (most recent call last):\n  File "jobs_app.py", line 1, in fail\n'
        f"RuntimeError: {message}\n"
    )


def test_failed_now_is_one_round_trip_and_sees_a_queue_that_came_since(
    app: Flask, ctx: None, client: Any, work: Any, redis_client: redis.Redis, monkeypatch: Any
) -> None:
    """The page, its rows, the queue names and the alert banner are read in one round trip
    to Redis; a queue that came since the last page (a new name) is read again at once,
    and a Redis that lost the page's script (SCRIPT FLUSH) is given it again."""
    (job,) = failed_jobs(work, "on default")
    assert job.id in text(client.get("/jobs/failed"))
    sent: list[int] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        send(self, command, check_health)

    # the page read again is told of the failures it read: it does not read their results
    redis_client.delete(results_key(job.id))
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    body = text(client.get("/jobs/failed"))
    assert job.id in body and "RuntimeError: on default" in body
    assert len(sent) == 1
    # a failed job of a queue no page has seen yet (made by plain RQ, not in JOBS_QUEUES)
    other = Queue("other", connection=redis_client, serializer=JSONSerializer)
    late = other.enqueue("jobs_app.add", 1, 2)
    other.failed_job_registry.add(late, ttl=600, exc_string=_traceback("late"))
    sent.clear()
    body = text(client.get("/jobs/failed"))
    assert late.id in body and job.id in body and len(sent) == 2
    sent.clear()
    assert late.id in text(client.get("/jobs/failed")) and len(sent) == 1
    redis_client.script_flush()
    assert late.id in text(client.get("/jobs/failed?limit=100"))


def test_live_lists_served_by_threads_while_jobs_fail_again(
    app: Flask, ctx: None, work: Any, redis_client: redis.Redis, monkeypatch: Any
) -> None:
    """Pages loaded from several threads at once, with what they keep far too small for
    them (so it is let go of and read again under their feet) while jobs fail again: every
    page is whole, and once the failing stops each row shows its job's latest failure."""
    from flask_jobs.dashboard import live_html

    monkeypatch.setattr(rows, "READ_ROWS_KEPT", 7)
    monkeypatch.setattr(rows, "PAGES_KEPT", 2)
    monkeypatch.setattr(live_html, "MADE_KEPT", 5)
    jobs = failed_jobs(work, *(f"first {n}" for n in range(24)))
    serializer = jobs_app.jobs.state(app).serializer
    problems: list[str] = []
    stop = threading.Event()

    def fail_again() -> None:
        n = 0
        while not stop.is_set():
            job = jobs[n % len(jobs)]
            stored = Job.fetch(job.id, connection=redis_client, serializer=serializer)
            Result.create_failure(stored, ttl=60, exc_string=_traceback(f"again {n}"))
            redis_client.hset(
                job_key(job.id), "ended_at", f"2031-01-01T00:00:{n % 60:02d}.{n:06d}Z"
            )
            n += 1

    def load(limit: int) -> None:
        client = app.test_client()
        for _ in range(25):
            answer = client.get(f"/jobs/failed?limit={limit}")
            body = text(answer)
            shown = ROW_ID.findall(body)
            if answer.status_code != 200 or len(shown) != limit:
                problems.append(f"limit {limit}: {answer.status_code}, {len(shown)} rows")
            elif body.count('<span class="fj-bad">RuntimeError: ') != limit:
                problems.append(f"limit {limit}: a row without its error")

    writer = threading.Thread(target=fail_again)
    readers = [threading.Thread(target=load, args=(limit,)) for limit in (5, 10, 24, 24, 10, 5)]
    writer.start()
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(120)
    stop.set()
    writer.join(30)
    assert problems == []
    client = app.test_client()
    client.get("/jobs/failed?limit=24")  # what was kept is told to the script...
    body = text(client.get("/jobs/failed?limit=24"))  # ...and stands for what Redis has
    shown = dict(ROW_ERROR.findall(body))
    for job in jobs:
        latest = Job.fetch(job.id, connection=redis_client, serializer=serializer).latest_result()
        assert latest is not None and shown[job.id] == rows.exception_line(latest.exc_string)
