"""Jobs of the workflow, unique-job and limit tests; workers import them by path."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rq import get_current_job

from jobs_app import jobs


@jobs.job
def double(x: int) -> int:
    return 2 * x


@jobs.job
def add_to(x: int, y: int) -> int:
    return x + y


@jobs.job
def total(values: list[Any]) -> int:
    return sum(v for v in values if v is not None)


@jobs.job
def explode(x: Any = None) -> None:
    raise ValueError(f"exploded on {x!r}")


@jobs.job
def note_run(key: str, value: Any = None) -> Any:
    """Count its runs in Redis under ``key``, return ``value``."""
    jobs.connection.incr(key)
    return value


@jobs.job
def finish_together(barrier: str, members: int, value: int) -> int:
    """Wait until every member reached the barrier, so the last ones end at once."""
    jobs.connection.incr(barrier)
    deadline = time.monotonic() + 10
    while int(jobs.connection.get(barrier) or 0) < members and time.monotonic() < deadline:
        time.sleep(0.002)
    return value


@jobs.job(unique=True)
def sync_account(account_id: int) -> int:
    return account_id


@jobs.job(concurrency=2)
def limited_sleep(seconds: float) -> str:
    job = get_current_job()
    time.sleep(seconds)
    return job.id if job else ""


@jobs.job(concurrency=1, concurrency_key="tenant:{tenant_id}")
def per_tenant(*, tenant_id: int) -> int:
    return tenant_id


@jobs.job(rate="20/s")
def rated() -> None:
    return None


@jobs.job(timeout=120)
def hang(seconds: float) -> None:
    time.sleep(seconds)


@jobs.job
async def add_to_later(x: int, y: int) -> int:
    await asyncio.sleep(0.01)
    return x + y
