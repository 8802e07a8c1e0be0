"""The OpenAPI 3.1 description of the JSON API, served at ``/jobs/api/openapi.json``.

Written by hand next to the views it describes (``views_api.py``): the
parameter bounds here are the ones the views enforce, so a client or a fuzzer
generating requests from this document meets the same 400s a user would.
"""

from __future__ import annotations

from typing import Any

from flask import url_for

from flask_jobs.history.events import STATUSES

from .openapi_live import live_paths, live_schemas, ok_responses
from .openapi_stats import stats_paths, stats_schemas
from .openapi_workflows import workflow_paths, workflow_schemas

__all__ = ["openapi_document"]

_TIME = {"type": "string", "format": "date-time"}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
_NULL_STR = {"type": ["string", "null"]}
_NULL_NUM = {"type": ["number", "null"]}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _text_filter(name: str, description: str) -> dict[str, Any]:
    return _query(name, {"type": "string", "maxLength": 500}, description)


def _window() -> dict[str, Any]:
    return _query(
        "window",
        {"type": "string", "enum": ["1h", "24h", "7d", "30d"], "default": "24h"},
        "How far back to look.",
    )


def _limit(default: int) -> dict[str, Any]:
    return _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 500, "default": default},
        "How many items at most.",
    )


def _schemas() -> dict[str, Any]:
    attempt = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "job_id": {"type": "string"},
            "attempt": {"type": "integer"},
            "func": _NULL_STR,
            "queue": _NULL_STR,
            "args": _NULL_STR,
            "kwargs": _NULL_STR,
            "args_truncated": {"type": "boolean"},
            "description": _NULL_STR,
            "status": {"type": "string", "enum": list(STATUSES)},
            "enqueued_at": _NULL_TIME,
            "started_at": _NULL_TIME,
            "ended_at": _NULL_TIME,
            "wait_seconds": _NULL_NUM,
            "run_seconds": _NULL_NUM,
            "worker": _NULL_STR,
            "host": _NULL_STR,
            "pid": {"type": ["integer", "null"]},
            "result": _NULL_STR,
            "exc_type": _NULL_STR,
            "exc_message": _NULL_STR,
            "traceback": _NULL_STR,
            "origin": _NULL_STR,
            "workflow_id": {**_NULL_STR, "description": "The chain, group or chord of the job."},
            "progress": _NULL_NUM,
            "progress_message": _NULL_STR,
            "updated_at": _NULL_TIME,
        },
        "required": ["id", "job_id", "attempt", "status"],
    }
    queue = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            **{
                label: {"type": "integer", "minimum": 0}
                for label in (
                    "queued",
                    "started",
                    "scheduled",
                    "deferred",
                    "failed",
                    "finished",
                    "canceled",
                )
            },
        },
        "required": ["name", "queued"],
    }
    worker = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "state": {"type": "string"},
            "queues": {"type": "array", "items": {"type": "string"}},
            "current_job": _NULL_STR,
            "host": _NULL_STR,
            "pid": {"type": ["integer", "null"]},
            "successful_jobs": {"type": "integer"},
            "failed_jobs": {"type": "integer"},
        },
        "required": ["name", "state", "queues"],
    }
    schedule = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "job": {"type": "string"},
            "trigger": {"type": "string", "description": "The trigger in words."},
            "timezone": {"type": "string"},
            "enabled": {"type": "boolean"},
            "paused": {"type": "boolean"},
            "next_run": _NULL_TIME,
            "last_run": _NULL_TIME,
            "last_job_id": _NULL_STR,
            "last_outcome": _NULL_STR,
            "missed": {"type": "integer"},
            "unique": {"type": "boolean"},
            "skipped": {"type": "integer"},
            "last_skipped": _NULL_TIME,
        },
        "required": ["name", "job", "trigger", "paused"],
    }
    group = {
        "type": "object",
        "properties": {
            "func": _NULL_STR,
            "exc_type": {"type": "string"},
            "count": {"type": "integer"},
            "first_seen": _TIME,
            "last_seen": _TIME,
        },
        "required": ["exc_type", "count"],
    }
    audit_entry = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "at": _TIME,
            "actor": {"type": "string", "description": "Who: the user, or the CLI's login."},
            "source": {"type": "string", "enum": ["dashboard", "cli"]},
            "action": {"type": "string"},
            "target": _NULL_STR,
            "count": {"type": "integer", "description": "How many things it changed."},
            "detail": _NULL_STR,
        },
        "required": ["id", "at", "actor", "source", "action", "count"],
    }
    return {
        "Attempt": attempt,
        "Overview": {
            "type": "object",
            "properties": {
                "redis": {"type": "string", "description": "The Redis URL, password masked."},
                "queues": {"type": "array", "items": queue},
                "workers": {"type": "array", "items": worker},
            },
            "required": ["queues", "workers"],
        },
        "JobList": {
            "type": "object",
            "properties": {
                "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
                "next_cursor": {"type": ["integer", "null"]},
            },
            "required": ["jobs", "next_cursor"],
        },
        "Job": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "status": {
                    **_NULL_STR,
                    "description": "The live status in Redis; null once the job hash expired.",
                },
                "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
            },
            "required": ["id", "status", "attempts"],
        },
        "FailureGroups": {
            "type": "object",
            "properties": {"groups": {"type": "array", "items": group}},
            "required": ["groups"],
        },
        "Schedules": {
            "type": "object",
            "properties": {"schedules": {"type": "array", "items": schedule}},
            "required": ["schedules"],
        },
        "Audit": {
            "type": "object",
            "properties": {
                "entries": {"type": "array", "items": audit_entry},
                "next_before": {"type": ["integer", "null"]},
            },
            "required": ["entries", "next_before"],
        },
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
            "required": ["error", "status"],
        },
    }


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, with paths as this app mounts them."""
    prefix = url_for("jobs_dashboard.api_overview").rsplit("/api/overview", 1)[0]
    job_filters = [
        _query(
            "status", {"type": "string", "enum": list(STATUSES)}, "Only attempts in this status."
        ),
        _text_filter("queue", "Only this queue."),
        _text_filter("function", "Only this function (`pkg.mod.func` or `pkg.mod:func`)."),
        _text_filter("origin", "Origin starts with this (`schedule:nightly`, `requeue:<id>`)."),
        _text_filter("text", "Substring of the arguments, exception type or message."),
        _query("since", _TIME, "Enqueued at or after this moment (ISO 8601; UTC if no zone)."),
        _query("until", _TIME, "Enqueued before this moment (ISO 8601; UTC if no zone)."),
        _query(
            "cursor",
            {"type": "integer", "minimum": 0, "maximum": 2**62},
            "The `next_cursor` of the previous page.",
        ),
        _limit(50),
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flask-jobs dashboard API",
            "version": "1",
            "description": (
                "Read-only JSON views of queues, workers, the live sets (failed, running, "
                "retrying, scheduled), job history, failures and schedules. "
                "Access is decided by the app's JOBS_DASHBOARD_AUTH hook (action `view`)."
            ),
        },
        "servers": [{"url": prefix or "/"}],
        "paths": {
            "/api/overview": {
                "get": {
                    "operationId": "overview",
                    "summary": "Queues with their job counts per state, and the workers.",
                    "responses": ok_responses("Counts and workers.", "Overview"),
                }
            },
            "/api/jobs": {
                "get": {
                    "operationId": "listJobs",
                    "summary": "Attempts matching the filters, newest first (keyset pages).",
                    "parameters": job_filters,
                    "responses": ok_responses("One page of attempts.", "JobList"),
                }
            },
            "/api/jobs/{job_id}": {
                "get": {
                    "operationId": "getJob",
                    "summary": "Every recorded attempt of one job and its live status.",
                    "parameters": [
                        {
                            "name": "job_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
                        }
                    ],
                    "responses": {
                        **ok_responses("The job.", "Job"),
                        "404": _error_response("No job with this id in Redis or the history."),
                    },
                }
            },
            "/api/failures": {
                "get": {
                    "operationId": "failureGroups",
                    "summary": "Failures grouped by function and exception type.",
                    "parameters": [_window(), _limit(50)],
                    "responses": ok_responses("Failure groups, largest first.", "FailureGroups"),
                }
            },
            "/api/schedules": {
                "get": {
                    "operationId": "listSchedules",
                    "summary": "Every schedule: trigger, next and last run, outcome, state.",
                    "responses": ok_responses("The schedules.", "Schedules"),
                }
            },
            "/api/audit": {
                "get": {
                    "operationId": "auditLog",
                    "summary": "Operator actions (dashboard and CLI), newest first.",
                    "parameters": [
                        _query(
                            "before",
                            {"type": "integer", "minimum": 0, "maximum": 2**62},
                            "The `next_before` of the previous page.",
                        ),
                        _limit(50),
                    ],
                    "responses": ok_responses("One page of the audit log.", "Audit"),
                }
            },
            **live_paths(),
            **workflow_paths(),
            **stats_paths(ok_responses, _error_response),
        },
        "components": {
            "schemas": {**_schemas(), **live_schemas(), **workflow_schemas(), **stats_schemas()},
            "responses": {
                "NotFound": _error_response("No such queue."),
                "BadRequest": _error_response("A parameter is malformed; the message says which."),
                "Forbidden": _error_response("JOBS_DASHBOARD_AUTH denied the request."),
                "Unavailable": _error_response("Redis or the history database is unreachable."),
            },
        },
    }
