"""The limit options of a job, checked where they are given: unique keys, concurrency, rates
and the soft timeout."""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..errors import ConfigurationError, JobArgumentError

__all__ = [
    "MAX_UNIQUE_KEY_BYTES",
    "UNIQUE_WHILE",
    "Rate",
    "check_concurrency",
    "check_soft_timeout",
    "check_unique_for",
    "check_unique_key",
    "concurrency_key_for",
    "parse_rate",
    "unique_key_for",
]

#: The longest unique or concurrency key accepted (it is part of a Redis key).
MAX_UNIQUE_KEY_BYTES = 512
#: When a unique key holds: ``"queued"`` (queued, scheduled, deferred or waiting for a
#: concurrency slot) or ``"running"`` (those, and while a worker runs the job).
UNIQUE_WHILE = ("queued", "running")
_PERIODS = {"s": 1, "m": 60, "h": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*$")


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` starts per ``period`` seconds, across all workers."""

    limit: int
    period: int

    def __str__(self) -> str:
        unit = {1: "s", 60: "m", 3600: "h"}.get(self.period)
        return f"{self.limit}/{unit}" if unit else f"{self.limit}/{self.period}s"


def parse_rate(text: Any, where: str = "rate") -> Rate:
    """``"20/s"``, ``"100/m"``, ``"1000/h"`` (or ``"5/10s"``) as a `Rate`."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigurationError(
            f"{where}={text!r} is not a rate: write starts per period, e.g. '20/s', '100/m' "
            "or '1000/h'"
        )
    limit, count, unit = int(match[1]), int(match[2] or 1), match[3]
    if limit < 1 or count < 1:
        raise ConfigurationError(f"{where}={text!r}: the count and the period must be at least 1")
    return Rate(limit, count * _PERIODS[unit])


def check_concurrency(value: Any, where: str = "concurrency") -> int | None:
    """A concurrency limit: None, or a whole number of at least 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{where}={value!r}: a concurrency limit is a whole number of at least 1 (leave it "
            "out for no limit)"
        )
    return value


def check_unique_key(key: Any, where: str = "unique_key") -> str:
    """A unique or concurrency key: a non-empty string of at most 512 bytes."""
    if not isinstance(key, str) or not key:
        raise JobArgumentError(f"{where}={key!r}: a key is a non-empty string")
    size = len(key.encode())
    if size > MAX_UNIQUE_KEY_BYTES:
        raise JobArgumentError(
            f"{where} is {size} bytes long, more than the {MAX_UNIQUE_KEY_BYTES} allowed: use a "
            "shorter key (a hash of a long one, for instance)"
        )
    return key


def check_unique_for(value: Any) -> int | None:
    """How long a unique key holds at most, in whole seconds (None: as long as the job's TTL)."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 1:
        raise ConfigurationError(
            f"unique_for={value!r}: give a datetime.timedelta (or seconds) of at least 1 second"
        )
    return int(seconds)


def check_soft_timeout(value: Any, timeout: int | None) -> float | None:
    """A soft timeout in seconds, shorter than the hard ``timeout`` when both are given."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise ConfigurationError(f"soft_timeout={value!r}: give a positive number of seconds")
    if timeout is not None and timeout > 0 and seconds >= timeout:
        raise ConfigurationError(
            f"soft_timeout={value!r} must be shorter than timeout={timeout!r}, which stops "
            "the job for good"
        )
    return float(seconds)


def unique_key_for(path: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The unique key of ``unique=True``: the job's path and a digest of its arguments."""
    try:
        payload = json.dumps([list(args), dict(kwargs)], sort_keys=True, default=repr)
    except (TypeError, ValueError):
        payload = repr((args, sorted(kwargs.items())))
    return f"{path}:{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def concurrency_key_for(
    template: str | None, path: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> str:
    """The concurrency key of one call: ``template`` formatted with the call's keyword
    arguments (``"tenant:{tenant_id}"``), or the job's path."""
    if template is None:
        return path
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    missing = [name for name in names if name not in kwargs]
    if missing:
        raise JobArgumentError(
            f"concurrency_key={template!r} names {', '.join(missing)}, which this call of "
            f"{path} does not pass as keyword arguments"
        )
    return check_unique_key(template.format(**kwargs), "concurrency_key")
