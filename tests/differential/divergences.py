"""Differences between RQ's worker and ours that RQ's tools would see and that we do not
mean: bugs found by this suite, documented here until they are fixed (the scenarios they
show up in are strict xfails). Fixing one makes its scenarios pass, and the strict
xfail then fails until the entry is removed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from differential.compare import Divergence, KnownDivergence

__all__ = ["DIVERGENCES", "params"]

DIVERGENCES: list[Divergence] = [
    Divergence(
        "rq:worker:*",
        "state",
        "lean with threads: the worker hash's 'state' stays 'started' (written at birth) "
        "where RQ's worker ends 'idle': the main thread hands thread-safe jobs to its lanes, "
        "which never write the state, and does not write 'busy' or 'idle' itself; while a "
        "lane runs a job, `rq info` shows the worker 'started', not 'busy'.",
        workers=("lean-threads",),
        scenarios=(
            "success",
            "failure",
            "retry_with_delay",
            "retries_exhausted",
            "one_dependent",
            "several_dependents",
            "allow_failure",
            "canceled_dependent",
            "deleted_job_in_queue",
            "timeout",
            "stop_job",
        ),
    ),
    Divergence(
        "rq:*",
        "*",
        "lean with threads, a job depending on two jobs that two lanes finish at about the "
        "same time: the dependents' bookkeeping races (probably because the lean worker "
        "enqueues dependents after its job-end script, not inside RQ's WATCHed "
        "transaction as RQ's handle_job_success does). Seen: the dependent runs twice "
        "(a second rq:results entry, successful_job_count 6 for 5 jobs), or another "
        "dependent is left in rq:ready:default unrun when the burst ends; and always the "
        "first job's rq:job:<id>:dependents set is gone where RQ keeps it (500 s).",
        workers=("lean-threads",),
        scenarios=("several_dependents",),
    ),
]


def params(scenarios: list[Callable[..., None]], kinds: list[str]) -> list[Any]:
    """Every scenario under every kind, as pytest params; a strict xfail where a known
    divergence applies (failing with anything but `KnownDivergence` is a failure)."""
    found = []
    for scenario in scenarios:
        name = scenario.__name__.removeprefix("scenario_")
        for kind in kinds:
            reasons = [d.reason for d in DIVERGENCES if d.applies(kind, name)]
            marks = (
                [pytest.mark.xfail(strict=True, raises=KnownDivergence, reason=" | ".join(reasons))]
                if reasons
                else []
            )
            found.append(pytest.param(scenario, kind, id=f"{name}-{kind}", marks=marks))
    return found
