"""Scenario 7: auth on every route, CSRF on every POST, escaping, redaction."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import redis
from flask import Flask
from rq.worker import Worker
from sqlalchemy import select

import jobs_app
from browser import browser_page, serve
from flask_jobs import Retry
from flask_jobs.keys import (
    SCHEDULER_PROCESSES_KEY,
    WORKER_MODE_FIELD,
    WORKER_RSS_FIELD,
    WORKER_SLOTS_FIELD,
    WORKER_SUPERVISOR_FIELD,
    worker_executions_key,
)
from reliability import tasks
from reliability.conftest import report

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PREFIX = "jobs_dashboard."
#: Marks each payload leaves in the page if the browser ran it.
XSS = [
    "<script>window.__xss = 1</script>",
    '"><img src=x onerror="window.__xss = 2">',
    '\'><svg onload="window.__xss = 3">',
    "</textarea><script>window.__xss = 4</script>",
    "javascript:window.__xss = 5",
]
SECRET = "hunter2-do-not-show"


def _rules(app: Flask) -> list[Any]:
    rules = [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith(PREFIX) and not r.endpoint.endswith(".static")
    ]
    assert len(rules) >= 20
    return rules


def _url(app: Flask, rule: Any, values: dict[str, str] | None = None) -> str:
    values = values or {
        "job_id": "some-job",
        "workflow_id": "some-workflow",
        "name": "default",
        "action": "requeue",
        "rest": "x",
    }
    return str(
        app.url_map.bind("localhost").build(rule.endpoint, {k: values[k] for k in rule.arguments})
    )


def _pages(app: Flask, job_ids: list[str]) -> list[str]:
    """Every GET page and API answer, including each job's detail."""
    urls = []
    for rule in _rules(app):
        if "GET" not in (rule.methods or ()):
            continue
        if "job_id" in rule.arguments:
            urls += [_url(app, rule, {"job_id": j}) for j in job_ids]
        elif rule.arguments:
            urls.append(_url(app, rule))
        else:
            urls.append(_url(app, rule))
    return urls


def test_no_page_or_action_without_the_auth_hook_outside_debug(
    redis_url: str, redis_client: redis.Redis
) -> None:
    closed = jobs_app.create_app({"JOBS_REDIS_URL": redis_url, "TESTING": False, "DEBUG": False})
    denied = jobs_app.create_app(
        {"JOBS_REDIS_URL": redis_url, "TESTING": False, "JOBS_DASHBOARD_AUTH": lambda a: False}
    )
    read_only = jobs_app.create_app(
        {"JOBS_REDIS_URL": redis_url, "TESTING": False, "JOBS_DASHBOARD_AUTH": lambda: "read"}
    )
    checked = 0
    for app in (closed, denied):
        client = app.test_client()
        for rule in _rules(app):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                answer = client.open(_url(app, rule), method=method)
                assert answer.status_code == 403, (rule.rule, method, answer.status_code)
                checked += 1
    client = read_only.test_client()
    for rule in _rules(read_only):
        if "POST" in (rule.methods or ()):
            answer = client.post(_url(read_only, rule))
            assert answer.status_code == 403, (rule.rule, answer.status_code)
            checked += 1
    report(
        f"auth: {checked} route x method requests without a permitting hook: "
        f"{checked}/{checked} got 403"
    )


@SQLITE
def test_every_post_without_a_valid_csrf_token_is_a_400(app: Flask, client: Any) -> None:
    client.get("/jobs/")
    token = client.get_cookie("flask_jobs_csrf").value
    posts = [r for r in _rules(app) if "POST" in (r.methods or ())]
    assert posts
    checked = 0
    for rule in posts:
        url = _url(app, rule)
        for form, headers in (
            ({}, {}),
            ({"csrf_token": ""}, {}),
            ({"csrf_token": "x" * 43}, {}),
            ({"csrf_token": token + "é"}, {}),
            ({"csrf_token": token}, {"Origin": "https://evil.example"}),
            ({"csrf_token": token}, {"Referer": "https://evil.example/page"}),
        ):
            answer = client.post(url, data=form, headers=headers)
            assert answer.status_code == 400, (rule.rule, form, headers, answer.status_code)
            checked += 1
    report(f"CSRF: {len(posts)} POST routes x 6 forged requests: {checked}/{checked} got 400")


