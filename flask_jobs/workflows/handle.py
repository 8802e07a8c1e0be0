"""The handle of an enqueued chain, group or chord: its jobs, status, progress and results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from rq.job import Job, JobStatus
from rq.utils import as_text

from ..errors import UnknownJobError
from ..keys import META_WORKFLOW_CANCELED, job_key, workflow_key

__all__ = ["WORKFLOW_TTL", "Progress", "WorkflowHandle"]

#: How long a workflow's record is kept, in seconds (a week; its jobs keep their own TTLs).
WORKFLOW_TTL = 7 * 86400
_FAILED = ("failed", "stopped", "canceled")
_ENDED = ("finished", *_FAILED)


@dataclass(frozen=True)
class Progress:
    """How many of a workflow's jobs finished, failed (or were canceled), and how many it has."""

    done: int
    failed: int
    total: int

    @property
    def fraction(self) -> float:
        """The share of jobs that ended, 0.0 to 1.0."""
        return (self.done + self.failed) / self.total if self.total else 1.0


class WorkflowHandle:
    """An enqueued chain, group or chord, read from Redis on every call."""

    #: The jobs of a workflow run eagerly (``JOBS_EAGER``), never stored; else None.
    _eager: list[Job] | None = None

    def __init__(self, connection: redis.Redis, workflow_id: str, *, serializer: Any = None):
        self.connection = connection
        self.id = workflow_id
        self.serializer = serializer
        raw = connection.hgetall(workflow_key(workflow_id))
        data = {as_text(k): as_text(v) for k, v in raw.items()}
        if not data:
            raise UnknownJobError(f"no workflow with id {workflow_id!r} (it may have expired)")
        self._read(data)

    @classmethod
    def of_eager_jobs(
        cls, workflow_id: str, record: dict[str, str], jobs: Sequence[Job]
    ) -> WorkflowHandle:
        """The handle of a workflow whose ``jobs`` ran inline (``JOBS_EAGER``)."""
        handle = cls.__new__(cls)
        handle.connection = jobs[0].connection
        handle.id = workflow_id
        handle.serializer = None
        handle._read(record)
        handle._eager = list(jobs)
        return handle

    def _read(self, data: dict[str, str]) -> None:
        """Take the workflow's record (`flask_jobs.keys.workflow_key`)."""
        #: ``chain``, ``group`` or ``chord``.
        self.kind = data["kind"]
        #: The steps (chain) or members (group, chord), in the order given.
        self.member_ids: list[str] = json.loads(data["members"])
        #: The chord's callback, or None.
        self.callback_id = data.get("callback") or None
        self.allow_failure = data.get("allow_failure") == "1"
        self.created_at = data.get("created_at")

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.kind} {self.id} ({len(self.ids)} jobs)>"

    @property
    def ids(self) -> list[str]:
        """Every job id of the workflow: steps or members, then the callback."""
        return [*self.member_ids, *([self.callback_id] if self.callback_id else [])]

    def jobs(self) -> list[Job | None]:
        """The RQ job of each id (None for one that expired), in `ids` order."""
        if self._eager is not None:
            return list(self._eager)
        return list(
            Job.fetch_many(self.ids, connection=self.connection, serializer=self.serializer)
        )

    def statuses(self) -> list[str]:
        """The status of each job, in `ids` order (``expired`` for one that is gone)."""
        if self._eager is not None:
            return [JobStatus(job.get_status(refresh=False)).value for job in self._eager]
        with self.connection.pipeline(transaction=False) as pipe:
            for job_id in self.ids:
                pipe.hget(job_key(job_id), "status")
            raw = pipe.execute()
        return [as_text(value) if value else "expired" for value in raw]

    def progress(self) -> Progress:
        """Finished, failed (canceled and stopped included) and total jobs."""
        statuses = self.statuses()
        return Progress(
            done=statuses.count("finished"),
            failed=sum(statuses.count(s) for s in _FAILED),
            total=len(statuses),
        )

    @property
    def status(self) -> str:
        """The whole's status: ``finished``, ``failed``, ``started`` or ``queued``."""
        statuses = self.statuses()
        last = statuses[-1]
        if all(s in _ENDED for s in statuses):
            if self.kind == "group":
                return "finished" if all(s == "finished" for s in statuses) else "failed"
            return "finished" if last == "finished" else "failed"
        if self.kind != "group" and last in _FAILED:
            return "failed"  # the result can no longer come (members may still run)
        if any(s in ("started", *_ENDED) for s in statuses):
            return "started"
        return "queued"

    def results(self) -> list[Any]:
        """The return value of each step or member, in order (None until it finished)."""
        return [self._value(job) for job in self.jobs()[: len(self.member_ids)]]

    def result(self) -> Any:
        """The chain's last step's result, the chord's callback's, or the group's list."""
        if self.kind == "group":
            return self.results()
        jobs = self.jobs()
        return self._value(jobs[-1])

    def reasons(self) -> dict[str, str]:
        """Why jobs were canceled by the workflow: job id -> reason."""
        return {
            job.id: str(job.meta[META_WORKFLOW_CANCELED])
            for job in self.jobs()
            if job is not None and META_WORKFLOW_CANCELED in job.meta
        }

    def to_dict(self) -> dict[str, Any]:
        """What the JSON API says of the workflow."""
        jobs = self.jobs()
        statuses = self.statuses()
        progress = self.progress()
        members = []
        for index, (job_id, job, status) in enumerate(zip(self.ids, jobs, statuses, strict=True)):
            role = "callback" if job_id == self.callback_id else (
                "step" if self.kind == "chain" else "member"
            )  # fmt: skip
            members.append(
                {
                    "id": job_id,
                    "index": index,
                    "role": role,
                    "func": job.func_name if job is not None else None,
                    "status": status,
                    "canceled_because": job.meta.get(META_WORKFLOW_CANCELED) if job else None,
                }
            )
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "allow_failure": self.allow_failure,
            "created_at": self.created_at,
            "progress": {"done": progress.done, "failed": progress.failed, "total": progress.total},
            "members": members,
            "results": [_plain(v) for v in self.results()],
            "result": _plain(self.result()) if self.kind != "group" else None,
        }

    @staticmethod
    def _value(job: Job | None) -> Any:
        if job is None or job.get_status(refresh=False) != JobStatus.FINISHED:
            return None
        return job.return_value()


def _plain(value: Any) -> Any:
    """``value`` as JSON can carry it (its repr otherwise)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
