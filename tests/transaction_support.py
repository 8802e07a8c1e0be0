"""What the after-commit and outbox tests share: a redis-server of their own, a web-like
process killed between its commit and the push, and a queue's length."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from reliability.conftest import SpareRedis


def queued(client: redis.Redis, queue: str = "default") -> int:
    return int(client.llen(f"rq:queue:{queue}"))


@pytest.fixture(name="spare_redis")
def spare_redis_fixture(tmp_path: Path) -> Iterator[SpareRedis]:
    """A redis-server of the test's own, started, on a port of its own (stop it, start it)."""
    server = SpareRedis(tmp_path / "spare-redis", persist=False)
    server.start()
    yield server
    server.stop()


KILLED_WEB = """
import os, signal, sys
import sqlalchemy as sa
import jobs_app
from jobs_app import db, Note
app = jobs_app.create_app({config})
with app.app_context():
    db.create_all()
    # runs before flask-jobs' own listener: the process dies right after the commit
    sa.event.listen(db.session, "after_commit",
                    lambda s: os.kill(os.getpid(), signal.SIGKILL), insert=True)
    db.session.add(Note(text="paid"))
    job = jobs_app.count_notes.enqueue()
    print(job.id, flush=True)
    db.session.commit()
"""


def killed_web_process(subprocess_env: dict[str, str], config: dict[str, Any]) -> str:
    """Run a web-like process killed (SIGKILL) between its commit and the push: the job id."""
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WEB.format(config=repr(config))],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.strip()
