"""Differences between RQ's worker and ours that RQ's tools would see and that we do not
mean: bugs found by this suite, documented here until they are fixed (the scenarios they
show up in are strict xfails). Fixing one makes its scenarios pass, and the strict
xfail then fails until the entry is removed."""

from __future__ import annotations

from differential.compare import Divergence

__all__ = ["DIVERGENCES"]

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
            "deleted_job_in_queue",
        ),
    ),
    Divergence(
        "rq:*",
        "*",
        "lean with threads, a job depending on two jobs that two lanes finish at about the "
        "same time: its dependency bookkeeping races (the dependents are enqueued after the "
        "job-end script, not in RQ's WATCHed transaction). Seen: the dependent runs twice "
        "(a second rq:results entry, successful_job_count 6 for 5 jobs), or another "
        "dependent is left in rq:ready:default unrun when the burst ends; and always the "
        "first job's rq:job:<id>:dependents set is gone where RQ keeps it (500 s).",
        workers=("lean-threads",),
        scenarios=("several_dependents",),
    ),
]
