"""The OpenAPI paths and schemas of the live sets (``/api/live/<set>``) and the workers
(``/api/workers``), merged into the document by `openapi.openapi_document`."""

from __future__ import annotations

from typing import Any

__all__ = ["live_paths", "live_schemas", "ok_responses"]

_NULL_STR = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
#: Each live set: its summary in the document.
SETS = {
    "failed": "Jobs failed now (RQ's failed registries), latest failure first.",
    "running": "Jobs running now (RQ's started registries), longest running first.",
    "retrying": "Failed attempts waiting for their retry, soonest first.",
    "scheduled": "Delayed jobs (enqueue_in, enqueue_at), soonest due first.",
}


def ok_responses(description: str, ref: str) -> dict[str, Any]:
    """The responses of a read: 200 with the ``ref`` schema, or the shared errors."""
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        "400": {"$ref": "#/components/responses/BadRequest"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "503": {"$ref": "#/components/responses/Unavailable"},
    }


def _parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


def live_paths() -> dict[str, Any]:
    """The path items of the live sets and the workers."""
    parameters = [
        _parameter("queue", {"type": "string", "maxLength": 100}, "Only this queue (else 404)."),
        _parameter(
            "offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0},
            "How many jobs to skip (the `next_offset` of the previous page).",
        ),
        _parameter(
            "limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
            "How many items at most.",
        ),
    ]  # fmt: skip
    paths: dict[str, Any] = {
        f"/api/live/{kind}": {
            "get": {
                "operationId": f"live{kind.capitalize()}",
                "summary": summary,
                "parameters": parameters,
                "responses": {
                    **ok_responses("One page of the set.", "LiveSet"),
                    "404": {"$ref": "#/components/responses/NotFound"},
                },
            }
        }
        for kind, summary in SETS.items()
    }
    paths["/api/workers"] = {
        "get": {
            "operationId": "workers",
            "summary": "Worker processes (mode, slots, jobs now, memory) and scheduler processes.",
            "responses": ok_responses("The workers and schedulers.", "Workers"),
        }
    }
    return paths


def live_schemas() -> dict[str, Any]:
    """The schemas `live_paths` refers to."""
    progress = {
        "type": ["object", "null"],
        "properties": {"percent": {"type": "integer"}, "message": _NULL_STR},
    }
    live_job = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "func": _NULL_STR,
            "queue": {"type": "string"},
            "at": {**_NULL_TIME, "description": "When it failed, started, or is due."},
            "attempt": {**_NULL_INT, "description": "Its attempt (next, for a retry)."},
            "error": {**_NULL_STR, "description": "The exception line of its last failure."},
            "worker": _NULL_STR,
            "started_at": _NULL_TIME,
            "progress": progress,
        },
        "required": ["id", "queue"],
    }
    running = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "func": _NULL_STR,
            "queue": _NULL_STR,
            "started_at": _NULL_TIME,
            "progress": progress,
        },
        "required": ["id"],
    }
    worker = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "host": _NULL_STR,
            "pid": _NULL_INT,
            "state": {"type": "string"},
            "queues": {"type": "array", "items": {"type": "string"}},
            "mode": {**_NULL_STR, "description": "serial, threads, fork, async or rq."},
            "slots": {**_NULL_INT, "description": "Jobs it may run at once."},
            "busy": {"type": "integer"},
            "rss": {**_NULL_INT, "description": "Resident memory in bytes."},
            "supervisor": _NULL_STR,
            "jobs": {"type": "array", "items": running},
            "heartbeat": _NULL_TIME,
            "born": _NULL_TIME,
            "successful_jobs": {"type": "integer"},
            "failed_jobs": {"type": "integer"},
        },
        "required": ["name", "state", "queues", "busy", "jobs"],
    }
    scheduler = {
        "type": "object",
        "properties": {
            "token": {"type": "string"},
            "host": {"type": "string"},
            "pid": _NULL_INT,
            "last_tick": {"type": "string", "format": "date-time"},
            "leads": {"type": "boolean"},
        },
        "required": ["token", "last_tick", "leads"],
    }
    return {
        "LiveSet": {
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "exact": {"type": "boolean", "description": "False: total is an estimate."},
                "jobs": {"type": "array", "items": live_job},
                "next_offset": _NULL_INT,
            },
            "required": ["total", "exact", "jobs", "next_offset"],
        },
        "Workers": {
            "type": "object",
            "properties": {
                "workers": {"type": "array", "items": worker},
                "schedulers": {"type": "array", "items": scheduler},
            },
            "required": ["workers", "schedulers"],
        },
    }
