"""``--max-memory``: a worker process whose memory grew past a limit is replaced.

Job code that leaks (a cache that only grows, a library that keeps every
response) makes a long-lived worker process bigger job after job. With a
limit, the worker checks its resident memory after each job; past it, the
worker stops as on a warm shutdown (the job in hand finishes, nothing new is
claimed) and exits with `RECYCLE_EXIT`, and the supervisor starts a fresh
process in its place, as Celery's ``worker_max_memory_per_child`` does.
"""

from __future__ import annotations

import logging
import os
import resource

__all__ = ["RECYCLE_EXIT", "resident_mb"]

log = logging.getLogger("flask_jobs.worker")

#: The exit status of a worker process that stopped to be replaced (EX_TEMPFAIL).
RECYCLE_EXIT = 75

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_mb() -> float:
    """This process's resident memory in MiB (its peak where the current one is unknown)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        # ru_maxrss is in KiB on Linux (bytes on macOS, where a peak is all we have anyway).
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def over_limit(name: str, limit_mb: int | None) -> bool:
    """Whether worker ``name`` is over ``limit_mb`` (logged when it is)."""
    if limit_mb is None:
        return False
    used = resident_mb()
    if used <= limit_mb:
        return False
    log.warning(
        "worker %s uses %.0f MB, over --max-memory %d MB: it stops after this job and a "
        "fresh process takes its place",
        name,
        used,
        limit_mb,
    )
    return True
