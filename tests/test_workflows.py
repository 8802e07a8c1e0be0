"""Chains, groups and chords: results passed along, failures cancel what cannot run, a
chord's callback runs once, and the handle's view of the whole."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from rq.registry import StartedJobRegistry

import jobs_app
import workflow_jobs as wj
from conftest import flask_command, stop_process, wait_for
from flask_jobs import ConfigurationError, JobArgumentError
from flask_jobs.keys import META_WORKFLOW_CANCELED
from flask_jobs.workflows import prepare_call

jobs = jobs_app.jobs
#: Our worker, running a job in its process, and in a fresh child per job.
WORKERS = pytest.mark.parametrize("kind", ["default", "fork"])
RQ = str(Path(sys.executable).parent / "rq")


@WORKERS
def test_a_chain_passes_each_result_to_the_next_step(
    app: Flask, work: Callable[..., bool], kind: str
) -> None:
    with app.app_context():
        handle = jobs.chain(wj.double.s(3), wj.add_to.s(4), wj.double.s()).enqueue()
        statuses = handle.statuses()
        assert statuses == ["queued", "deferred", "deferred"]  # every id known up front
        assert handle.status == "queued"
    work(kind)
    with app.app_context():
        handle = jobs.workflow(handle.id)
        assert handle.results() == [6, 10, 20]
        assert handle.result() == 20
        assert handle.status == "finished"
        assert handle.progress().done == 3


def test_si_keeps_a_step_from_getting_the_previous_result(
    app: Flask, work: Callable[..., bool]
) -> None:
    with app.app_context():
        handle = jobs.chain(wj.double.s(3), wj.double.si(5)).enqueue()
    work()
    with app.app_context():
        assert jobs.workflow(handle.id).results() == [6, 10]


@WORKERS
def test_a_failed_step_cancels_the_rest_saying_why(
    app: Flask, work: Callable[..., bool], kind: str
) -> None:
    with app.app_context():
        handle = jobs.chain(wj.double.s(1), wj.explode.s(), wj.double.s(), wj.double.s()).enqueue()
    work(kind)
    with app.app_context():
        handle = jobs.workflow(handle.id)
        assert handle.statuses() == ["finished", "failed", "canceled", "canceled"]
        assert handle.status == "failed"
        progress = handle.progress()
        assert (progress.done, progress.failed, progress.total) == (1, 3, 4)
        reasons = handle.reasons()
        assert set(reasons) == set(handle.ids[2:])
        assert all(
            "chain step 2" in r and "ValueError: exploded on 2" in r for r in reasons.values()
        )
        job = jobs.fetch_job(handle.ids[3])
        assert job.meta[META_WORKFLOW_CANCELED] == reasons[handle.ids[3]]


def test_a_group_runs_members_and_keeps_their_order(app: Flask, work: Callable[..., bool]) -> None:
    with app.app_context():
        handle = jobs.group(wj.double.s(i) for i in range(5)).enqueue()
        assert handle.kind == "group"
        assert jobs.connection.smembers(f"rq:group:{handle.id}") == {
            i.encode() for i in handle.ids
        }  # RQ's Group of the members
        assert handle.progress().total == 5
    work()
    with app.app_context():
        handle = jobs.workflow(handle.id)
        assert handle.results() == [0, 2, 4, 6, 8]
        assert handle.result() == [0, 2, 4, 6, 8]
        assert handle.status == "finished"


def test_a_group_with_a_failed_member_reports_it(app: Flask, work: Callable[..., bool]) -> None:
    with app.app_context():
        handle = jobs.group(wj.double.s(1), wj.explode.si(1), wj.double.s(2)).enqueue()
    work()
    with app.app_context():
        handle = jobs.workflow(handle.id)
        assert handle.results() == [2, None, 4]
        progress = handle.progress()
        assert (progress.done, progress.failed, progress.total) == (2, 1, 3)
        assert handle.status == "failed"


def test_a_chord_calls_back_with_every_result(app: Flask, work: Callable[..., bool]) -> None:
    with app.app_context():
        group = jobs.group(wj.double.s(i) for i in (1, 2, 3))
        handle = jobs.chord(group, wj.total.s()).enqueue()
        assert handle.statuses()[-1] == "deferred"
    work()
    with app.app_context():
        handle = jobs.workflow(handle.id)
        assert handle.result() == 12
        assert handle.status == "finished"


@WORKERS
def test_a_chord_without_allow_failure_cancels_its_callback(
    app: Flask, work: Callable[..., bool], kind: str
) -> None:
    with app.app_context():
        group = jobs.group(wj.double.s(1), wj.explode.si(7))
        handle = jobs.chord(group, wj.total.s()).enqueue()
    work(kind)
    with app.app_context():
        handle = jobs.workflow(handle.id)
        assert handle.statuses() == ["finished", "failed", "canceled"]
        assert "ValueError: exploded on 7" in handle.reasons()[handle.callback_id or ""]
        assert handle.status == "failed"


@WORKERS
def test_a_chord_with_allow_failure_calls_back_with_none_for_failures(
    app: Flask, work: Callable[..., bool], kind: str
) -> None:
    with app.app_context():
        group = jobs.group(wj.double.s(1), wj.explode.si(7), wj.double.s(5))
        handle = jobs.chord(group, wj.total.s(), allow_failure=True).enqueue()
    work(kind)
    with app.app_context():
        handle = jobs.workflow(handle.id)
        assert handle.result() == 12
        assert handle.status == "finished"


def test_prepare_call_is_a_plain_function_of_id_meta_and_arguments(
    app: Flask, work: Callable[..., bool]
) -> None:
    with app.app_context():
        first = wj.double.enqueue(21)
    work()
    with app.app_context():
        meta = {"workflow_input": {"from": [first.id]}}
        conn = jobs.connection
        serializer = jobs.state().serializer
        assert prepare_call(conn, "x", meta, (1,), {"k": 2}, serializer=serializer) == (
            (42, 1),
            {"k": 2},
        )
        meta = {"workflow_input": {"from": [first.id, first.id], "collect": True}}
        assert prepare_call(conn, "x", meta, (), {}, serializer=serializer) == (([42, 42],), {})
        assert prepare_call(conn, "x", {}, (1,), {}) == ((1,), {})


def _keys(client: redis.Redis) -> set[bytes]:
    return set(client.keys("*"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: jobs.chain(), "at least one step"),
        (lambda: jobs.group([]), "at least one member"),
        (lambda: jobs.chord(wj.double.s(1), wj.total.s()), r"takes a jobs\.group"),  # type: ignore[arg-type]
        (lambda: jobs.chord(None, wj.total.s()), r"takes a jobs\.group"),  # type: ignore[arg-type]
        (lambda: jobs.chain(wj.double), "signatures"),  # type: ignore[arg-type]
    ],
)
def test_bad_workflows_are_refused_at_declaration(
    app: Flask, redis_client: redis.Redis, build: Callable[[], Any], message: str
) -> None:
    with app.app_context():
        before = _keys(redis_client)
        with pytest.raises(ConfigurationError, match=message):
            build()
        assert _keys(redis_client) == before


def test_a_bad_argument_in_any_step_enqueues_nothing(app: Flask, redis_client: redis.Redis) -> None:
    with app.app_context():
        before = _keys(redis_client)
        with pytest.raises(JobArgumentError):
            jobs.chain(wj.double.s(1), wj.add_to.s(object())).enqueue()
        assert _keys(redis_client) == before


def test_a_plain_rq_worker_passes_results_and_cancels_too(
    app: Flask, redis_url: str, subprocess_env: dict[str, str]
) -> None:
    with app.app_context():
        good = jobs.chain(wj.double.s(2), wj.add_to.s(1)).enqueue()
        bad = jobs.chain(wj.explode.si(0), wj.double.s()).enqueue()
    done = subprocess.run(
        [
            RQ, "worker", "--burst", "--url", redis_url, "--serializer", "json",
            "--job-class", "flask_jobs.FlaskJob", "--worker-class", "rq.worker.SimpleWorker",
            "default",
        ],
        env=subprocess_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with app.app_context():
        assert jobs.workflow(good.id).results() == [4, 5]
        assert jobs.workflow(bad.id).statuses() == ["failed", "canceled"]


def test_an_async_step_takes_the_previous_result_too(app: Flask, work: Callable[..., bool]) -> None:
    with app.app_context():
        handle = jobs.chain(wj.double.s(3), wj.add_to_later.s(4), wj.double.s()).enqueue()
    work()
    with app.app_context():
        assert jobs.workflow(handle.id).results() == [6, 10, 20]


def test_a_chain_runs_across_two_worker_processes(
    app: Flask, subprocess_env: dict[str, str]
) -> None:
    with app.app_context():
        handle = jobs.chain(*(wj.add_to.s(1) if i else wj.double.s(1) for i in range(8))).enqueue()
    procs = [
        subprocess.Popen(flask_command("jobs", "worker", "--name", f"w{i}"), env=subprocess_env)
        for i in range(2)
    ]
    try:
        with app.app_context():
            wait_for(lambda: jobs.workflow(handle.id).status == "finished", timeout=60)
            handle = jobs.workflow(handle.id)
            assert handle.results() == [2, 3, 4, 5, 6, 7, 8, 9]
            workers = {job.worker_name for job in handle.jobs() if job is not None}
            assert len(workers) >= 1
    finally:
        for proc in procs:
            stop_process(proc)


# The chord's callback depends on every member. When the last two members end at the same
# moment on two workers, RQ's release of dependents alone can enqueue the callback twice
# (both see the other's dependency met); our workers release dependents one at a time.
def test_a_chord_calls_back_exactly_once_when_members_finish_together(
    app: Flask, subprocess_env: dict[str, str], redis_client: redis.Redis
) -> None:
    procs = [
        subprocess.Popen(flask_command("jobs", "worker", "--name", f"chord{i}"), env=subprocess_env)
        for i in range(2)
    ]
    # Each repetition enqueues four chords: the two workers take the members of one chord
    # at a time (queue order), and the barrier makes them end together.
    try:
        for round_ in range(50):
            names = [f"{round_}:{n}" for n in range(4)]
            with app.app_context():
                handles = [
                    jobs.chord(
                        jobs.group(wj.finish_together.s(f"barrier:{name}", 2, v) for v in (1, 2)),
                        wj.note_run.si(f"callback-runs:{name}", "done"),
                    ).enqueue()
                    for name in names
                ]
                for handle in handles:
                    wait_for(lambda h=handle: jobs.workflow(h.id).status == "finished", timeout=30)
                # a second, wrongly enqueued, callback gets the time to run too
                wait_for(lambda: not jobs.get_queue().count and not jobs.registry("started").count)
            for name in names:
                runs = int(redis_client.get(f"callback-runs:{name}") or 0)
                assert runs == 1, f"repetition {round_}: chord {name} called back {runs} times"
    finally:
        for proc in procs:
            stop_process(proc)


def test_eager_mode_runs_a_workflow_inline_passing_results(app: Flask) -> None:
    state = jobs.state(app)
    state.config = state.config.__class__(
        **{**state.config.__dict__, "eager": True, "eager_propagate": False}
    )
    with app.app_context():
        chain = jobs.chain(wj.double.s(3), wj.add_to.s(4), wj.double.s()).enqueue()
        assert chain.results() == [6, 10, 20] and chain.status == "finished"
        broken = jobs.chain(wj.double.s(1), wj.explode.s(), wj.double.s()).enqueue()
        assert broken.statuses() == ["finished", "failed", "canceled"]
        assert "chain step 2" in broken.reasons()[broken.ids[2]]
        chord = jobs.chord(jobs.group(wj.double.s(i) for i in (1, 2)), wj.total.s()).enqueue()
        assert chord.result() == 6 and chord.progress().done == 3
        lenient = jobs.chord(
            jobs.group(wj.double.s(1), wj.explode.si(1)), wj.total.s(), allow_failure=True
        ).enqueue()
        assert lenient.result() == 2
        assert not jobs.connection.keys("*")  # nothing touched Redis


def test_a_step_found_abandoned_cancels_the_rest(
    app: Flask, redis_url: str, subprocess_env: dict[str, str]
) -> None:
    with app.app_context():
        handle = jobs.chain(wj.hang.si(60), wj.double.s(), wj.double.s()).enqueue()
    worker = subprocess.Popen(
        [
            RQ, "worker", "--url", redis_url, "--serializer", "json",
            "--job-class", "flask_jobs.FlaskJob", "--worker-class", "rq.worker.SimpleWorker",
            "default",
        ],
        env=subprocess_env,
    )  # fmt: skip
    try:
        with app.app_context():
            wait_for(lambda: jobs.workflow(handle.id).statuses()[0] == "started")
    finally:
        worker.kill()  # dies holding the job, as on an out-of-memory kill
        worker.wait(10)
    with app.app_context():
        # RQ's maintenance finds the job abandoned once its execution expires: now, here.
        StartedJobRegistry(queue=jobs.get_queue()).cleanup(timestamp=time.time() + 10**6)
        handle = jobs.workflow(handle.id)
        assert handle.statuses() == ["failed", "canceled", "canceled"]
        assert "AbandonedJobError" in handle.reasons()[handle.ids[1]]
