"""Jobs past their soft time limit: ones that catch it and clean up, ones that do not."""

from __future__ import annotations

import asyncio
import time

import jobs_app
from flask_jobs import thread_safe
from flask_jobs.errors import JobSoftTimeout

jobs = jobs_app.jobs


def _busy(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)


@jobs.job(timeout=20, soft_timeout=0.3)
def tidy(seconds: float) -> str:
    try:
        _busy(seconds)
    except JobSoftTimeout:
        return "cleaned up"
    return "done in time"


@jobs.job(timeout=20, soft_timeout=0.3)
def careless(seconds: float) -> str:
    _busy(seconds)
    return "done in time"


@jobs.job(timeout=20, soft_timeout=0.3)
@thread_safe
def tidy_in_a_thread(seconds: float) -> str:
    try:
        _busy(seconds)
    except JobSoftTimeout:
        return "cleaned up"
    return "done in time"


@jobs.job(timeout=20, soft_timeout=0.3)
async def tidy_async(seconds: float) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        return "cleaned up"
    return "done in time"


@jobs.job(timeout=20, soft_timeout=0.3)
async def careless_async(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done in time"
