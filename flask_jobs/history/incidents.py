"""An alert's incident, as kept in Redis: open ones in a hash, resolved ones in a list.

`alerts` opens and resolves incidents; the dashboard's banner, its Alerts
page, the JSON API and the Prometheus gauges read them from here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import redis

from ..keys import ALERTS_EVALUATED_KEY, ALERTS_OPEN_KEY, ALERTS_RECENT_KEY

if TYPE_CHECKING:
    from flask import Flask

__all__ = [
    "EVALUATE_EVERY",
    "Alert",
    "alert_state",
    "last_evaluated",
    "open_alerts",
    "read_alert_state",
    "recent_incidents",
    "stale",
]

#: Seconds between two evaluations (the lock's lifetime).
EVALUATE_EVERY = 30


@dataclass(frozen=True)
class Alert:
    """One incident, as the ``JOBS_ON_ALERT`` hooks receive it and the dashboard shows it."""

    #: One of `KINDS`.
    kind: str
    #: The schedule, queue or function it is about.
    subject: str
    #: ``"open"`` or ``"resolved"``.
    state: str
    #: One line for a human: what is wrong, with the figures.
    message: str
    opened_at: datetime
    resolved_at: datetime | None = None
    #: The measured value and the threshold it crossed (seconds, or a rate).
    value: float | None = None
    threshold: float | None = None
    #: The app, for hooks that need its config or an app context (not stored).
    app: Flask | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        """``kind:subject``: one incident at a time per key."""
        return f"{self.kind}:{self.subject}"

    def to_dict(self) -> dict[str, Any]:
        """The incident as JSON-ready data (times as ISO 8601, UTC)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "subject": self.subject,
            "state": self.state,
            "message": self.message,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "value": self.value,
            "threshold": self.threshold,
        }

    @classmethod
    def from_json(cls, raw: bytes | str) -> Alert | None:
        """An incident stored by `to_dict` (None if it is not one)."""
        try:
            data = json.loads(raw)
            return cls(
                kind=str(data["kind"]),
                subject=str(data["subject"]),
                state=str(data["state"]),
                message=str(data["message"]),
                opened_at=datetime.fromisoformat(data["opened_at"]),
                resolved_at=(
                    datetime.fromisoformat(data["resolved_at"]) if data.get("resolved_at") else None
                ),
                value=data.get("value"),
                threshold=data.get("threshold"),
            )
        except (ValueError, KeyError, TypeError):
            return None


def open_alerts(conn: redis.Redis) -> list[Alert]:
    """The open incidents, oldest first."""
    stored: Any = conn.hgetall(ALERTS_OPEN_KEY)
    return _sorted_open(stored)


def _sorted_open(stored: dict[bytes, bytes]) -> list[Alert]:
    found = [alert for alert in map(Alert.from_json, stored.values()) if alert is not None]
    return sorted(found, key=lambda alert: (alert.opened_at, alert.key))


def alert_state(conn: redis.Redis) -> tuple[list[Alert], datetime | None]:
    """The open incidents and the last evaluation, in one round trip (every page's banner)."""
    with conn.pipeline(transaction=False) as pipe:
        state = read_alert_state(pipe)
        return state(pipe.execute())


def read_alert_state(
    pipe: Any,
) -> Callable[[list[Any]], tuple[list[Alert], datetime | None]]:
    """`alert_state` as two commands queued on ``pipe``: returns what reads their replies."""
    pipe.hgetall(ALERTS_OPEN_KEY)
    pipe.get(ALERTS_EVALUATED_KEY)

    def state(replies: list[Any]) -> tuple[list[Alert], datetime | None]:
        stored, raw = replies[:2]
        return _sorted_open(stored), _stamp(raw)

    return state


def recent_incidents(conn: redis.Redis, limit: int = 50) -> list[Alert]:
    """Resolved incidents, newest first."""
    stored: Any = conn.lrange(ALERTS_RECENT_KEY, 0, max(0, limit - 1))
    return [alert for alert in map(Alert.from_json, stored) if alert is not None]


def last_evaluated(conn: redis.Redis) -> datetime | None:
    """When the alerts were last evaluated (None: never, in this Redis)."""
    raw: Any = conn.get(ALERTS_EVALUATED_KEY)
    return _stamp(raw)


def _stamp(raw: bytes | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(raw), timezone.utc) if raw else None
    except ValueError:
        return None


def stale(evaluated: datetime | None, now: datetime | None = None) -> bool:
    """Whether evaluations stopped (no recorder runs: none in 10 intervals)."""
    if evaluated is None:
        return False
    now = now or datetime.now(timezone.utc)
    return (now - evaluated).total_seconds() > 10 * EVALUATE_EVERY
