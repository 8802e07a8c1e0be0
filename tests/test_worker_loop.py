"""Our worker loop: RQ's data layout and tools, our history, retries, timeouts and shutdown."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend
from rq.worker import Worker

import jobs_app
from conftest import drain_history, flask_command, stop_process, wait_for
from flask_jobs.config import DEFAULTS, load_config
from flask_jobs.errors import ConfigurationError
from flask_jobs.keys import PAUSED_QUEUES_KEY
from flask_jobs.worker import build_worker

RQ = str(Path(sys.executable).parent / "rq")


def rows(app: Flask, job_id: str) -> list[dict[str, Any]]:
    with app.app_context():
        return jobs_app.jobs.history.get(job_id)


class CountingConnection:
    """Counts the round trips of a redis-py client: each command or pipeline sent is one."""

    def __init__(self, client: redis.Redis) -> None:
        self.count = 0
        pool = client.connection_pool
        original = pool.get_connection

        def get_connection(*args: Any, **kwargs: Any) -> Any:
            connection = original(*args, **kwargs)
            if not getattr(connection, "_counted", False):
                send = connection.send_packed_command

                def counted(command: Any, check_health: bool = True) -> None:
                    self.count += 1
                    send(command, check_health)

                connection.send_packed_command = counted
                connection._counted = True
            return connection

        pool.get_connection = get_connection  # type: ignore[method-assign]


def test_result_registries_and_job_fields_are_rqs(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.add.enqueue(2, 3)
    assert work("default")
    connection = jobs_app.jobs.connection
    # plain RQ reads it back: status, result, registries, the hash fields its tools show
    plain = Job.fetch(job.id, connection=connection, serializer=JSONSerializer)
    assert plain.get_status() == JobStatus.FINISHED
    assert plain.return_value() == 5
    assert plain.worker_name and plain.started_at and plain.ended_at
    assert plain.ended_at >= plain.started_at
    queue = jobs_app.jobs.get_queue()
    assert job.id in FinishedJobRegistry(queue=queue)
    assert StartedJobRegistry(queue=queue).get_job_ids() == []
    assert connection.llen(f"{queue.key}:intermediate") == 0
    assert plain.latest_result() is not None
    # the worker's counters, as `rq info` shows them
    worker_key = f"rq:worker:{plain.worker_name}"
    assert connection.hget(worker_key, "successful_job_count") == b"1"


def test_app_context_db_session_and_dependents(app: Flask, ctx: None, work: Any) -> None:
    config_job = jobs_app.read_config.enqueue("GREETING")
    notes = [jobs_app.write_note.enqueue(f"note {i}") for i in range(3)]
    count = jobs_app.count_notes.options(depends_on=notes[-1]).enqueue()
    work("default")
    assert config_job.return_value(refresh=True) == "hello from config"
    assert [n.get_status() for n in notes] == [JobStatus.FINISHED] * 3
    assert count.return_value(refresh=True) == 3


def test_failure_retries_and_timeout(app: Flask, ctx: None, work: Any) -> None:
    failed = jobs_app.fail.enqueue("kaput")
    retried = jobs_app.fail_with.enqueue("connection")
    not_retried = jobs_app.fail_with.enqueue("value")
    slow = jobs_app.sleep_for.enqueue(10)
    work("default")
    assert failed.get_status() == JobStatus.FAILED
    assert failed.id in FailedJobRegistry(queue=jobs_app.jobs.get_queue())
    result = failed.latest_result()
    assert result is not None and "RuntimeError: kaput" in result.exc_string
    assert jobs_app.jobs.fetch_job(retried.id).attempt == 4  # 3 retries of ConnectionError
    assert jobs_app.jobs.fetch_job(not_retried.id).attempt == 1  # ValueError: no retry
    assert slow.get_status() == JobStatus.FAILED
    slow_result = slow.latest_result()
    assert slow_result is not None and "JobTimeoutException" in slow_result.exc_string
    assert "maximum timeout value (1 seconds)" in slow_result.exc_string  # not the 10 s sleep


def test_history_rows_match_the_other_workers(app: Flask, ctx: None, work: Any) -> None:
    ok = jobs_app.add.enqueue(2, 3)
    bad = jobs_app.always_fails.enqueue(7)
    work("default")
    drain_history(app)
    (done,) = rows(app, ok.id)
    assert done["status"] == "finished" and done["result"] == "5"
    assert done["worker"] and done["host"] and done["pid"]
    assert done["started_at"] and done["ended_at"] and done["enqueued_at"]
    assert [(r["attempt"], r["status"]) for r in rows(app, bad.id)] == [
        (1, "retried"),
        (2, "retried"),
        (3, "failed"),
    ]
    assert all("ValueError: failure 7" in r["traceback"] for r in rows(app, bad.id))


def test_paused_queues_and_priority_order(app: Flask, ctx: None, work: Any) -> None:
    connection = jobs_app.jobs.connection
    low = jobs_app.add.options(queue="reports").enqueue(1, 1)
    high = jobs_app.add.enqueue(2, 2)
    worker = build_worker(
        app, jobs_app.jobs.state(app), ["default", "reports"], worker_class="default"
    )
    found = worker.claim()  # type: ignore[union-attr]
    assert isinstance(found, tuple) and found[1] == high.id
    assert connection.lrange("rq:queue:default:intermediate", 0, -1) == [high.id.encode()]
    connection.delete("rq:queue:default:intermediate")
    connection.rpush("rq:queue:default", high.id)
    connection.sadd(PAUSED_QUEUES_KEY, "default")
    work("default", queues=["default", "reports"])
    assert low.get_status() == JobStatus.FINISHED
    assert high.get_status() == JobStatus.QUEUED  # its queue is paused
    connection.srem(PAUSED_QUEUES_KEY, "default")
    work("default", queues=["default", "reports"])
    assert high.get_status() == JobStatus.FINISHED


def test_rq_suspend_stops_a_burst(app: Flask, ctx: None, work: Any) -> None:
    job = jobs_app.add.enqueue(1, 1)
    suspend(jobs_app.jobs.connection)
    try:
        assert not work("default")
        assert job.get_status() == JobStatus.QUEUED
    finally:
        resume(jobs_app.jobs.connection)
    assert work("default")
    assert job.get_status() == JobStatus.FINISHED


def test_two_round_trips_per_job(app: Flask, ctx: None) -> None:
    counter = CountingConnection(jobs_app.jobs.connection)

    def round_trips(jobs: int) -> int:
        for i in range(jobs):
            jobs_app.add.enqueue(i, i)
        worker = build_worker(app, jobs_app.jobs.state(app), worker_class="default")
        worker.run_recorder = False  # type: ignore[union-attr]
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        before = counter.count
        try:
            worker.work(burst=True, logging_level="WARNING")
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return counter.count - before

    # the difference leaves out start-up and shutdown: start, end (+ next dequeue) per job
    per_job = (round_trips(40) - round_trips(10)) / 30
    assert per_job <= 2.1, per_job


def test_rq_info_sees_the_worker_and_rq_requeue_works(
    app: Flask, ctx: None, redis_url: str, subprocess_env: dict[str, str], work: Any
) -> None:
    slow = jobs_app.whoami.enqueue(pause=2.0)
    waiting = jobs_app.add.enqueue(1, 1)
    proc = subprocess.Popen(
        flask_command("jobs", "worker", "--worker-class", "default"), env=subprocess_env
    )
    try:
        wait_for(lambda: slow.get_status() == JobStatus.STARTED)
        (worker,) = Worker.all(connection=jobs_app.jobs.connection)
        assert worker.get_state() == "busy"
        info = subprocess.run(
            [RQ, "info", "--url", redis_url], capture_output=True, text=True, timeout=30
        )
        assert info.returncode == 0, info.stderr
        assert worker.name in info.stdout and "busy" in info.stdout
        assert slow.id in StartedJobRegistry(queue=jobs_app.jobs.get_queue())
        proc.send_signal(signal.SIGTERM)  # warm: the current job finishes
        assert proc.wait(timeout=20) == 0
    finally:
        stop_process(proc)
    assert slow.get_status() == JobStatus.FINISHED
    assert waiting.get_status() == JobStatus.QUEUED
    failed = jobs_app.fail.enqueue("for rq requeue")
    work("default")
    requeue = subprocess.run(
        [RQ, "requeue", "--url", redis_url, "--queue", "default", failed.id],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert requeue.returncode == 0, requeue.stderr + requeue.stdout
    assert failed.get_status() == JobStatus.QUEUED


def test_killed_worker_job_is_recorded_abandoned(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    job = jobs_app.whoami.options(timeout=60).enqueue(pause=30.0)
    proc = subprocess.Popen(
        flask_command("jobs", "worker", "--worker-class", "default"), env=subprocess_env
    )
    try:
        wait_for(lambda: job.get_status() == JobStatus.STARTED)
        wait_for(lambda: [r["status"] for r in rows(app, job.id)] == ["started"], timeout=10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        stop_process(proc)
    registry = StartedJobRegistry(queue=jobs_app.jobs.get_queue())
    connection = jobs_app.jobs.connection
    for member in connection.zrange(registry.key, 0, -1):
        if member.decode().startswith(job.id):
            connection.zadd(registry.key, {member: 1})  # as if its heartbeat had lapsed
    worker = build_worker(app, jobs_app.jobs.state(app), worker_class="default")
    worker.clean_registries()
    drain_history(app, claim=True)
    assert job.get_status() == JobStatus.FAILED
    (row,) = rows(app, job.id)
    assert row["status"] == "abandoned"


# -- threads (JOBS_WORKER_THREADS, the default 8) ---------------------------------------


def test_thread_safe_jobs_run_together_and_others_alone(app: Flask, ctx: None, work: Any) -> None:
    import worker_jobs

    together = [worker_jobs.meet_safe.enqueue("meet:safe", 3) for _ in range(3)]
    alone = [worker_jobs.alone.enqueue("running:alone") for _ in range(3)]
    assert work("default")
    assert [job.return_value(refresh=True) for job in together] == [True] * 3
    assert [job.return_value(refresh=True) for job in alone] == [1] * 3
    # one RQ worker for the whole process, its counters shared by the lanes
    name = jobs_app.jobs.fetch_job(together[0].id).worker_name
    assert {jobs_app.jobs.fetch_job(job.id).worker_name for job in together + alone} == {name}


def test_timeouts_hold_in_every_lane(app: Flask, ctx: None, work: Any) -> None:
    import worker_jobs

    naps = [worker_jobs.nap.enqueue(30) for _ in range(4)]
    assert work("default")
    for job in naps:
        assert job.get_status() == JobStatus.FAILED
        result = job.latest_result()
        assert result is not None and "JobTimeoutException" in result.exc_string


def test_warm_shutdown_of_a_threaded_worker(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    import worker_jobs

    slow = [worker_jobs.pause.enqueue(1.5) for _ in range(2)]
    waiting = jobs_app.add.enqueue(1, 1)  # not thread-safe: waits for the pauses to end
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: all(job.get_status() == JobStatus.STARTED for job in slow))
        (worker,) = Worker.all(connection=jobs_app.jobs.connection)
        assert len(worker.get_current_executions()) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        stop_process(proc)
    assert [job.get_status() for job in slow] == [JobStatus.FINISHED] * 2
    assert waiting.get_status() == JobStatus.QUEUED
    assert jobs_app.jobs.connection.lrange("rq:queue:default", 0, -1) == [waiting.id.encode()]


def test_stop_job_command_stops_a_job_in_a_lane(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    import worker_jobs
    from rq.command import send_stop_job_command

    running = [worker_jobs.pause.enqueue(8) for _ in range(2)]  # both in lanes
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    try:
        wait_for(lambda: all(job.get_status() == JobStatus.STARTED for job in running))
        time.sleep(0.5)  # the worker subscribes to commands as it starts
        send_stop_job_command(jobs_app.jobs.connection, running[1].id)
        wait_for(lambda: running[1].get_status() == JobStatus.STOPPED, timeout=40)
        assert running[0].get_status() == JobStatus.STARTED
    finally:
        stop_process(proc)


def test_retired_worker_classes_say_what_to_use(runner: Any, app: Flask) -> None:
    result = runner.invoke(args=["jobs", "worker", "--burst", "--worker-class", "lean"])
    assert result.exit_code != 0
    assert "replaced by flask-jobs' own worker loop: use --worker-class default" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(ConfigurationError, match=r"JOBS_WORKER_CLASS.*use 'fork'"):
        load_config(dict(DEFAULTS, JOBS_REDIS_URL="redis://x:6379/0", JOBS_WORKER_CLASS="spawn"))


def test_an_idle_worker_runs_delayed_jobs_and_retries_when_they_fall_due(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    worker = subprocess.Popen(flask_command("jobs", "worker", "--name", "idle"), env=subprocess_env)
    try:
        # the worker is idle, blocked on its queue, when these fall due
        later = jobs_app.add.enqueue_in(timedelta(seconds=1), 2, 3)
        retried = jobs_app.flaky.enqueue("idle-flaky", 2)  # fails once, retried after 1 s
        wait_for(lambda: later.get_status(refresh=True) == JobStatus.FINISHED, timeout=30)
        wait_for(lambda: retried.get_status(refresh=True) == JobStatus.FINISHED, timeout=30)
    finally:
        stop_process(worker)
    assert later.return_value() == 5
    assert retried.return_value() == 2
