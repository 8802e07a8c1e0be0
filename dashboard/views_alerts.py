"""Alerts: the banner on every page, the Alerts page (open and recent incidents), their JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
from flask import g, jsonify
from flask.typing import ResponseReturnValue

from flask_jobs.errors import JobsConnectionError
from flask_jobs.history.alerts import KINDS
from flask_jobs.history.incidents import (
    EVALUATE_EVERY,
    Alert,
    alert_state,
    last_evaluated,
    open_alerts,
    read_alert_state,
    recent_incidents,
    stale,
)

from .web import arg_int, render, state

__all__ = ["alerts", "api_alerts", "banner", "banner_context", "read_banner"]


def banner() -> dict[str, Any]:
    """The banner's data: open alerts and whether evaluation stopped; empty if Redis is down.
    Read here, unless the page read it already (`read_banner`)."""
    kept: dict[str, Any] | None = g.pop("jobs_banner", None)
    if kept is not None:
        return kept
    try:
        return _banner(*alert_state(state().connection))
    except (redis.RedisError, JobsConnectionError):  # the page says Redis is down
        return {"alerts": [], "stale": None}


def _banner(alerts: list[Alert], evaluated: datetime | None) -> dict[str, Any]:
    return {"alerts": alerts, "stale": evaluated if stale(evaluated) else None}


def read_banner(pipe: Any) -> Callable[[list[Any]], None]:
    """Queue the banner's reads on ``pipe``, a page's own round trip to Redis: returns what
    keeps the banner of their replies for this request (`banner` then reads nothing)."""
    read = read_alert_state(pipe)

    def keep(replies: list[Any]) -> None:
        g.jobs_banner = _banner(*read(replies))

    return keep


def _config() -> dict[str, Any]:
    config = state().config
    return {
        "queue_wait": config.alert_queue_wait,
        "failure_rate": config.alert_failure_rate,
        "min_runs": config.alert_min_runs,
        "schedule_grace": config.alert_schedule_grace,
        "hooks": len(config.on_alert),
    }


def alerts() -> ResponseReturnValue:
    """Open incidents, recently resolved ones, and what each check watches."""
    limit = arg_int("limit", 50, minimum=1, maximum=200)
    conn = state().connection
    return render(
        "flask_jobs/alerts.html",
        None,
        open_now=open_alerts(conn),
        recent=recent_incidents(conn, limit),
        evaluated=last_evaluated(conn),
        every=EVALUATE_EVERY,
        kinds=KINDS,
        settings=_config(),
    )


def api_alerts() -> ResponseReturnValue:
    """Open and recent incidents, and when they were last evaluated, as JSON."""
    limit = arg_int("limit", 50, minimum=1, maximum=200)
    conn = state().connection
    evaluated = last_evaluated(conn)
    return jsonify(
        {
            "open": [alert.to_dict() for alert in open_alerts(conn)],
            "recent": [alert.to_dict() for alert in recent_incidents(conn, limit)],
            "evaluated_at": evaluated.isoformat() if evaluated else None,
            "stale": stale(evaluated),
        }
    )


def banner_context() -> dict[str, object]:
    """The alert banner, for every page."""
    return {"alert_banner": banner()}
