"""Helpers shared by the dashboard's views: state, partial rendering, safe query arguments."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import abort, current_app, render_template, request

from flask_jobs.state import JobsState

__all__ = [
    "POLL_CHOICES",
    "age",
    "arg_choice",
    "arg_int",
    "json_ready",
    "poll_seconds",
    "render",
    "state",
]

#: Refresh intervals an operator can pick (seconds; 0 turns polling off).
POLL_CHOICES = (0, 2, 5, 10, 30)


def state() -> JobsState:
    """The current app's flask-jobs state."""
    jobs_state: JobsState = current_app.extensions["jobs"]
    return jobs_state


def render(template: str, partial: str | None = None, **context: Any) -> str:
    """The whole page, or only ``partial`` when htmx asks (``HX-Request``) for a refresh."""
    if partial is not None and request.headers.get("HX-Request") == "true":
        return render_template(partial, **context)
    return render_template(template, **context)


def arg_int(name: str, default: int, *, minimum: int = 0, maximum: int = 10_000) -> int:
    """An integer query argument; a 400 that says so when it is not one, or out of range."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"'{name}' must be a whole number, not {raw[:40]!r}.")
    if not minimum <= value <= maximum:
        abort(400, f"'{name}' must be between {minimum} and {maximum}, not {value}.")
    return value


def arg_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """A query argument that must be one of ``choices``; a 400 otherwise."""
    raw = request.args.get(name) or default
    if raw not in choices:
        abort(400, f"'{name}' must be one of {', '.join(choices)}, not {raw[:40]!r}.")
    return raw


def poll_seconds() -> int:
    """The operator's refresh interval: ``?poll=N`` or the cookie it left, default 5 s."""
    raw = request.args.get("poll") or request.cookies.get("flask_jobs_poll") or "5"
    try:
        value = int(raw)
    except ValueError:
        return 5
    return value if value in POLL_CHOICES else 5


def age(moment: datetime | None) -> str:
    """How long ago ``moment`` was, in words a glance can read ("3 min", "2 h")."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = max(0.0, (datetime.now(timezone.utc) - moment).total_seconds())
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def json_ready(value: Any) -> Any:
    """``value`` with its datetimes as ISO-8601 text (UTC when they carry no zone)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.isoformat()
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
