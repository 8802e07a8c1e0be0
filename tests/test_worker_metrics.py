"""Worker metrics for Prometheus: counts and times of real workers on real Redis, served
over HTTP by one process or summed over ``--processes``; bad settings; no prometheus_client."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import worker_jobs
from flask import Flask
from flask.testing import FlaskCliRunner
from prometheus_client.parser import text_string_to_metric_families

import jobs_app
from conftest import flask_command, stop_process, wait_for
from flask_jobs import Retry
from flask_jobs.config import DEFAULTS, load_config
from flask_jobs.errors import ConfigurationError
from flask_jobs.worker import build_worker
from flask_jobs.worker.metrics import PrometheusMiddleware

#: Our loop's modes, as (threads, an async job too).
MODES = {"serial": 1, "threads": 4}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples served on ``port``: (name, labels) -> value; empty if nobody serves."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get(("flask_jobs_worker_" + name, frozenset(labels.items())), 0.0)


def _work(app: Flask, threads: int) -> PrometheusMiddleware:
    """A burst worker of ``app`` with metrics on (on a free port): its middleware."""
    state = jobs_app.jobs.state(app)
    state.config = dataclasses.replace(state.config, worker_metrics_port=free_port())
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker: Any = build_worker(app, state, worker_class="default", threads=threads)
        worker.run_recorder = False
        assert worker.work(burst=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    (found,) = [m for m in worker.middleware.middleware if isinstance(m, PrometheusMiddleware)]
    assert found._server is None  # the port is closed with the worker
    return found


@pytest.mark.parametrize("mode", list(MODES))
def test_a_worker_counts_and_times_its_jobs(app: Flask, ctx: None, mode: str) -> None:
    for n in range(3):
        jobs_app.add.enqueue(n, 1)
    worker_jobs.pause.enqueue(0.01)  # a lane's job in the threads mode
    worker_jobs.async_fail.enqueue("async")  # on the event loop
    jobs_app.fail.enqueue("no")
    jobs_app.always_fails.options(retry=Retry(1, delay=0)).enqueue(1)
    metrics = _work(app, MODES[mode])

    def get(name: str, function: str) -> float | None:
        labels = {"queue": "default", "function": function}
        return metrics.registry.get_sample_value("flask_jobs_worker_" + name, labels)

    add, fail, retried = "jobs_app.add", "jobs_app.fail", "jobs_app.always_fails"
    assert get("jobs_started_total", add) == 3 and get("jobs_finished_total", add) == 3
    assert get("jobs_failed_total", add) == 0 and get("jobs_in_progress", add) == 0
    assert get("job_duration_seconds_count", add) == 3
    assert get("job_wait_seconds_count", add) == 3
    assert get("job_duration_seconds_bucket", add) is None  # a bucket needs its "le"
    assert get("jobs_finished_total", "worker_jobs.pause") == 1
    assert get("jobs_failed_total", "worker_jobs.async_fail") == 1
    assert get("jobs_started_total", fail) == 1 and get("jobs_failed_total", fail) == 1
    assert get("jobs_finished_total", fail) == 0
    assert get("jobs_started_total", retried) == 2  # the attempt and its retry
    assert get("jobs_retried_total", retried) == 1 and get("jobs_failed_total", retried) == 1
    assert get("job_duration_seconds_count", retried) == 2
    everything = {"queue": "default", "function": add, "le": "+Inf"}
    assert (
        metrics.registry.get_sample_value("flask_jobs_worker_job_wait_seconds_bucket", everything)
        == 3
    )


def test_an_abandoned_job_is_counted(app: Flask, ctx: None) -> None:
    metrics = PrometheusMiddleware()
    job = jobs_app.add.enqueue(1, 2)
    metrics.on_abandoned(None, job)  # type: ignore[arg-type]
    labels = {"queue": "default", "function": "jobs_app.add"}
    assert metrics.registry.get_sample_value("flask_jobs_worker_jobs_abandoned_total", labels) == 1
    assert metrics.registry.get_sample_value("flask_jobs_worker_jobs_in_progress", labels) == 0


def test_one_worker_serves_its_metrics_on_the_port(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    port = free_port()
    done = [jobs_app.add.enqueue(n, n) for n in range(4)]
    failed = jobs_app.fail.enqueue("no")
    proc = subprocess.Popen(
        flask_command("jobs", "worker", "--metrics-port", str(port)), env=subprocess_env
    )
    try:
        add = {"queue": "default", "function": "jobs_app.add"}
        samples = wait_for(
            lambda: (
                (s := scrape(port))
                and value(s, "jobs_failed_total", queue="default", function="jobs_app.fail") == 1
                and value(s, "jobs_finished_total", **add) == 4
                and s
            )
        )
        assert value(samples, "jobs_started_total", **add) == 4
        assert value(samples, "job_duration_seconds_count", **add) == 4
        assert value(samples, "jobs_in_progress", **add) == 0
        # prometheus_client's own collectors are served beside ours
        assert any(name == "process_cpu_seconds_total" for name, _ in samples)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        stop_process(proc)
    assert [job.get_status() for job in done] == ["finished"] * 4
    assert failed.get_status() == "failed"


def test_processes_share_one_port_and_sum_their_metrics(
    app: Flask, ctx: None, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    subprocess_env["TMPDIR"] = str(tmp_path)  # where the shared directory is made
    jobs = [jobs_app.whoami.enqueue(pause=0.2) for _ in range(10)]
    args = ["--processes", "2", "--threads", "1", "--metrics-port", str(port)]
    proc = subprocess.Popen(flask_command("jobs", "worker", *args), env=subprocess_env)
    labels = {"queue": "default", "function": "jobs_app.whoami"}
    try:
        samples = wait_for(
            lambda: (s := scrape(port)) and value(s, "jobs_finished_total", **labels) == 10 and s,
            timeout=60,
        )
        assert value(samples, "jobs_started_total", **labels) == 10
        assert value(samples, "job_wait_seconds_count", **labels) == 10
        assert value(samples, "jobs_in_progress", **labels) == 0
        (folder,) = tmp_path.glob("flask-jobs-metrics-*")
        assert any(folder.glob("counter_*.db"))  # prometheus_client's multiprocess files
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        stop_process(proc)
    pids = {job.return_value(refresh=True)["pid"] for job in jobs}
    assert len(pids) == 2  # both processes ran jobs, and the port showed the sum
    assert not folder.exists()  # the supervisor deletes the directory at exit


@pytest.mark.parametrize("given", [0, 65536, -1, "ninety", 80.5, True, [9191]])
def test_a_bad_port_is_refused_naming_the_key(given: Any) -> None:
    config = dict(DEFAULTS, JOBS_REDIS_URL="redis://localhost:6379/0")
    config["JOBS_WORKER_METRICS_PORT"] = given
    with pytest.raises(ConfigurationError) as raised:
        load_config(config)
    message = str(raised.value)
    assert message.startswith(f"JOBS_WORKER_METRICS_PORT = {given!r} is not valid")
    assert "1 to 65535" in message and "\n" not in message


@pytest.mark.parametrize(
    ("given", "port"), [(None, None), ("", None), (9191, 9191), ("9200", 9200)]
)
def test_a_port_from_config_or_the_environment(given: Any, port: int | None) -> None:
    config = dict(DEFAULTS, JOBS_REDIS_URL="redis://localhost:6379/0")
    config["JOBS_WORKER_METRICS_PORT"] = given
    assert load_config(config).worker_metrics_port == port


def test_the_worker_command_refuses_what_cannot_count(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["jobs", "worker", "--burst", "--worker-class", "fork", "--metrics-port", "9191"]
    )
    assert result.exit_code == 1
    assert "worker metrics need --worker-class default, not 'fork'" in result.output
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(args=["jobs", "worker", "--burst", "--metrics-port", str(port)])
    assert result.exit_code == 1
    assert f"cannot serve worker metrics on port {port}" in result.output
    result = runner.invoke(args=["jobs", "worker", "--burst", "--metrics-port", "70000"])
    assert result.exit_code == 2 and "70000 is not in the range 1<=x<=65535" in result.output


BLOCKED = """
import sys
sys.modules["prometheus_client"] = None  # as if it were not installed
from flask.cli import main
sys.argv = ["flask", "jobs", "worker", "--burst", "--metrics-port", "{port}"]
main()
"""


def test_without_prometheus_client_the_worker_says_what_to_install(
    app: Flask, subprocess_env: dict[str, str]
) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", BLOCKED.format(port=free_port())],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 1, ran.stderr
    (line,) = [line for line in ran.stderr.splitlines() if "prometheus_client" in line]
    assert line == (
        "Error: worker metrics (JOBS_WORKER_METRICS_PORT, --metrics-port) need "
        "prometheus_client, which is not installed: pip install 'flask-jobs[metrics]'"
    )
    assert "Traceback" not in ran.stderr


def test_a_killed_process_leaves_no_job_in_progress(
    app: Flask, ctx: None, subprocess_env: dict[str, str]
) -> None:
    port = free_port()
    slow = jobs_app.whoami.options(timeout=60).enqueue(pause=30.0)
    args = ["--processes", "2", "--threads", "1", "--metrics-port", str(port)]
    proc = subprocess.Popen(flask_command("jobs", "worker", *args), env=subprocess_env)
    labels = {"queue": "default", "function": "jobs_app.whoami"}
    try:
        wait_for(lambda: value(scrape(port), "jobs_in_progress", **labels) == 1, timeout=30)
        worker = jobs_app.jobs.fetch_job(slow.id).worker_name
        os.kill(int(worker.split(".")[-2]), signal.SIGKILL)  # host.pid.random
        # the supervisor starts a new process, which drops the dead one's gauge
        samples = wait_for(
            lambda: (s := scrape(port)) and value(s, "jobs_in_progress", **labels) == 0 and s,
            timeout=30,
        )
        assert value(samples, "jobs_started_total", **labels) == 1
    finally:
        stop_process(proc)
