"""Scenario 6, part 1: every dashboard and API route, fuzzed -> never a 500.

The routes come from ``app.url_map``, so a route added later is fuzzed too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobs_app
from reliability import tasks
from reliability.conftest import report, scaled

PREFIX = "jobs_dashboard."
INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE flask_jobs_history; --",
    '" OR ""="',
    "%",
    "_",
    "%%'%",
    "\\",
    "\x00",
    "a\x00b",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
    "${7*7}",
    "../../../../etc/passwd",
    "x" * 5000,
    "9" * 5000,
    "-1",
    "0",
    "-0",
    "1e308",
    "NaN",
    "inf",
    "18446744073709551616",
    "-9223372036854775809",
    "2026-13-45T99:99",
    "9999-12-31T23:59:59+23:59",
    "0001-01-01T00:00:00-23:59",
    "0001-01-01",
    "9999-12-31",
    "\u202eevil",
    "😀" * 50,
    "null",
    "[]",
    "{}",
    "default",
    "failed",
    "1h",
    "yes",
]
#: Query and form names the dashboard reads, plus a few it does not.
NAMES = [
    "status", "queue", "function", "origin", "text", "since", "until", "cursor", "limit",
    "range", "window", "poll", "done", "action", "back", "confirm", "job_ids", "csrf_token",
    "page", "q", "id", "name", "offset", "back_to", "attempts", "kind",
]  # fmt: skip

values = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(st.characters(codec="utf-8"), max_size=60),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["1h", "24h", "7d", "2", "5", "50", "500", "501"]),
)
params = st.lists(
    st.tuples(st.sampled_from(NAMES) | st.text(st.characters(codec="utf-8"), max_size=10), values),
    max_size=6,
)


@pytest.fixture
def fuzz_app(app: Flask) -> Iterator[Flask]:
    """The test app with something on every page: jobs of each kind (one waiting for its
    retry, one delayed), a schedule."""
    app.config["JOBS_SCHEDULE"] = {}
    with app.app_context():
        tasks.echo_back.enqueue("<b>bold</b>")
        jobs_app.fail.enqueue("boom")
        jobs_app.add.options(queue="high").enqueue(1, 2)
        jobs_app.flaky.enqueue("fuzz-flaky", 10)
        jobs_app.add.enqueue_in(timedelta(hours=1), 3, 4)
    yield app


def _routes(app: Flask) -> list[Any]:
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(PREFIX) and not rule.endpoint.endswith(".static")
    ]
    assert len(rules) >= 20, [r.rule for r in rules]
    return sorted(rules, key=lambda r: r.rule)


def test_fuzz_every_route_never_500(fuzz_app: Flask, work: Any, database_url: str) -> None:
    app = fuzz_app
    work()
    rules = _routes(app)
    examples = scaled(10_000, 1_000)
    client = app.test_client()
    page = client.get("/jobs/jobs").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    token = match.group(1)
    seen: dict[int, int] = {}
    adapter = app.url_map.bind("localhost")

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        rule = data.draw(st.sampled_from(rules), label="route")
        path_values = {
            name: data.draw(values.filter(lambda v: v != ""), label=name) for name in rule.arguments
        }
        try:
            url = adapter.build(rule.endpoint, path_values, append_unknown=False)
        except Exception:  # a value the rule's converter refuses: not a request a client sends
            return
        query = data.draw(params, label="query")
        headers = {"HX-Request": "true"} if data.draw(st.booleans(), label="htmx") else {}
        if "POST" in (rule.methods or ()):
            form = data.draw(params, label="form")
            if data.draw(st.booleans(), label="with csrf"):
                form.append(("csrf_token", token))
            answer = client.post(
                url + "?" + urlencode(query), data=urlencode(form), headers=headers,
                content_type="application/x-www-form-urlencoded",
            )  # fmt: skip
        else:
            answer = client.get(url + "?" + urlencode(query), headers=headers)
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        assert answer.status_code < 500, (url, query, answer.get_data(as_text=True)[:500])

    one_request()
    total = sum(seen.values())
    report(
        f"fuzz ({database_url.split(':')[0]}): {total} requests over {len(rules)} routes, "
        f"statuses {dict(sorted(seen.items()))}: 0 server errors"
    )


#: The names the dashboard reads (a bad value in one must not hide behind another's 400).
READ = ["status", "queue", "function", "origin", "text", "since", "until", "cursor", "limit",
        "range", "window", "poll", "done", "action", "back", "confirm", "job_ids", "offset",
        "back_to", "attempts", "workflow"]  # fmt: skip


def test_sweep_every_route_name_and_bad_value_never_500(
    fuzz_app: Flask, work: Any, database_url: str
) -> None:
    """Each route x each name it may read x each hostile value, one at a time."""
    app = fuzz_app
    work()
    with app.app_context():
        job_id = jobs_app.add.enqueue(1, 1).id
        workflow_id = jobs_app.jobs.chain(jobs_app.add.si(1, 1)).enqueue().id
    path_values = {
        "job_id": job_id,
        "workflow_id": workflow_id,
        "name": "default",
        "action": "requeue",
        "rest": "nope/x",
    }
    client = app.test_client()
    page = client.get("/jobs/jobs").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    adapter = app.url_map.bind("localhost")
    cases = [(rule, name, value) for rule in _routes(app) for name in READ for value in INJECTIONS]
    # CI takes an evenly spread share; JOBS_RELIABILITY_SCALE=1 takes every case.
    stride = max(1, len(cases) // scaled(len(cases), 1_000))
    sent = 0
    for rule, name, value in cases[::stride]:
        url = adapter.build(rule.endpoint, {k: path_values[k] for k in rule.arguments})
        if "POST" in (rule.methods or ()):
            form = [(name, value), ("csrf_token", match.group(1))]
            answer = client.post(
                url, data=urlencode(form), content_type="application/x-www-form-urlencoded"
            )
        else:
            answer = client.get(url + "?" + urlencode([(name, value)]))
        sent += 1
        assert answer.status_code < 500, (url, name, value, answer.get_data(as_text=True)[:500])
    report(
        f"sweep ({database_url.split(':')[0]}): {sent} of {len(cases)} route x parameter x "
        "hostile-value cases sent: 0 server errors"
    )
