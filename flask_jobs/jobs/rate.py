"""Rate limits (``@jobs.job(rate="100/m")``): a sliding-window log in Redis, one Lua call
per check.

The enqueue writes the limit on the job's hash (`flask_jobs.keys.JOB_RATE_FIELD`, as
``<starts>/<seconds>``, and `flask_jobs.keys.JOB_RATE_KEY_FIELD`, the key the starts are
counted under); a worker enforces it where it claims the job: `RATE_FUNCTION` is a Lua
function its claim script can include, `rate_allows` the same check from Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from rq.utils import as_text

from ..keys import JOB_RATE_FIELD, JOB_RATE_KEY_FIELD, rate_key
from .limits import Rate

__all__ = ["RATE_FUNCTION", "RATE_SCRIPT", "RateCheck", "job_rate", "rate_allows", "start_allowed"]

# rate_allows(key, limit, period_ms, now_ms, member) -> {1, 0} (a start is recorded) or
# {0, wait_ms} (the limit is reached; the oldest start leaves the window in wait_ms).
# The key is a sorted set of the starts within the last period, scored by time in ms;
# now_ms = '' takes Redis's own clock, so every worker counts on one clock.
RATE_FUNCTION = """
local function rate_allows(key, limit, period_ms, now_ms, member)
  local now = tonumber(now_ms)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period_ms)
  local count = redis.call('ZCARD', key)
  if count < limit then
    -- the count keeps two starts of one millisecond (and one member) apart
    redis.call('ZADD', key, now, now .. ':' .. count .. ':' .. member)
    redis.call('PEXPIRE', key, period_ms)
    return {1, 0}
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, math.max(1, tonumber(oldest[2]) + period_ms - now)}
end
"""
# KEYS: 1 the rate key. ARGV: 1 limit, 2 period (ms), 3 now (ms, or ''), 4 member.
RATE_SCRIPT = (
    RATE_FUNCTION
    + """
return rate_allows(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4])
"""
)


@dataclass(frozen=True)
class RateCheck:
    """One check's outcome: whether the start may go ahead, else how long to wait."""

    allowed: bool
    wait_seconds: float

    def __bool__(self) -> bool:
        return self.allowed


def rate_allows(
    connection: redis.Redis,
    key: str,
    limit: int,
    period: float,
    *,
    member: str = "",
    now_ms: int | None = None,
) -> RateCheck:
    """Record a start under rate key ``key`` if fewer than ``limit`` happened in the last
    ``period`` seconds (``member``, e.g. the job id, tells starts of one millisecond
    apart); else say how long until one leaves the window. ``now_ms`` is for tests."""
    script = connection.register_script(RATE_SCRIPT)
    reply: Any = script(
        keys=[rate_key(key)],
        args=[limit, int(period * 1000), "" if now_ms is None else now_ms, member],
    )
    allowed, wait_ms = int(reply[0]), int(reply[1])
    return RateCheck(allowed == 1, wait_ms / 1000)


def job_rate(fields: dict[Any, Any]) -> tuple[str, Rate] | None:
    """The rate key and `Rate` stored on a job hash's ``fields`` (as ``HGETALL`` gives
    them), or None for a job without a rate limit."""
    raw = fields.get(JOB_RATE_FIELD) or fields.get(JOB_RATE_FIELD.encode())
    key = fields.get(JOB_RATE_KEY_FIELD) or fields.get(JOB_RATE_KEY_FIELD.encode())
    if not raw or not key:
        return None
    limit, _, period = as_text(raw).partition("/")
    return as_text(key), Rate(int(limit), int(period))


def start_allowed(connection: redis.Redis, job_id: str, fields: dict[Any, Any]) -> RateCheck:
    """Whether the job ``job_id``, whose hash is ``fields``, may start now under its rate
    limit (always, for a job without one): the check a worker makes where it claims."""
    rate = job_rate(fields)
    if rate is None:
        return RateCheck(True, 0.0)
    key, limit = rate
    return rate_allows(connection, key, limit.limit, limit.period, member=job_id)
