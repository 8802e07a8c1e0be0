"""What a scenario left in Redis, normalised so that two runs of it can be compared.

A snapshot maps each key to ``(type, value, ttl)``. Everything that differs from
one run to the next by nature is replaced by a placeholder: job ids by ``{job1}``,
``{job2}``... in the order the scenario enqueued them, worker names by ``{w1}``...,
other generated ids (executions, result entries) by ``{id}``, timestamps by
``{ts}``, host names, pids and addresses by ``{host}``, ``{pid}``, ``{ip}``.
Durations that depend on the clock (a key's TTL, a registry's expiry score) become
`Approx`, equal within a tolerance; a persistent key's TTL is ``"persistent"``.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from dataclasses import dataclass
from typing import Any

import redis

__all__ = ["Approx", "Entry", "Snapshot", "normalise_text", "take_snapshot"]

#: A TTL or a score relative to now is the same within this many seconds (or 1 %).
TOLERANCE_SECONDS = 10.0

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
_HEX_ID = re.compile(r"\b[0-9a-f]{16,}\b")
_ISO_TS = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?([+-]\d\d:\d\d)?")
_EPOCH = re.compile(r"\b1\d{9}(\.\d+)?\b")
_PY_LINE = re.compile(r'File "[^"]+", line \d+')

#: Hash fields whose value is a host, a process or an address, not data.
_MACHINE_FIELDS = {"hostname": "{host}", "pid": "{pid}", "ip_address": "{ip}"}
#: Hash fields that hold a duration measured by the clock.
_CLOCK_FIELDS = {"total_working_time"}


@dataclass(frozen=True)
class Approx:
    """A number of seconds that depends on the clock: equal to another within a tolerance."""

    seconds: float

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Approx):
            return NotImplemented
        slack = max(TOLERANCE_SECONDS, 0.01 * max(abs(self.seconds), abs(other.seconds)))
        return abs(self.seconds - other.seconds) <= slack

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"~{self.seconds:.0f}s"


@dataclass(frozen=True)
class Entry:
    """One key: its Redis type, its normalised value and its TTL (`Approx` or "persistent")."""

    type: str
    value: Any
    ttl: Any


Snapshot = dict[str, Entry]


class Normaliser:
    """Replaces what differs between runs by nature with placeholders."""

    def __init__(self, job_ids: list[str], worker_names: list[str], now: float) -> None:
        self.labels = {job_id: f"{{job{n}}}" for n, job_id in enumerate(job_ids, 1)}
        self.labels.update({name: f"{{w{n}}}" for n, name in enumerate(worker_names, 1)})
        self.now = now

    def text(self, value: str) -> str:
        for raw, label in sorted(self.labels.items(), key=lambda item: -len(item[0])):
            value = value.replace(raw, label)
        return normalise_text(value)

    def score(self, score: float) -> Any:
        if score in (float("inf"), float("-inf")):
            return str(score)
        if score < 1e9:  # not a timestamp (a position, a count)
            return score
        return Approx(score - self.now)

    def value(self, raw: bytes, field: str = "") -> Any:
        if field in _MACHINE_FIELDS:
            return _MACHINE_FIELDS[field]
        if field in _CLOCK_FIELDS:
            return "{seconds}"
        decoded = _decode(raw, field)
        if isinstance(decoded, str):
            return self.text(decoded)
        return decoded


def normalise_text(value: str) -> str:
    """Timestamps, generated ids and source locations of a text, as placeholders."""
    value = _ISO_TS.sub("{ts}", value)
    value = _EPOCH.sub("{ts}", value)
    value = _UUID.sub("{id}", value)
    value = _HEX_ID.sub("{id}", value)
    return _PY_LINE.sub('File "{file}", line {n}', value)


def _decode(raw: bytes, field: str) -> Any:
    """A value as text where it is text, unpacking RQ's compressed and encoded fields."""
    if field in ("data", "exc_info"):
        try:
            raw = zlib.decompress(raw)
        except zlib.error:
            return f"<not zlib: {raw[:40]!r}>"
    if field == "exc_string":
        try:
            raw = zlib.decompress(base64.b64decode(raw))
        except (ValueError, zlib.error):
            return f"<not base64+zlib: {raw[:40]!r}>"
    if field == "return_value":
        try:
            raw = base64.b64decode(raw)
        except ValueError:
            return f"<not base64: {raw[:40]!r}>"
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return repr(raw)
    if field in ("exc_info", "exc_string"):
        return _exception_shape(text)
    if field in ("meta", "data"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _exception_shape(text: str) -> str:
    """A traceback's shape: its last line (the exception), without the frames above it."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _ttl(client: redis.Redis, key: bytes) -> Any:
    ms = client.pttl(key)
    if ms == -1:
        return "persistent"
    return Approx(ms / 1000)


def take_snapshot(client: redis.Redis, job_ids: list[str], worker_names: list[str]) -> Snapshot:
    """Every key of the database, normalised."""
    norm = Normaliser(job_ids, worker_names, time.time())
    snapshot: Snapshot = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key).decode()
        value: Any
        if kind == "string":
            value = norm.value(client.get(key) or b"")
        elif kind == "hash":
            value = {f.decode(): norm.value(v, f.decode()) for f, v in client.hgetall(key).items()}
        elif kind == "list":
            value = [norm.value(v) for v in client.lrange(key, 0, -1)]
        elif kind == "set":
            value = sorted(norm.value(v) for v in client.smembers(key))
        elif kind == "zset":
            value = sorted(
                (norm.value(m), norm.score(s))
                for m, s in client.zrange(key, 0, -1, withscores=True)
            )
        elif kind == "stream":
            value = [
                {f.decode(): norm.value(v, f.decode()) for f, v in fields.items()}
                for _, fields in client.xrange(key)
            ]
        else:
            value = f"<{kind}>"
        name = norm.text(key.decode())
        if name in snapshot:  # two keys that differ only by a generated id
            name = f"{name}#{sum(k.startswith(name) for k in snapshot)}"
        snapshot[name] = Entry(kind, value, _ttl(client, key))
    return snapshot
