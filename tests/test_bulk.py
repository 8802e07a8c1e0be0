"""`enqueue_many`: many runs of a job in one round trip, history included."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from rq.job import JobStatus
from test_worker_loop import CountingConnection

import jobs_app
from conftest import drain_history
from flask_jobs import JobArgumentError, enqueue_many


def test_many_runs_in_one_round_trip(app: Flask, ctx: None, work: Any) -> None:
    enqueue_many(jobs_app.add, [((0, 0), {})])  # RQ reads the server's version once
    counter = CountingConnection(jobs_app.jobs.connection)
    before = counter.count
    jobs = enqueue_many(jobs_app.add, [((i, i), {}) for i in range(50)])
    assert counter.count - before == 1
    assert len(jobs) == 50 and all(job.get_status() == JobStatus.QUEUED for job in jobs)
    assert jobs_app.jobs.get_queue().count == 51
    work()
    assert [job.return_value(refresh=True) for job in jobs] == [2 * i for i in range(50)]
    drain_history(app)
    with app.app_context():
        (row,) = jobs_app.jobs.history.get(jobs[7].id)
    assert row["status"] == "finished" and row["args"] == "[7,7]"


def test_options_apply_to_every_run(app: Flask, ctx: None) -> None:
    jobs = enqueue_many(jobs_app.add.options(queue="reports"), [((1, 2), {}), ((3, 4), {})])
    assert [job.origin for job in jobs] == ["reports", "reports"]
    assert jobs_app.jobs.get_queue("reports").count == 2


def test_a_bad_argument_enqueues_nothing(app: Flask, ctx: None) -> None:
    with pytest.raises(JobArgumentError):
        enqueue_many(jobs_app.echo, [((1,), {}), ((object(),), {})])
    assert jobs_app.jobs.get_queue().count == 0
