"""The JSON API: the dashboard's data for scripts; errors as JSON, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

import jobs_app


def test_overview_and_jobs(app: Flask, ctx: None, client: Any, work: Any) -> None:
    ok = jobs_app.add.enqueue(1, 2)
    bad = jobs_app.fail.enqueue("api")
    work()
    overview = client.get("/jobs/api/overview").get_json()
    assert {q["name"]: q["failed"] for q in overview["queues"]}["default"] == 1
    listed = client.get("/jobs/api/jobs?status=failed").get_json()
    assert [row["job_id"] for row in listed["jobs"]] == [bad.id]
    assert listed["next_cursor"] is None
    detail = client.get(f"/jobs/api/jobs/{ok.id}").get_json()
    assert detail["status"] == "finished" and detail["attempts"][0]["result"] == "3"
    failures = client.get("/jobs/api/failures?window=1h").get_json()
    assert failures["groups"][0]["exc_type"] == "RuntimeError"
    assert client.get("/jobs/api/schedules").get_json() == {"schedules": []}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/jobs/api/jobs?limit=0", 400),
        ("/jobs/api/jobs?limit=abc", 400),
        ("/jobs/api/jobs?cursor=-5", 400),
        ("/jobs/api/jobs?status=exploded", 400),
        ("/jobs/api/jobs?since=yesterday", 400),
        ("/jobs/api/jobs?text=" + "x" * 600, 400),
        ("/jobs/api/jobs/nope", 404),
        ("/jobs/api/jobs/%3Cscript%3E", 404),
        ("/jobs/api/jobs/a%00b", 404),
        ("/jobs/api/failures?window=1y", 400),
    ],
)
def test_bad_input_is_a_json_4xx(app: Flask, client: Any, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    body = response.get_json()
    assert body is not None and body["error"] and body["status"] == status


def test_text_search_with_injection_strings(app: Flask, client: Any) -> None:
    for text in ["' OR 1=1 --", "%", "_", "\\", "ü\u202e", "'; DROP TABLE flask_jobs_history; --"]:
        response = client.get("/jobs/api/jobs", query_string={"text": text})
        assert response.status_code == 200, text
    assert client.get("/jobs/api/jobs").status_code == 200  # the table is still there


def test_prometheus_metrics(app: Flask, ctx: None, client: Any, work: Any) -> None:
    jobs_app.add.enqueue(1, 2)
    jobs_app.fail.enqueue("metrics")
    work()
    jobs_app.add.enqueue(3, 4)
    response = client.get("/jobs/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'flask_jobs_queue_jobs{queue="default",state="queued"} 1.0' in text
    assert 'flask_jobs_queue_jobs{queue="default",state="failed"} 1.0' in text
    assert 'flask_jobs_attempts_last_hour{function="jobs_app.fail",outcome="failed"} 1.0' in text
    assert 'flask_jobs_run_seconds_last_hour_bucket{function="jobs_app.add",le="+Inf"} 1.0' in text


def test_openapi_document_is_valid_and_covers_every_api_route(app: Flask, client: Any) -> None:
    from openapi_spec_validator import validate

    document = client.get("/jobs/api/openapi.json").get_json()
    validate(document)
    assert document["servers"] == [{"url": "/jobs"}]
    documented = {
        path.replace("{job_id}", "<path:job_id>")
        .replace("{workflow_id}", "<workflow_id>")
        .replace("{name}", "<name>")
        for path in document["paths"]
    }
    mounted = {
        rule.rule.removeprefix("/jobs")
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("jobs_dashboard.api_")
        and rule.endpoint != "jobs_dashboard.api_openapi"
    }
    assert documented == mounted


def test_responses_match_the_openapi_schemas(app: Flask, ctx: None, client: Any, work: Any) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = client.get("/jobs/api/openapi.json").get_json()
    registry: Registry[Any] = Registry().with_resource(
        "urn:api", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    done = jobs_app.add.enqueue(1, 2)
    jobs_app.fail.enqueue("<script>")
    work()

    def check(path: str, expected: int = 200) -> None:
        response = client.get("/jobs" + path)
        assert response.status_code == expected, path
        template = path.split("?")[0]
        if template.startswith("/api/jobs/"):
            template = "/api/jobs/{job_id}"
        if template.startswith("/api/functions/"):
            template = "/api/functions/{name}"
        answers = document["paths"][template]["get"]["responses"]
        spec = answers[str(expected)]
        if "$ref" in spec:
            spec = document["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
        schema = spec["content"]["application/json"]["schema"]
        validator = Draft202012Validator(
            {"$ref": "urn:api#" + schema["$ref"][1:]}, registry=registry
        )
        validator.validate(response.get_json())

    check("/api/overview")
    check("/api/jobs?status=failed")
    check(f"/api/jobs/{done.id}")
    check("/api/jobs/unknown-id", 404)
    check("/api/jobs?limit=0", 400)
    check("/api/failures?window=1h")
    check("/api/schedules")
    check("/api/functions?range=1h")
    check("/api/functions/jobs_app.fail?range=7d")
    check("/api/functions/jobs_app.nope", 404)
    check("/api/queue-samples?range=24h")
    check("/api/alerts")
