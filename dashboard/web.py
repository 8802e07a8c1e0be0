"""Helpers shared by the dashboard's views: state, partial rendering, safe query arguments."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from weakref import WeakKeyDictionary

from flask import Flask, abort, current_app, render_template, request, url_for

from flask_jobs.state import JobsState

__all__ = [
    "POLL_CHOICES",
    "age",
    "arg_choice",
    "arg_int",
    "chrome",
    "json_ready",
    "poll_seconds",
    "render",
    "state",
]

#: Refresh intervals an operator can pick (seconds; 0 turns polling off).
POLL_CHOICES = (0, 2, 5, 10, 30)


#: The pages the navigation bar links to (those the app has), in its order.
NAV = (
    ("jobs_dashboard.index", "Overview"),
    ("jobs_dashboard.queues", "Queues"),
    ("jobs_dashboard.jobs", "Jobs"),
    ("jobs_dashboard.running", "Running"),
    ("jobs_dashboard.retrying", "Retrying"),
    ("jobs_dashboard.scheduled_now", "Scheduled"),
    ("jobs_dashboard.failed_now", "Failed now"),
    ("jobs_dashboard.failures", "Failures"),
    ("jobs_dashboard.functions", "Functions"),
    ("jobs_dashboard.workers", "Workers"),
    ("jobs_dashboard.schedules", "Schedules"),
    ("jobs_dashboard.audit", "Audit"),
    ("jobs_dashboard.alerts", "Alerts"),
)
#: Per app: its endpoints, and by script root the links every page has. An app's rules
#: are fixed once it serves requests: these are made once, not on every page.
_CHROME: WeakKeyDictionary[Flask, tuple[frozenset[str], dict[str, dict[str, Any]]]] = (
    WeakKeyDictionary()
)


def chrome() -> dict[str, Any]:
    """What every page's frame needs: the app's ``endpoints`` (a page links only to
    those), and ``chrome``: the navigation's links, the home page, the stylesheet, htmx."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    made = _CHROME.get(app)
    if made is None:
        endpoints = frozenset(rule.endpoint for rule in app.url_map.iter_rules())
        made = _CHROME[app] = (endpoints, {})
    endpoints, roots = made
    root = request.script_root
    links = roots.get(root)
    if links is None:
        if len(roots) >= 16:  # a proxy's header may set the root: keep a few
            roots.clear()
        nav = [(name, label, url_for(name)) for name, label in NAV if name in endpoints]
        links = roots[root] = {
            "nav": nav,
            "index": url_for("jobs_dashboard.index"),
            "css": url_for("jobs_dashboard.static", filename="flask_jobs.css"),
            "htmx": url_for("jobs_dashboard.static", filename="htmx.min.js"),
        }
    return {"endpoints": endpoints, "chrome": links}


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