@SQLITE
def test_xss_payloads_in_args_results_and_tracebacks_are_escaped(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    jobs = []
    retry_later = Retry(2, delay=3600, jitter=False)
    for payload in XSS:
        jobs.append(tasks.echo_back.enqueue(payload))
        jobs.append(tasks.raise_with.enqueue(payload))
        jobs.append(jobs_app.echo.options(description=payload).enqueue(payload, **{"k": payload}))
        # on Retrying, with the payload as the error it is retried after
        jobs.append(tasks.raise_with.options(retry=retry_later).enqueue(payload))
    work()
    from conftest import drain_history

    drain_history(app)
    # the workers page shows what a worker wrote in its hash: hostile values too
    conn = jobs_app.jobs.connection
    worker = Worker([jobs_app.jobs.state(app).queue("default")], name="xss-w", connection=conn)
    worker.register_birth()
    conn.hset(worker.key, mapping={
        WORKER_MODE_FIELD: XSS[0], WORKER_SUPERVISOR_FIELD: XSS[1], WORKER_SLOTS_FIELD: XSS[2],
        WORKER_RSS_FIELD: XSS[3],
    })  # fmt: skip
    conn.sadd(worker_executions_key("xss-w"), f"{XSS[1]}:e1", f"{jobs[0].id}:e2")
    conn.zadd(SCHEDULER_PROCESSES_KEY, {XSS[2]: time.time()})
    urls = [
        *_pages(app, [j.id for j in jobs]),
        "/jobs/failures?window=1h",
        "/jobs/jobs?text=script",
        "/jobs/jobs?attempts=all",
    ]
    retrying = client.get("/jobs/retrying").get_data(as_text=True)
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in retrying  # shown, escaped
    workers = client.get("/jobs/workers").get_data(as_text=True)
    assert "<td>&lt;script&gt;window.__xss = 1&lt;/script&gt;</td>" in workers
    seen = 0
    for url in urls:
        answer = client.get(url)
        assert answer.status_code < 500, url
        if answer.mimetype != "text/html":
            continue
        html = answer.get_data(as_text=True)
        for payload in XSS[:-1]:
            assert payload not in html, (url, payload)
        # the last one is plain text; it is only a danger as a link or a source
        assert not re.search(r"""(href|src|action)=["']?javascript:""", html), url
        seen += 1
    with serve(app) as base, browser_page() as page:
        for url in urls:
            page.goto(base + url)
            assert page.evaluate("window.__xss") is None, url
    report(
        f"XSS: {len(XSS)} payloads in arguments, results, descriptions, exception messages and "
        f"tracebacks: escaped on all {seen} HTML pages; none ran in Chromium on {len(urls)} URLs"
    )


@SQLITE
def test_redacted_keys_never_appear_in_pages_api_or_history(
    app: Flask, ctx: None, client: Any, work: Any
) -> None:
    secrets = {"password": SECRET, "nested": {"api_key": SECRET, "list": [{"Token": SECRET}]}}
    finished = jobs_app.echo.enqueue({"client_secret": SECRET}, **secrets)
    failed = jobs_app.fail_with.options(job_id="secret-fail").enqueue(kind="value")
    retried = tasks.raise_with.enqueue(message="no secret here")
    plain = jobs_app.echo.options(queue="other").enqueue(password=SECRET)
    work(queues=["default", "other"])
    from conftest import drain_history

    drain_history(app)
    ids = [finished.id, failed.id, retried.id, plain.id]
    checked = 0
    for url in [*_pages(app, ids), "/jobs/jobs?text=hunter2", "/jobs/api/jobs?text=hunter2"]:
        answer = client.get(url)
        assert answer.status_code < 500, url
        assert SECRET not in answer.get_data(as_text=True), url
        checked += 1
    table = jobs_app.jobs.history_table
    with jobs_app.db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table))]
    assert rows
    assert SECRET not in json.dumps(rows, default=str)
    assert re.search(r'"password": ?"\*\*\*"', json.dumps(rows, default=str).replace('\\"', '"'))
    report(
        f"redaction: secrets under password/api_key/Token/client_secret keys (nested too): "
        f"absent from {checked} pages and API answers and from {len(rows)} history rows"
    )
