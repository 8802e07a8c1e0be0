"""``--max-memory``: a worker process past its memory limit is replaced after its job."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

import jobs_app
from conftest import flask_command, stop_process
from flask_jobs.worker.memory import resident_mb


def test_resident_memory_is_measured() -> None:
    before = resident_mb()
    ballast = b"x" * (64 * 2**20)  # written, so its pages are resident
    assert resident_mb() - before > 50
    del ballast


def _burst(args: list[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            flask_command("jobs", "worker", "--burst", *args), env=env, stderr=stderr
        )
        try:
            code = proc.wait(timeout=120)
        finally:
            stop_process(proc)
    return code, log.read_text()


@pytest.mark.parametrize("threads", ["1", "8"])
def test_a_worker_over_the_limit_is_replaced_and_no_job_is_lost(
    app: Flask, ctx: None, subprocess_env: dict[str, str], tmp_path: Path, threads: str
) -> None:
    queued = [jobs_app.whoami.enqueue() for _ in range(4)]
    # Any Python process is past 1 MB: each one runs a single job, then makes way.
    code, log = _burst(
        ["--max-memory", "1", "--threads", threads], subprocess_env, tmp_path / "w.log"
    )
    assert code == 0, log
    results = [job.return_value(refresh=True) for job in queued]
    assert all(result is not None for result in results), log
    assert len({result["pid"] for result in results}) == 4
    assert log.count("over --max-memory 1 MB") == 4
    assert log.count("exited over --max-memory; starting a fresh one") == 4


def test_a_worker_under_the_limit_keeps_running(
    app: Flask, ctx: None, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    queued = [jobs_app.whoami.enqueue() for _ in range(4)]
    code, log = _burst(["--max-memory", "100000"], subprocess_env, tmp_path / "w.log")
    assert code == 0, log
    assert len({job.return_value(refresh=True)["pid"] for job in queued}) == 1
    assert "over --max-memory" not in log


def test_max_memory_must_be_a_positive_number(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["jobs", "worker", "--burst", "--max-memory", "0"])
    assert result.exit_code == 2
    assert "--max-memory" in result.output and "0" in result.output


def test_processes_is_the_name_of_concurrency(app: Flask, runner: FlaskCliRunner) -> None:
    shown = runner.invoke(args=["jobs", "worker", "--help"]).output
    assert "-p, -c, --processes, --concurrency INTEGER RANGE" in shown
    assert "--max-memory MB" in shown
