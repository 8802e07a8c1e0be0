"""Read and change periodic jobs (list, pause, resume, run now) for the CLI and dashboard.

A schedule's state lives in one Redis hash (`flask_jobs.keys.schedule_key`): last
and next fire time, last job, paused, missed runs. The scheduler loop writes it
as it fires; this module reads it and changes it on an operator's word.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from rq.utils import now as utcnow

from ..enqueue import enqueue_claimed
from ..errors import UnknownJobError
from ..jobs.function import JobCall, JobOptions
from ..keys import job_key, schedule_key
from .declarations import app_schedules

if TYPE_CHECKING:
    from flask import Flask

    from ..state import JobsState
    from .declarations import Schedule

__all__ = ["ScheduleControl", "enqueue_schedule", "stamp", "stamped"]


def stamp(value: datetime) -> str:
    """A moment as a schedule hash stores it (seconds since the epoch)."""
    return repr(value.timestamp())


def stamped(value: bytes | str | None) -> datetime | None:
    """A moment stored by `stamp`, as an aware UTC datetime (None when unset)."""
    if not value:
        return None
    return datetime.fromtimestamp(float(value), timezone.utc)


class ScheduleControl:
    """Read and change schedules: list, pause, resume, run now (CLI and dashboard)."""

    def __init__(self, app: Flask, state: JobsState) -> None:
        self.app = app
        self.state = state

    @property
    def schedules(self) -> dict[str, Schedule]:
        """Every declared schedule by name (config and ``@jobs.periodic``)."""
        return app_schedules(self.state)

    def get(self, name: str) -> Schedule:
        """The schedule called ``name``; `UnknownJobError` if there is none."""
        schedule = self.schedules.get(name)
        if schedule is None:
            known = ", ".join(sorted(self.schedules)) or "none declared"
            raise UnknownJobError(f"no schedule named {name!r} (known: {known})")
        return schedule

    def stored(self, name: str) -> dict[str, str]:
        """The state kept in Redis for schedule ``name``."""
        raw: Any = self.state.connection.hgetall(schedule_key(name))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def list(self) -> list[dict[str, Any]]:
        """Every schedule with its trigger in words, next and last run, outcome, paused."""
        rows = []
        now = utcnow()
        for name, schedule in sorted(self.schedules.items()):
            stored = self.stored(name)
            last_fire = stamped(stored.get("last_fire"))
            next_fire = (
                stamped(stored.get("next_fire")) or schedule.next_fire(last_fire, now)
                if schedule.enabled
                else None
            )
            rows.append(
                {
                    "name": name,
                    "job": schedule.job,
                    "trigger": schedule.describe(),
                    "timezone": getattr(schedule.tz, "key", str(schedule.tz)),
                    "enabled": schedule.enabled,
                    "paused": stored.get("paused") == "1",
                    "next_run": None if stored.get("paused") == "1" else next_fire,
                    "last_run": last_fire,
                    "last_job_id": stored.get("last_job_id") or None,
                    "last_outcome": self._outcome(stored.get("last_job_id")),
                    "missed": int(stored.get("missed", "0")),
                    "unique": schedule.unique,
                    #: Fires skipped because the previous run was still queued or running.
                    "skipped": int(stored.get("skipped", "0")),
                    "last_skipped": stamped(stored.get("last_skipped")),
                }
            )
        return rows

    def _outcome(self, job_id: str | None) -> str | None:
        if not job_id:
            return None
        status: Any = self.state.connection.hget(job_key(job_id), "status")
        return status.decode() if status else "expired"

    def pause(self, name: str) -> None:
        """Stop firing ``name`` until resumed (survives restarts)."""
        self.get(name)
        self.state.connection.hset(schedule_key(name), "paused", "1")

    def resume(self, name: str) -> None:
        """Fire ``name`` again from now on (runs due while paused are skipped)."""
        self.get(name)
        with self.state.connection.pipeline() as pipe:
            pipe.hset(schedule_key(name), mapping={"paused": "0", "last_fire": stamp(utcnow())})
            pipe.hdel(schedule_key(name), "next_fire")
            pipe.execute()

    def run(self, name: str) -> str:
        """Enqueue ``name``'s job now, outside its timetable; return the job id."""
        schedule = self.get(name)
        job, _ = enqueue_schedule(self.state, schedule, origin=f"schedule:{name}")
        assert job is not None  # only a claimed enqueue gives none
        self.state.connection.hset(schedule_key(name), "last_job_id", job)
        return job


def enqueue_schedule(
    state: JobsState,
    schedule: Schedule,
    *,
    origin: str,
    delay: float = 0,
    claim: tuple[str, int] | None = None,
) -> tuple[str | None, bool]:
    """Enqueue one run of ``schedule``'s job; return its id, and whether it is a new run
    (not so for a ``unique`` schedule whose previous run is still queued or running: its
    id is returned instead).

    With ``claim`` (a key and its TTL), the run is enqueued only if the key does not
    exist, and the key is set in the same Lua call (``(None, False)`` when it existed).
    """
    function = state.jobs.function(schedule.job)
    options: JobOptions = function.default_options.merged(origin=origin)
    if schedule.queue:
        options = options.merged(queue=schedule.queue)
    new_id = str(uuid.uuid4())
    if schedule.unique:
        options = options.merged(
            unique_key=f"schedule:{schedule.name}", unique_while="running", job_id=new_id
        )
    if claim is not None:
        job = enqueue_claimed(
            state,
            function.path,
            tuple(schedule.args),
            dict(schedule.kwargs),
            options,
            claim=claim[0],
            claim_ttl=claim[1],
            delay=timedelta(seconds=delay) if delay > 0 else None,
        )
        if job is None:
            return None, False
    else:
        call = JobCall(function, options)
        if delay > 0:
            job = call.enqueue_in(timedelta(seconds=delay), *schedule.args, **schedule.kwargs)
        else:
            job = call.enqueue(*schedule.args, **schedule.kwargs)
    return str(job.id), not schedule.unique or job.id == new_id
