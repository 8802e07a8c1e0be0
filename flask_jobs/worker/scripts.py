"""The worker's Lua scripts: one per state change, read from the ``.lua`` files beside this
module, loaded once per connection and run with EVALSHA.

Every key a script touches is in its KEYS, named by `flask_jobs.keys`; ARGV carries only
values. The claim reads the claimed job's hash by its key prefix: the id is what the claim
finds, so no caller could declare that key beforehand.

The scripts are the worker's hot path, so they skip redis-py's command layer: each thread
keeps one connection of the client's pool for itself, packs the EVALSHA with hiredis (in
C) and reads the reply, about a third of the Python a job used to cost. A script whose
reply nobody needs at once (a job's start) is sent without waiting: its reply is read
before the thread's next call, so the job runs while the start is on the wire, and a
serial worker waits on Redis once per job.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import cache
from importlib import resources
from typing import Any

import redis
from hiredis import pack_command

from ..keys import PAUSED_QUEUES_KEY, RQ_JOB_PREFIX, RQ_SUSPENDED_KEY, intermediate_key, queue_key

__all__ = ["Channel", "Claimed", "Script", "Scripts", "claim_keys", "parse_claim"]

#: What a claim found: "suspended", None, or (queue name, job id, the job's raw hash).
Claimed = str | tuple[str, str, dict[bytes, bytes]] | None


@cache
def _source(name: str) -> str:
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


def _script(*names: str, tail: str = "") -> str:
    return "\n".join(_source(name) for name in names) + tail


class Channel:
    """EVALSHA on a connection of each thread's own, taken from ``client``'s pool (a
    forked child takes a new one: a socket is never shared with the parent)."""

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self._local = threading.local()

    def _connection(self) -> Any:  # a redis-py connection (its methods are untyped)
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.pid = os.getpid()
            local.connection = self.pool.get_connection()
            local.pending = []  # sent ahead, reply not read yet
            local.again = []  # to run again: the reply was an error or was lost
        return local.connection

    def _exchange(self, *words: Any) -> Any:
        connection = self._connection()
        try:
            connection.send_packed_command([pack_command(words)], check_health=False)
            return connection.read_response()
        except redis.ResponseError:
            raise  # the script's own error: the connection is in step
        except BaseException:  # lost, or interrupted (a cold shutdown) between send and reply
            connection.disconnect()  # the next call connects again
            raise

    def evalsha(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` (after the replies of what this thread sent ahead); loaded first
        when Redis does not know it (a restart, SCRIPT FLUSH)."""
        self.settle()
        return self._run(script, keys, args)

    def _run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        words = (b"EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self._exchange(*words)
        except redis.exceptions.NoScriptError:
            self._exchange(b"SCRIPT", b"LOAD", script.source)
            return self._exchange(*words)

    def send(self, script: Script, keys: list[str], args: list[Any]) -> None:
        """Send ``script`` now; its reply is read by this thread's next call (or `settle`)."""
        self.settle()
        connection = self._connection()
        words = (b"EVALSHA", script.sha, len(keys), *keys, *args)
        pending = self._local.pending
        pending.append((script, keys, args))
        try:
            connection.send_packed_command([pack_command(words)], check_health=False)
        except BaseException:  # whether it went out is unknown: drop the connection
            pending.pop()
            connection.disconnect()
            raise

    def settle(self) -> None:
        """Read the replies of the scripts this thread sent ahead. One that failed, or whose
        reply was lost with the connection, runs again now (each of the worker's scripts
        writes the same the second time): when this returns, all of them ran; when it
        raises (Redis is down), the next call tries again."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            return
        pending, again = local.pending, local.again
        while pending:
            try:
                local.connection.read_response()
            except redis.exceptions.NoScriptError:
                again.append(pending.pop(0))
                continue
            except redis.ResponseError:
                pending.pop(0)  # the script itself failed: that is for the caller to see
                raise
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                local.connection.disconnect()  # the other replies are gone with it
                again += pending
                pending.clear()
                break
            pending.pop(0)
        while again:
            self._run(*again[0])
            again.pop(0)

    def close(self) -> None:
        """Read what this thread sent ahead; give its connection back to the pool."""
        local = self._local
        if getattr(local, "pid", None) == os.getpid():
            try:
                self.settle()
            except Exception:  # Redis is gone: what was sent ahead is the cleanup's
                local.connection.disconnect()
            self.pool.release(local.connection)
        local.pid = None


class Script:
    """One Lua script, called as ``script(keys=[...], args=[...])``."""

    def __init__(self, channel: Channel, source: str) -> None:
        self.channel = channel
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        return self.channel.evalsha(self, keys, args)

    def send(self, keys: list[str], args: list[Any]) -> None:
        """Run it without waiting for its reply (see `Channel.send`)."""
        self.channel.send(self, keys, args)


class Scripts:
    """The worker's scripts on one client."""

    def __init__(self, connection: redis.Redis) -> None:
        self.channel = Channel(connection)
        self.claim = Script(
            self.channel, _script("claim.lua", tail="\nreturn claim(0, 1, tonumber(ARGV[1]))\n")
        )
        self.start = Script(self.channel, _script("events.lua", "start.lua"))
        self.finish = Script(self.channel, _script("claim.lua", "events.lua", "finish.lua"))
        self.dependents = Script(self.channel, _script("dependents.lua"))
        self.fail = Script(self.channel, _script("events.lua", "fail.lua"))


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
