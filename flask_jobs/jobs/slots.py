"""The concurrency keys as RQ's limiter keeps them: per key, its limit, the jobs holding a
slot and the jobs waiting for one (what the dashboard's queues page shows)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from rq.utils import as_text

from ..keys import RQ_RATE_LIMIT_KEYS, rate_limit_keys

__all__ = ["ConcurrencyKey", "concurrency_keys"]


@dataclass(frozen=True)
class ConcurrencyKey:
    """One concurrency key: at most ``limit`` jobs at once, ``holding`` slots, ``waiting``."""

    key: str
    limit: int
    holding: int
    waiting: int


def concurrency_keys(connection: redis.Redis) -> list[ConcurrencyKey]:
    """Every concurrency key RQ's limiter knows, most jobs waiting first (two round trips)."""
    names = sorted(as_text(name) for name in connection.smembers(RQ_RATE_LIMIT_KEYS))
    if not names:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            config, allowed, waiting = rate_limit_keys(name)
            pipe.hget(config, "concurrency")
            pipe.zcard(allowed)
            pipe.zcard(waiting)
        replies = pipe.execute()
    rows = [
        ConcurrencyKey(name, int(replies[3 * i] or 0), replies[3 * i + 1], replies[3 * i + 2])
        for i, name in enumerate(names)
    ]
    return sorted(rows, key=lambda row: (-row.waiting, row.key))
