"""History events: what happened to one attempt of one job, as Redis stream entries.

Every event carries everything its sender knows about the attempt, so that
the recorder can build a row from any subset of them, in any order. An entry is
either the event's fields as stream fields (the enqueue path, the scheduler) or one
field, ``event``, holding them as a JSON object (`packed`: the worker's form, one script
argument and one stream field per event instead of thirty); `unpacked` reads both.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..keys import META_WORKFLOW

__all__ = [
    "COUNTED",
    "ENDED",
    "PACKED_FIELD",
    "STATUSES",
    "STATUS_RANK",
    "EventEncoder",
    "HistorySettings",
    "forget_traceback",
    "formatted_traceback",
    "packed",
    "unpacked",
    "workflow_of",
]

#: The statuses a history row can have, and their precedence: a row never
#: goes back from an end state to "started" because events arrived late.
STATUS_RANK = {
    "queued": 0,
    "started": 1,
    "finished": 2,
    "failed": 2,
    "retried": 2,
    "canceled": 2,
    "stopped": 2,
    "abandoned": 3,
}
STATUSES = tuple(STATUS_RANK)
#: The statuses that end an attempt (what charts and roll-ups count).
ENDED = ("finished", "failed", "retried", "abandoned", "stopped", "canceled")
#: The ones the throughput and failure rate count: finished, and the ways an attempt fails.
COUNTED = ("finished", "failed", "retried", "abandoned")
REDACTED = "***"
HOST = socket.gethostname()
#: The one stream field of a packed event.
PACKED_FIELD = "event"


def packed(event: Mapping[str, str]) -> str:
    """``event`` as the JSON text of a packed stream entry."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def unpacked(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    """The event of a stream entry, packed or not."""
    raw = fields.get(PACKED_FIELD.encode())
    if raw is not None and len(fields) == 1:
        event = json.loads(raw)
        if isinstance(event, dict):
            return {str(k): str(v) for k, v in event.items()}
    return {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}


@dataclass(frozen=True)
class HistorySettings:
    """The ``JOBS_HISTORY_*`` settings an encoder needs."""

    stream: str
    max_arg_bytes: int
    max_result_bytes: int
    redact_keys: tuple[str, ...]
    stream_maxlen: int


def _ts(value: datetime | None) -> str:
    return "" if value is None else repr(value.timestamp())


def _cap(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore") + "…", True


class EventEncoder:
    """Turns jobs and outcomes into stream events, redacting and capping as configured."""

    def __init__(self, settings: HistorySettings) -> None:
        self.settings = settings
        self._redact = tuple(k.lower() for k in settings.redact_keys)

    def redact(self, value: Any) -> Any:
        """``value`` with every dict entry whose key matches ``JOBS_REDACT_KEYS`` replaced."""
        if isinstance(value, Mapping):
            return {k: REDACTED if self._secret(k) else self.redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in value]
        return value

    def _secret(self, key: Any) -> bool:
        name = str(key).lower()
        return any(pattern in name for pattern in self._redact)

    def arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, str]:
        """``args`` and ``kwargs`` as redacted, capped JSON fields."""
        limit = self.settings.max_arg_bytes
        args_text, cut_a = _cap(_json(self.redact(list(args))), limit)
        kwargs_text, cut_k = _cap(_json(self.redact(dict(kwargs))), limit)
        return {
            "args": args_text,
            "kwargs": kwargs_text,
            "args_truncated": "1" if cut_a or cut_k else "0",
        }

    def queued(
        self,
        *,
        job_id: str,
        attempt: int,
        func: str,
        queue: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        description: str | None,
        origin: str | None,
        enqueued_at: datetime | None,
        workflow_id: str | None = None,
    ) -> dict[str, str]:
        """The event of a job put on its queue (or scheduled, or deferred)."""
        extra = {"workflow_id": workflow_id} if workflow_id else {}
        return {
            **extra,
            "status": "queued",
            "job_id": job_id,
            "attempt": str(attempt),
            "func": func,
            "queue": queue,
            **self.arguments(args, kwargs),
            "description": _own_description(description, func),
            "origin": origin or "",
            "enqueued_at": _ts(enqueued_at),
        }

    def from_job(
        self, job: Any, status: str, attempt: int, *, arguments: bool = True, **extra: str | int
    ) -> dict[str, str]:
        """An event for ``job`` (an RQ job, ours or a plain one) in ``status``.

        ``arguments=False`` leaves out args and kwargs (the row has them from an
        earlier event of the same attempt), which keeps the per-job cost down.
        """
        meta = job.meta if isinstance(job.meta, dict) else {}
        fields_args: dict[str, str] = {}
        try:
            func_name = job.func_name or ""  # in the payload, which may be unreadable
        except Exception:
            func_name = ""
        if arguments and func_name:
            try:
                fields_args = self.arguments(job.args, job.kwargs)
            except Exception:  # an unreadable payload must not stop the history of the attempt
                fields_args = {}
        fields: dict[str, str] = {
            "status": status,
            "job_id": job.id,
            "attempt": str(attempt),
            "func": func_name,
            "queue": job.origin or "",
            **fields_args,
            "description": _own_description(job.description, func_name) if arguments else "",
            "origin": str(meta.get("origin") or ""),
            "enqueued_at": _ts(job.enqueued_at),
            "started_at": _ts(job.started_at),
            "ended_at": _ts(job.ended_at),
            "worker": job.worker_name or "",
            "host": HOST,
        }
        if status == "queued":  # a retry waiting: the job's times are the last attempt's
            for name in ("started_at", "ended_at", "worker", "host"):
                fields[name] = ""
        elif status == "started":
            fields["ended_at"] = ""
        workflow = workflow_of(meta)
        if workflow:  # only then: every event of every job crosses the stream
            fields["workflow_id"] = workflow
        progress = meta.get("progress")
        if isinstance(progress, dict):
            fields["progress"] = str(progress.get("fraction", ""))
            fields["progress_message"] = str(progress.get("message") or "")[:500]
        for key, value in extra.items():
            if value is not None:
                fields[key] = str(value)
        return fields

    def malformed(self, *, job_id: str, queue: str, worker: str, message: str) -> dict[str, str]:
        """The event of a job whose hash a worker could not read (it is marked failed)."""
        return {
            "status": "failed",
            "job_id": job_id,
            "attempt": "1",
            "queue": queue,
            "worker": worker,
            "ended_at": repr(time.time()),
            "exc_type": "MalformedJobError",
            "exc_message": message,
        }

    def missed_run(
        self, *, schedule: str, func: str, queue: str, fire_time: datetime
    ) -> dict[str, str]:
        """The event of a schedule's run that no scheduler enqueued within its grace time."""
        return {
            "status": "canceled",
            "job_id": f"missed-{schedule}-{int(fire_time.timestamp())}",
            "attempt": "1",
            "func": func,
            "queue": queue,
            "origin": f"schedule:{schedule}:missed",
            "enqueued_at": _ts(fire_time),
            "ended_at": _ts(fire_time),
            "exc_type": "MissedRun",
            "exc_message": "no scheduler ran within misfire_grace of this fire time",
        }

    def result(self, value: Any) -> str:
        """The ``repr`` of a job's return value, capped."""
        try:
            text = repr(value)
        except Exception as exc:  # a broken __repr__ is the job's problem, not the history's
            text = f"<unrepresentable {type(value).__name__}: {exc}>"
        return _cap(text, self.settings.max_result_bytes)[0]

    def exception(self, exc_info: Iterable[Any]) -> dict[str, str]:
        """Type, message and full traceback of an exception, as event fields."""
        exc_type, exc, tb = tuple(exc_info)
        message = "" if exc is None else str(exc)
        return {
            "exc_type": ""
            if exc_type is None
            else f"{exc_type.__module__}.{exc_type.__qualname__}".removeprefix("builtins."),
            "exc_message": _cap(message, 4000)[0],
            "traceback": formatted_traceback(exc_type, exc, tb)[-60_000:],
        }


