"""The OpenAPI path and schema of a workflow (``/api/workflows/<id>``: a chain, group or
chord), merged into the document by `openapi.openapi_document`."""

from __future__ import annotations

from typing import Any

from .openapi_live import ok_responses

__all__ = ["workflow_paths", "workflow_schemas"]

_NULL_STR = {"type": ["string", "null"]}
_NOT_FOUND = {
    "description": "No workflow with this id (it may have expired).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def workflow_schemas() -> dict[str, Any]:
    """The ``Workflow`` schema."""
    return {
        "Workflow": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "kind": {"type": "string", "enum": ["chain", "group", "chord"]},
                "status": {"type": "string", "enum": ["queued", "started", "finished", "failed"]},
                "allow_failure": {"type": "boolean"},
                "created_at": _NULL_STR,
                "progress": {
                    "type": "object",
                    "properties": {n: {"type": "integer"} for n in ("done", "failed", "total")},
                    "required": ["done", "failed", "total"],
                },
                "members": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "index": {"type": "integer"},
                            "role": {"type": "string", "enum": ["step", "member", "callback"]},
                            "func": _NULL_STR,
                            "status": {"type": "string"},
                            "canceled_because": _NULL_STR,
                        },
                        "required": ["id", "index", "role", "status"],
                    },
                },
                "results": {"type": "array", "description": "Each step's or member's result."},
                "result": {"description": "The chain's last step's, or the chord's callback's."},
            },
            "required": ["id", "kind", "status", "progress", "members", "results"],
        },
    }


def workflow_paths() -> dict[str, Any]:
    """The path item of one workflow."""
    return {
        "/api/workflows/{workflow_id}": {
            "get": {
                "operationId": "getWorkflow",
                "summary": "A chain, group or chord: status, members with state, results.",
                "parameters": [
                    {
                        "name": "workflow_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
                    }
                ],
                "responses": {
                    **ok_responses("The workflow.", "Workflow"),
                    "404": _NOT_FOUND,
                },
            }
        },
    }
