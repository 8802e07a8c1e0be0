"""The workers page: each worker process (mode, slots, busy slots, memory, the jobs it runs
now, heartbeat), grouped by the ``--processes`` supervisor it belongs to; and the
scheduler processes, which one leads, and when each last went round its loop."""

from __future__ import annotations

from datetime import datetime, timezone
from itertools import groupby
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from flask_jobs.ops.live import scheduler_processes, worker_details
from flask_jobs.state import JobsState

from .web import age, json_ready, render, state

__all__ = ["api_workers", "worker_groups", "workers"]

#: A worker heartbeat older than this many seconds is flagged: the worker may be gone.
STALE_HEARTBEAT = 120


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def _megabytes(rss: int | None) -> str | None:
    return None if rss is None else f"{rss / 1_048_576:,.0f} MB"


def worker_groups(jobs_state: JobsState) -> list[dict[str, Any]]:
    """The workers, grouped by supervisor (``None``: workers on their own), each row with
    its times in words."""
    now = datetime.now(timezone.utc)
    rows = []
    for row in worker_details(jobs_state):
        heartbeat = _aware(row["heartbeat"])
        for job in row["jobs"]:
            job["elapsed"] = age(job["started_at"]) if job["started_at"] else None
        rows.append(
            {
                **row,
                "memory": _megabytes(row["rss"]),
                "heartbeat_ago": age(heartbeat),
                "stale": heartbeat is None or (now - heartbeat).total_seconds() > STALE_HEARTBEAT,
                "up_for": age(row["born"]),
            }
        )
    rows.sort(key=lambda row: (row["supervisor"] or "", str(row["name"])))
    groups = []
    for supervisor, members in groupby(rows, key=lambda row: row["supervisor"]):
        workers = list(members)
        groups.append(
            {
                "supervisor": supervisor,
                "workers": workers,
                "slots": sum(w["slots"] or 1 for w in workers),
                "busy": sum(w["busy"] for w in workers),
            }
        )
    return groups


def workers() -> ResponseReturnValue:
    """Every worker, what it is doing now, and the scheduler processes."""
    jobs_state = state()
    schedulers = scheduler_processes(jobs_state)
    for process in schedulers:
        process["tick_ago"] = age(process["last_tick"])
    return render(
        "flask_jobs/workers.html",
        "flask_jobs/_worker_rows.html",
        groups=worker_groups(jobs_state),
        schedulers=schedulers,
    )


def api_workers() -> ResponseReturnValue:
    """The workers (with our fields, None where a worker wrote none) and the schedulers."""
    jobs_state = state()
    return jsonify(
        json_ready(
            {
                "workers": worker_details(jobs_state),
                "schedulers": scheduler_processes(jobs_state),
            }
        )
    )
