"""The OpenAPI paths and schemas of the statistics API: functions, queue samples, alerts.

Kept beside `openapi` (which assembles the document) so each stays small; the
bounds here are the ones `views_functions`, `views_queue_charts` and
`views_alerts` enforce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["stats_paths", "stats_schemas"]

_NUM = {"type": ["number", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_RANGES = ["1h", "24h", "7d", "30d"]


def _range() -> dict[str, Any]:
    return {
        "name": "range",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": _RANGES, "default": "24h"},
        "description": "How far back to look.",
    }


def _summary_properties() -> dict[str, Any]:
    figures: dict[str, Any] = {
        "runs": {"type": "integer"},
        "finished": {"type": "integer"},
        "failed": {"type": "integer", "description": "Failed, retried and abandoned attempts."},
        "failure_rate": _NUM,
        "last_ended": _TIME,
    }
    for name in ("run", "wait"):
        for p in ("p50", "p95", "p99"):
            figures[f"{name}_{p}"] = {**_NUM, "description": f"{name} time {p}, seconds"}
    return figures


def stats_schemas() -> dict[str, Any]:
    """The response schemas of the statistics API."""
    summary = _summary_properties()
    point = {
        "type": "object",
        "properties": {"at": {"type": "string", "format": "date-time"}, **summary},
        "required": ["at", "runs"],
    }
    failure = {
        "type": "object",
        "properties": {
            "exc_type": {"type": "string"},
            "message": {"type": "string"},
            "count": {"type": "integer"},
            "last_seen": _TIME,
            "last_job_id": {"type": "string"},
        },
        "required": ["exc_type", "message", "count"],
    }
    sample = {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "depth": {"type": "integer", "description": "Peak of the interval."},
            "oldest_wait": {**_NUM, "description": "Longest wait of the interval, seconds."},
        },
        "required": ["at", "depth", "oldest_wait"],
    }
    alert = {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "kind": {
                "type": "string",
                "enum": ["schedule_late", "queue_wait", "failure_rate", "no_worker"],
            },
            "subject": {"type": "string"},
            "state": {"type": "string", "enum": ["open", "resolved"]},
            "message": {"type": "string"},
            "opened_at": {"type": "string", "format": "date-time"},
            "resolved_at": _TIME,
            "value": _NUM,
            "threshold": _NUM,
        },
        "required": ["key", "kind", "subject", "state", "message", "opened_at"],
    }
    return {
        "Functions": {
            "type": "object",
            "properties": {
                "range": {"type": "string", "enum": _RANGES},
                "functions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"func": {"type": "string"}, **summary},
                        "required": ["func", "runs", "failed"],
                    },
                },
            },
            "required": ["range", "functions"],
        },
        "Function": {
            "type": "object",
            "properties": {
                "func": {"type": "string"},
                "range": {"type": "string", "enum": _RANGES},
                "bucket_seconds": {"type": "integer"},
                **summary,
                "series": {"type": "array", "items": point},
                "failures": {"type": "array", "items": failure},
                "schedules": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["func", "range", "runs", "series", "failures", "schedules"],
        },
        "QueueSamples": {
            "type": "object",
            "properties": {
                "range": {"type": "string", "enum": _RANGES},
                "queues": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": sample},
                },
            },
            "required": ["range", "queues"],
        },
        "Alerts": {
            "type": "object",
            "properties": {
                "open": {"type": "array", "items": alert},
                "recent": {"type": "array", "items": alert},
                "evaluated_at": _TIME,
                "stale": {"type": "boolean"},
            },
            "required": ["open", "recent", "evaluated_at", "stale"],
        },
    }


def stats_paths(
    ok: Callable[[str, str], dict[str, Any]], error: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    """The paths of the statistics API, with the document's ``ok`` and ``error`` responses."""

    def _ok(description: str, ref: str, **more: Any) -> dict[str, Any]:
        return {**ok(description, ref), **more}

    _error = error
    missing = _error("The history is off, or holds no run of this function.")
    return {
        "/api/functions": {
            "get": {
                "operationId": "listFunctions",
                "summary": "Every function with runs in the range: runs, failures, percentiles.",
                "parameters": [_range()],
                "responses": _ok("The functions, most failures first.", "Functions"),
            }
        },
        "/api/functions/{name}": {
            "get": {
                "operationId": "getFunction",
                "summary": "One function: run and wait percentiles, a series, failure groups.",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 255},
                        "description": "The dotted name (`app.tasks.send`); a bare name redirects.",
                    },
                    _range(),
                ],
                "responses": _ok(
                    "The function's figures.",
                    "Function",
                    **{
                        "302": {"description": "A bare name: to the one function of that name."},
                        "404": missing,
                    },
                ),
            }
        },
        "/api/queue-samples": {
            "get": {
                "operationId": "queueSamples",
                "summary": "Each queue's depth and oldest wait over time (sampled each minute).",
                "parameters": [
                    _range(),
                    {
                        "name": "queue",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 100},
                        "description": "Only this queue.",
                    },
                ],
                "responses": _ok(
                    "Samples per queue, oldest first.",
                    "QueueSamples",
                    **{"404": _error("The history is off, or there is no such queue.")},
                ),
            }
        },
        "/api/alerts": {
            "get": {
                "operationId": "alerts",
                "summary": "Open alerts, recently resolved ones, and the last evaluation.",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                        "description": "How many resolved incidents at most.",
                    }
                ],
                "responses": _ok("The incidents.", "Alerts"),
            }
        },
    }
