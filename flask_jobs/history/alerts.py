"""Alerts: late schedules, queues that wait too long, failing functions, queues nobody serves.

One history recorder at a time (whichever takes `ALERTS_LOCK_KEY`) evaluates
every check each `EVALUATE_EVERY` seconds. An alert whose condition starts
to hold opens an incident; one whose condition stops holding resolves it.
Both transitions are written to Redis first (``HSETNX`` and ``HDEL`` on
`ALERTS_OPEN_KEY` answer "was I first?") and only the process that made the
transition calls the ``JOBS_ON_ALERT`` hooks, so each incident is sent once
when it opens and once when it resolves. The dashboard's banner, its Alerts
page and the Prometheus gauges read them through `incidents`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

import redis
from rq.worker import Worker

from ..hooks import call_hooks
from ..keys import (
    ALERTS_EVALUATED_KEY,
    ALERTS_OPEN_KEY,
    ALERTS_RECENT_KEY,
    PAUSED_QUEUES_KEY,
    schedule_key,
)
from .functions import FunctionStats
from .incidents import EVALUATE_EVERY, Alert
from .samples import sample_queues

if TYPE_CHECKING:
    from flask import Flask

    from ..config import JobsConfig
    from .store import HistoryStore

__all__ = ["EVALUATE_EVERY", "KINDS", "AlertSource", "evaluate"]

#: Seconds the time of the last evaluation is kept in Redis.
EVALUATED_TTL = 86_400

log = logging.getLogger("flask_jobs.alerts")

#: The window of the failure-rate check.
FAILURE_WINDOW = timedelta(minutes=15)
#: Resolved incidents kept in `ALERTS_RECENT_KEY`.
RECENT = 200
#: The kinds of alert, with what each watches.
KINDS = {
    "schedule_late": "a schedule did not run when due (JOBS_ALERT_SCHEDULE_GRACE)",
    "queue_wait": "a queue's oldest job waits too long (JOBS_ALERT_QUEUE_WAIT)",
    "failure_rate": "a function fails too often over 15 min (JOBS_ALERT_FAILURE_RATE)",
    "no_worker": "a queue has jobs and no worker listens on it",
}


class AlertSource(Protocol):
    """What the checks read (an app's ``JobsState``)."""

    @property
    def connection(self) -> redis.Redis: ...

    config: JobsConfig
    history: HistoryStore
    history_enabled: bool


@dataclass(frozen=True)
class _Condition:
    kind: str
    subject: str
    message: str
    value: float | None
    threshold: float | None


def _words(seconds: float) -> str:
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


# -- the checks -------------------------------------------------------------------


def _schedule_names(source: AlertSource) -> list[str]:
    """The app's enabled schedules: ``JOBS_SCHEDULE`` and ``@jobs.periodic`` ones."""
    entries: dict[str, Any] = dict(source.config.schedule)
    # the extension keeps @jobs.periodic entries; the state hands it to us as ``jobs``
    periodic = getattr(getattr(source, "jobs", None), "_periodic", None)
    if isinstance(periodic, dict):
        for name, entry in periodic.items():
            entries.setdefault(name, entry)
    return sorted(
        name
        for name, entry in entries.items()
        if not (isinstance(entry, dict) and entry.get("enabled") is False)
    )


def _late_schedules(source: AlertSource, now: datetime) -> list[_Condition]:
    grace = source.config.alert_schedule_grace
    if grace is None:
        return []
    names = _schedule_names(source)
    conn = source.connection
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hmget(schedule_key(name), "next_fire", "paused")
        replies = pipe.execute()
    found = []
    for name, (next_fire, paused) in zip(names, replies, strict=True):
        if paused == b"1" or not next_fire:
            continue  # paused, or never planned by a scheduler: nothing is overdue
        try:
            due = datetime.fromtimestamp(float(next_fire), timezone.utc)
        except ValueError:
            continue
        late = (now - due).total_seconds()
        if late > grace.total_seconds():
            found.append(
                _Condition(
                    "schedule_late",
                    name,
                    f"Schedule {name} did not run: due at {due:%Y-%m-%d %H:%M} UTC, "
                    f"{_words(late)} ago. Is `flask jobs scheduler` running?",
                    late,
                    grace.total_seconds(),
                )
            )
    return found


def _queue_checks(source: AlertSource, samples: list[dict[str, Any]]) -> list[_Condition]:
    found = []
    limit = source.config.alert_queue_wait
    conn = source.connection
    listeners: Counter[str] = Counter()
    if any(row["depth"] for row in samples):
        for worker in Worker.all(connection=conn):
            listeners.update(worker.queue_names())
    paused: Any = conn.smembers(PAUSED_QUEUES_KEY)
    paused_names = {raw.decode() for raw in paused}
    for row in samples:
        name, depth, wait = row["queue"], row["depth"], row["oldest_wait"]
        if name in paused_names:
            continue  # paused on purpose: its jobs are meant to wait
        if limit is not None and wait is not None and wait > limit.total_seconds():
            found.append(
                _Condition(
                    "queue_wait",
                    name,
                    f"Queue {name}: the oldest of {depth} job(s) has waited {_words(wait)}, "
                    f"longer than {_words(limit.total_seconds())}.",
                    wait,
                    limit.total_seconds(),
                )
            )
        if depth and not listeners[name]:
            found.append(
                _Condition(
                    "no_worker",
                    name,
                    f"Queue {name} has {depth} job(s) waiting and no worker listens on it.",
                    float(depth),
                    None,
                )
            )
    return found


def _failing_functions(app: Flask, source: AlertSource) -> list[_Condition]:
    rate = source.config.alert_failure_rate
    if rate is None or not source.history_enabled:
        return []
    minimum = source.config.alert_min_runs
    found = []
    for func, (failed, runs) in sorted(
        FunctionStats(source.history, app).failure_rate(FAILURE_WINDOW).items()
    ):
        if runs >= minimum and failed / runs > rate:
            found.append(
                _Condition(
                    "failure_rate",
                    func,
                    f"{func}: {failed} of {runs} runs failed in the last 15 min "
                    f"({failed / runs:.0%}, above {rate:.0%}).",
                    failed / runs,
                    rate,
                )
            )
    return found


# -- evaluation -------------------------------------------------------------------


def evaluate(
    app: Flask,
    source: AlertSource,
    *,
    samples: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> list[Alert]:
    """Run every check, open and resolve incidents in Redis, call the hooks; the transitions.

    ``samples``: the queues' depths and waits if the caller just took them
    (`sample_queues`). A check that cannot run (the history database is down)
    leaves its open incidents as they are.
    """
    now = now or datetime.now(timezone.utc)
    conn = source.connection
    holding: dict[str, _Condition] = {}
    checked: set[str] = set()
    if samples is None:
        samples = sample_queues(conn, source.config.queues, now)
    checks: tuple[tuple[str, Callable[[], list[_Condition]]], ...] = (
        ("schedule_late", lambda: _late_schedules(source, now)),
        ("queue", lambda: _queue_checks(source, samples)),
        ("failure_rate", lambda: _failing_functions(app, source)),
    )
    for kind, check in checks:
        try:
            conditions = check()
        except redis.RedisError:
            raise
        except Exception as exc:  # e.g. the history database is down: judge again later
            log.warning("alerts: the %s check could not run (%s); trying again later", kind, exc)
            continue
        checked.update(("queue_wait", "no_worker") if kind == "queue" else (kind,))
        holding.update({f"{c.kind}:{c.subject}": c for c in conditions})
    transitions = _apply(conn, holding, checked, now)
    # Kept a day: the banner says "no recorder runs" until then, and no key outlives use.
    conn.set(ALERTS_EVALUATED_KEY, repr(now.timestamp()), ex=EVALUATED_TTL)
    hooks = source.config.on_alert
    if hooks and transitions:
        with app.app_context():
            for alert in transitions:
                call_hooks(hooks, replace(alert, app=app), setting="JOBS_ON_ALERT")
    for alert in transitions:
        level = logging.WARNING if alert.state == "open" else logging.INFO
        log.log(level, "alert %s: %s", alert.state, alert.message)
    return transitions


def _apply(
    conn: redis.Redis, holding: dict[str, _Condition], checked: set[str], now: datetime
) -> list[Alert]:
    """Open what newly holds, refresh what still holds, resolve what stopped holding."""
    stored: Any = conn.hgetall(ALERTS_OPEN_KEY)
    open_now = {key.decode(): Alert.from_json(raw) for key, raw in stored.items()}
    transitions = []
    for key, condition in holding.items():
        current = open_now.get(key)
        alert = Alert(
            kind=condition.kind,
            subject=condition.subject,
            state="open",
            message=condition.message,
            opened_at=current.opened_at if current else now,
            value=condition.value,
            threshold=condition.threshold,
        )
        body = json.dumps(alert.to_dict())
        if current is None:
            if conn.hsetnx(ALERTS_OPEN_KEY, key, body):
                transitions.append(alert)
        else:
            conn.hset(ALERTS_OPEN_KEY, key, body)
    for key, current in open_now.items():
        if key in holding or current is None or current.kind not in checked:
            if current is None:
                conn.hdel(ALERTS_OPEN_KEY, key)  # unreadable: drop it
            continue
        if conn.hdel(ALERTS_OPEN_KEY, key):
            resolved = replace(current, state="resolved", resolved_at=now)
            with conn.pipeline(transaction=False) as pipe:
                pipe.lpush(ALERTS_RECENT_KEY, json.dumps(resolved.to_dict()))
                pipe.ltrim(ALERTS_RECENT_KEY, 0, RECENT - 1)
                pipe.execute()
            transitions.append(resolved)
    return transitions
