"""The audit log: each action taken on the dashboard is recorded; the Audit page and API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from flask_jobs.ops.audit import entries, record

from .jobs_common import history_off, reading_history
from .web import arg_int, render, state

__all__ = ["api_audit", "audit", "note"]

PAGE_SIZE = 50


def actor() -> str:
    """Who is acting: the name the host app gives the header (``jobs_dashboard_user``),
    else the web server's ``REMOTE_USER``, else the client's address."""
    context: dict[str, Any] = {}
    current_app.update_template_context(context)  # the host app's context processors
    user = context.get("jobs_dashboard_user")
    name = user.get("name") if isinstance(user, dict) else None
    if name:
        return str(name)
    return request.remote_user or f"anonymous ({request.remote_addr or '?'})"


def note(action: str, target: str | None, count: int, detail: str | None = None) -> None:
    """Record ``action`` on ``target`` (``count`` things) in the audit log."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    record(
        app, state(), actor=actor(), source="dashboard", action=action, target=target,
        count=count, detail=detail,
    )  # fmt: skip


def _page() -> tuple[list[dict[str, Any]], int | None, int | None]:
    before = arg_int("before", 0, minimum=0, maximum=2**62) or None
    with reading_history():
        rows, next_before = entries(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            state(),
            before=before,
            limit=arg_int("limit", PAGE_SIZE, minimum=1, maximum=500),
        )
    return rows, next_before, before


def audit() -> ResponseReturnValue:
    """Every recorded operator action, newest first."""
    if not state().history_enabled:
        return history_off()
    rows, next_before, before = _page()
    return render(
        "flask_jobs/audit.html",
        None,
        rows=rows,
        next_url=url_for(".audit", before=next_before) if next_before else None,
        first_url=url_for(".audit") if before else None,
    )


def api_audit() -> ResponseReturnValue:
    """The audit log as JSON, newest first; ``next_before`` pages on."""
    if not state().history_enabled:
        return jsonify({"error": "The job history is off.", "status": 404}), 404
    rows, next_before, _ = _page()
    for row in rows:
        at = row["at"]
        if isinstance(at, datetime):
            row["at"] = (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).isoformat()
    return jsonify({"entries": rows, "next_before": next_before})
