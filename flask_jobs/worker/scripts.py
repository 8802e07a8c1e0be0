"""The worker's Lua scripts: one per state change, read from the ``.lua`` files beside this
module, loaded once per connection and run with EVALSHA (redis-py's `Script`).

Every key a script touches is in its KEYS, named by `flask_jobs.keys`; ARGV carries only
values. The claim reads the claimed job's hash by its key prefix: the id is what the claim
finds, so no caller could declare that key beforehand.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..keys import PAUSED_QUEUES_KEY, RQ_JOB_PREFIX, RQ_SUSPENDED_KEY, intermediate_key, queue_key

if TYPE_CHECKING:
    import redis

__all__ = ["Claimed", "Scripts", "claim_keys", "parse_claim"]

#: What a claim found: "suspended", None, or (queue name, job id, the job's raw hash).
Claimed = str | tuple[str, str, dict[bytes, bytes]] | None


@cache
def _source(name: str) -> str:
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


def _script(*names: str, tail: str = "") -> str:
    return "\n".join(_source(name) for name in names) + tail


class Scripts:
    """The worker's scripts on one connection."""

    def __init__(self, connection: redis.Redis) -> None:
        self.claim = connection.register_script(
            _script("claim.lua", tail="\nreturn claim(0, 1, tonumber(ARGV[1]))\n")
        )
        self.start = connection.register_script(_script("events.lua", "start.lua"))
        self.finish = connection.register_script(_script("claim.lua", "events.lua", "finish.lua"))


def claim_keys(queues: list[str]) -> tuple[list[str], list[Any]]:
    """The KEYS and ARGV of a claim from ``queues`` (highest priority first)."""
    keys: list[str] = [RQ_SUSPENDED_KEY, PAUSED_QUEUES_KEY]
    for name in queues:
        key = queue_key(name)
        keys += [key, intermediate_key(key)]
    return keys, [len(queues), RQ_JOB_PREFIX, *queues]


def parse_claim(found: Any) -> Claimed:
    """A claim script's reply as `Claimed`."""
    if not found:
        return None
    if isinstance(found, bytes):
        return found.decode()
    key, job_id, flat = found
    name = key.decode().removeprefix(queue_key(""))
    return name, job_id.decode(), dict(zip(flat[::2], flat[1::2], strict=True))
