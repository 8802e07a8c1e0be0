"""Jobs interrupted from outside, under RQ's worker and ours: RQ's stop-job command, and a
worker killed mid-job whose job the next worker's registry cleanup finds abandoned."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import pytest
from rq.command import send_stop_job_command
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from rq.worker import Worker

from conftest import stop_process, wait_for
from differential import tasks
from differential.divergences import params
from differential.sides import Side


def _started(side: Side, job_id: str) -> bool:
    return side.fetch(job_id).get_status() == JobStatus.STARTED


def _stop_when_started(side: Side, job_id: str, errors: list[BaseException]) -> None:
    try:
        wait_for(lambda: _started(side, job_id), timeout=30)
        channel = f"rq:pubsub:{side.fetch(job_id).worker_name}"
        wait_for(lambda: side.client.pubsub_numsub(channel)[0][1] > 0, timeout=10)
        send_stop_job_command(side.client, job_id, serializer=JSONSerializer)
    except BaseException as exc:  # reported by the scenario, in the main thread
        errors.append(exc)


def scenario_stop_job(side: Side) -> None:
    job_id = side.enqueue(tasks.sleep_for, 30, timeout=60)
    errors: list[BaseException] = []
    stopper = threading.Thread(target=_stop_when_started, args=(side, job_id, errors))
    stopper.start()
    try:
        side.work()
    finally:
        stopper.join()
    assert not errors, errors
    assert side.fetch(job_id).get_status() == JobStatus.STOPPED


def scenario_killed_then_abandoned(side: Side) -> None:
    # Not thread-safe: the main thread runs it, as in every mode; the cleanup after is the
    # same code.
    job_id = side.enqueue(tasks.sleep_alone, 30, timeout=60)
    proc = side.start_process()
    try:
        wait_for(lambda: _started(side, job_id), timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        stop_process(proc)
    # As if the dead worker's heartbeat had lapsed: RQ's cleanup takes only expired entries.
    started = f"rq:wip:{side.fetch(job_id).origin}"
    for member in side.client.zrange(started, 0, -1):
        side.client.zadd(started, {member: 1})
    side.work()  # the next worker: its first maintenance finds the job abandoned
    assert side.fetch(job_id).get_status() == JobStatus.FAILED


@pytest.mark.parametrize(
    ("scenario", "kind"),
    params([scenario_stop_job], ["default", "default-threads", "fork", "rq-enqueued:default"]),
)
def test_stop_job_as_rqs_forking_worker(
    scenario: Callable[[Side], None], kind: str, compare_runs: Callable[..., None]
) -> None:
    # RQ's SimpleWorker cannot stop a job it runs (its kill_horse does nothing): the
    # reference is RQ's forking Worker, which kills the work horse.
    compare_runs(scenario, kind, rq_worker=Worker)


@pytest.mark.parametrize(
    ("scenario", "kind"),
    # not `fork`: its work horse sits in a process group of its own, which a SIGKILL of
    # the worker leaves running (a scenario of the reliability suite, not this one)
    params([scenario_killed_then_abandoned], ["default", "default-threads", "rq-enqueued:default"]),
)
def test_killed_worker_as_rqs(
    scenario: Callable[[Side], None], kind: str, compare_runs: Callable[..., None]
) -> None:
    compare_runs(scenario, kind)
