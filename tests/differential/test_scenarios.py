"""Each scenario under RQ's own worker and under ours: the same data left in Redis.

A scenario enqueues through its `Side` (plain RQ on the reference side, ``.enqueue()``
on ours) and runs the side's worker; `compare_runs` snapshots what is left and fails
on any difference that `differential.allowed.ALLOWED` does not name.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rq.job import Dependency
from rq.results import Result
from rq.suspension import suspend

from differential import tasks
from differential.divergences import params
from differential.sides import Side
from flask_jobs import Retry

#: Our worker kinds each scenario runs under, and a plain-RQ enqueue run by our default.
KINDS = ["default", "default-threads", "fork", "rq-enqueued:default"]


def scenario_success(side: Side) -> None:
    job_id = side.enqueue(tasks.add, 2, 3)
    side.work()
    assert side.fetch(job_id).return_value() == 5  # as plain RQ reads it


def scenario_failure(side: Side) -> None:
    job_id = side.enqueue(tasks.fail, "kaput")
    side.work()
    result = side.fetch(job_id).latest_result()  # as plain RQ reads it
    assert result is not None and result.type == Result.Type.FAILED
    assert result.exc_string is not None and "ValueError: kaput" in result.exc_string


def scenario_retry_with_delay(side: Side) -> None:
    # retried once at once, then put in the scheduled registry for a minute
    side.enqueue(tasks.fail, "again", retry=Retry(2, backoff=[0, 60], jitter=False))
    side.work()


def scenario_retries_exhausted(side: Side) -> None:
    side.enqueue(tasks.fail, "every time", retry=Retry(2, backoff="fixed", delay=0, jitter=False))
    side.work()


def scenario_one_dependent(side: Side) -> None:
    first = side.enqueue(tasks.add, 1, 1)
    side.enqueue(tasks.add, 2, 2, depends_on=first)
    side.work()


def scenario_dependents_waiting(side: Side) -> None:
    # left deferred: the snapshot shows the deferred registry and the dependents set
    first = side.enqueue(tasks.add, 1, 1, queue="later")
    side.enqueue(tasks.add, 2, 2, depends_on=first)
    side.enqueue(tasks.add, 3, 3, depends_on=first)
    side.work()


def scenario_several_dependents(side: Side) -> None:
    first = side.enqueue(tasks.add, 1, 1)
    second = side.enqueue(tasks.add, 2, 2)
    side.enqueue(tasks.add, 3, 3, depends_on=first)
    side.enqueue(tasks.add, 4, 4, depends_on=first)
    side.enqueue(tasks.add, 5, 5, depends_on=[first, second])
    side.work()


def scenario_allow_failure(side: Side) -> None:
    failing = side.enqueue(tasks.fail, "first")
    side.enqueue(tasks.add, 1, 2, depends_on=Dependency(jobs=[failing], allow_failure=True))
    side.enqueue(tasks.add, 3, 4, depends_on=failing)  # not allowed to fail: stays deferred
    side.work()


def scenario_canceled_dependent(side: Side) -> None:
    first = side.enqueue(tasks.add, 1, 1)
    canceled = side.enqueue(tasks.add, 2, 2, depends_on=first)
    side.enqueue(tasks.add, 3, 3, depends_on=first)
    side.fetch(canceled).cancel()  # RQ's own cancel, on both sides
    side.work()


def scenario_timeout(side: Side) -> None:
    side.enqueue(tasks.sleep_for, 10, timeout=1)
    side.work()


def scenario_suspended(side: Side) -> None:
    side.enqueue(tasks.add, 1, 1)
    suspend(side.client)
    side.work()


def scenario_deleted_job_in_queue(side: Side) -> None:
    gone = side.enqueue(tasks.add, 1, 1)
    side.enqueue(tasks.add, 2, 2)
    side.client.delete(side.fetch(gone).key)
    side.work()


def scenario_unreadable_hash(side: Side) -> None:
    broken = side.enqueue(tasks.add, 1, 1)
    side.client.hset(side.fetch(broken).key, "data", b"garbage, not zlib")
    side.enqueue(tasks.add, 2, 2)
    side.work()


def scenario_unreadable_fields(side: Side) -> None:
    # a hash RQ's dequeue cannot even build a job from (a date that is none)
    broken = side.enqueue(tasks.add, 1, 1)
    side.client.hset(side.fetch(broken).key, "enqueued_at", "not a date")
    side.work()


SCENARIOS: list[Callable[[Side], None]] = [
    scenario_success,
    scenario_failure,
    scenario_retry_with_delay,
    scenario_retries_exhausted,
    scenario_one_dependent,
    scenario_dependents_waiting,
    scenario_several_dependents,
    scenario_allow_failure,
    scenario_canceled_dependent,
    scenario_timeout,
    scenario_suspended,
    scenario_deleted_job_in_queue,
    scenario_unreadable_hash,
    scenario_unreadable_fields,
]


@pytest.mark.parametrize(("scenario", "kind"), params(SCENARIOS, KINDS))
def test_same_data_as_rq(
    scenario: Callable[[Side], None], kind: str, compare_runs: Callable[..., None]
) -> None:
    compare_runs(scenario, kind)
