"""The two sides of a differential run: how each enqueues a job and runs a burst worker.

``rq`` is the reference: plain ``rq.Queue`` with RQ's `JSONSerializer` and RQ's own
``SimpleWorker`` (its forking ``Worker`` where a scenario needs a job to be stopped,
which a ``SimpleWorker`` cannot do). The others are ours, built by `build_worker`
exactly as ``flask jobs worker`` builds them, with jobs enqueued through
``.enqueue()``; ``rq-enqueued:<kind>`` enqueues as plain RQ does and runs our worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException
from rq.worker import SimpleWorker, Worker

import jobs_app
from flask_jobs.jobs.function import JobFunction
from flask_jobs.worker import build_worker

__all__ = ["OURS", "Side", "restored_process_state"]

#: Our worker kinds the scenarios run under: (name, worker class, threads).
OURS: dict[str, tuple[str, int]] = {
    "default": ("default", 1),
    "default-threads": ("default", 4),
    "fork": ("fork", 1),
}

TESTS = Path(__file__).parent.parent


@contextmanager
def restored_process_state() -> Iterator[None]:
    """Undo what a worker run changes in this process for the next run: the SIGINT/SIGTERM
    handlers it installs, and the message RQ's `TimerDeathPenalty` patches into the
    exception class it is given (ours gives it a class of its own; kept as a guard)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    init = JobTimeoutException.__init__
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        JobTimeoutException.__init__ = init  # type: ignore[method-assign]


@dataclass
class Side:
    """One run of a scenario: ``kind`` is "rq", one of `OURS`, or "rq-enqueued:<ours>"."""

    kind: str
    client: redis.Redis
    app: Flask
    redis_url: str
    #: RQ's worker class for the reference run (SimpleWorker unless a scenario says).
    rq_worker: type[Worker] = SimpleWorker
    job_ids: list[str] = field(default_factory=list)
    worker_names: list[str] = field(default_factory=list)

    @property
    def is_rq(self) -> bool:
        return self.kind == "rq"

    @property
    def enqueues_as_rq(self) -> bool:
        return self.kind == "rq" or self.kind.startswith("rq-enqueued:")

    @property
    def ours(self) -> str:
        """Our worker kind (for a run under RQ's worker: "rq")."""
        return self.kind.removeprefix("rq-enqueued:")

    def queue(self, name: str = "default") -> Queue:
        return Queue(name, connection=self.client, serializer=JSONSerializer)

    # -- enqueue ------------------------------------------------------------------

    def enqueue(self, task: JobFunction[..., Any], *args: Any, **options: Any) -> str:
        """Enqueue ``task(*args)``: plain RQ on the reference side, ``.enqueue()`` on ours.

        ``options`` are our ``.options(...)``; a `flask_jobs.Retry` becomes its RQ form.
        """
        if self.enqueues_as_rq:
            rq_options = dict(options)
            if rq_options.get("retry") is not None:
                rq_options["retry"] = rq_options["retry"].to_rq()
            job = self.queue(rq_options.pop("queue", "default")).enqueue_call(
                task.path.replace(":", "."), args=args, **rq_options
            )
        else:
            with self.app.app_context():
                job = task.options(**options).enqueue(*args)
        self.job_ids.append(job.id)
        return str(job.id)

    def adopt(self, job_id: str) -> str:
        """Name a job id the scenario made itself (for the snapshot's placeholders)."""
        self.job_ids.append(job_id)
        return job_id

    def fetch(self, job_id: str) -> Job:
        """The job as plain RQ reads it."""
        return Job.fetch(job_id, connection=self.client, serializer=JSONSerializer)

    # -- work -----------------------------------------------------------------------

    def worker_name(self) -> str:
        name = f"diff-{len(self.worker_names) + 1}"
        self.worker_names.append(name)
        return name

    def build(self, name: str, queues: list[str] | None = None) -> Any:
        """A worker of this side's kind, not started."""
        names = queues or ["default"]
        if self.is_rq:
            return self.rq_worker(
                [self.queue(q) for q in names],
                name=name,
                connection=self.client,
                serializer=JSONSerializer,
            )
        worker_class, threads = OURS[self.ours]
        worker: Any = build_worker(
            self.app,
            jobs_app.jobs.state(self.app),
            names,
            worker_class=worker_class,
            name=name,
            threads=threads,
        )
        # The recorder only copies the history stream into SQL: it writes none of RQ's data.
        worker.run_recorder = False
        return worker

    def work(self, queues: list[str] | None = None) -> bool:
        """One burst worker of this side's kind, run here until its queues are empty."""
        worker = self.build(self.worker_name(), queues)
        with restored_process_state():
            return bool(worker.work(burst=True, with_scheduler=True, logging_level="ERROR"))

    def start_process(self) -> subprocess.Popen[bytes]:
        """A worker of this side's kind in a process of its own (not a burst)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        kind = "rq" if self.is_rq else self.ours
        return subprocess.Popen(
            [sys.executable, "-m", "differential.worker_main", kind, self.redis_url,
             self.worker_name()],
            env=env,
        )  # fmt: skip
