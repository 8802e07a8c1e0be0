"""The example app's ``flask jobs`` commands: the README's demo lines run as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import redis

from .support import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


def _readme_demo_block() -> tuple[dict[str, str], list[list[str]]]:
    """The README's block of demo commands: its ``export`` and each ``flask`` line."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(export FLASK_APP=example_app[^\n]*\n(?:[^`]*\n))```", text)
    assert block, "the README shows the demo's flask jobs commands"
    lines = block.group(1).strip().splitlines()
    exported = dict(part.split("=", 1) for part in shlex.split(lines[0])[1:])
    commands = [shlex.split(line) for line in lines[1:]]
    return exported, commands


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(
        FLASK_JOBS_REDIS_URL=REDIS_URL,
        FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'ex.db'}",
        FLASK_EXAMPLE_MAILBOX=str(tmp_path / "mailbox"),
        **extra,
    )
    return env


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert command[0] == ".venv/bin/flask"
    return subprocess.run(
        [sys.executable, "-m", "flask", *command[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_demo_command_in_the_readme_runs(redis_available: None, tmp_path: Path) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        exported, commands = _readme_demo_block()
        assert exported == {"FLASK_APP": "example_app", "FLASK_DEBUG": "1"}
        assert len(commands) >= 5
        for command in commands:
            done = _run(command, _env(tmp_path, **exported))
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr
    finally:
        client.flushdb()
        client.close()


def test_outside_debug_the_example_says_how_in_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, FLASK_APP="example_app")
    env.pop("FLASK_JOBS_REDIS_URL")
    done = _run([".venv/bin/flask", "jobs", "status"], env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: SECRET_KEY is not set and this is not a debug run.")
    assert "FLASK_DEBUG=1 flask --app example_app jobs status" in line