#: The traceback this thread formatted last, for the same failure's next reader.
_formatted = threading.local()


def formatted_traceback(exc_type: Any, exc: Any, tb: Any) -> str:
    """``exc``'s traceback as text. A worker formats a failure's traceback for RQ's result
    and then for the history event: the second call of a thread for the same exception and
    traceback takes the first's text (and forgets it), instead of formatting it again."""
    last = getattr(_formatted, "last", None)
    _formatted.last = None
    if last is not None and last[0] is exc and last[1] is tb:
        return str(last[2])
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    _formatted.last = (exc, tb, text)
    return text


def forget_traceback() -> None:
    """Drop this thread's last formatted traceback (it holds the exception and its frames)."""
    _formatted.last = None


def workflow_of(meta: Mapping[str, Any]) -> str:
    """The id of the chain, group or chord a job's ``meta`` says it belongs to ('' if none)."""
    info = meta.get(META_WORKFLOW)
    return str(info.get("id") or "") if isinstance(info, Mapping) else ""


def _own_description(description: str | None, func: str | None) -> str:
    """A description the caller gave; RQ's default (the call string) is dropped, because it
    spells out every argument, secrets included (the redacted args are stored instead)."""
    if not description or (func and description.startswith(f"{func}(")):
        return ""
    return description[:1000]


def _json(value: Any) -> str:
    return json.dumps(value, default=repr, ensure_ascii=False, separators=(",", ":"))
