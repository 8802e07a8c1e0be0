"""How a running worker is told what to do from outside: SIGTERM/SIGINT (warm, then cold
shutdown) and RQ's pubsub commands (``rq:pubsub:<worker>``: stop-job, shutdown,
kill-horse), and how a running job is interrupted (`JobStopped` raised in its thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from rq.command import parse_payload

from ..errors import JobStopped
from ..keys import worker_channel

if TYPE_CHECKING:
    import redis

__all__ = ["COLD", "STOP_JOB_SIGNAL", "Control", "Interrupted", "raise_in_thread"]

log = logging.getLogger("flask_jobs.worker")

#: Sent to the main thread to stop its job: a signal interrupts a blocking call
#: (``time.sleep``, a socket read), which an exception set from another thread cannot.
STOP_JOB_SIGNAL = signal.SIGRTMIN + 1
#: What a cold shutdown raises in the running jobs: they fail, as under RQ's SimpleWorker.
COLD = "cold shutdown: the worker was stopped and killed the job"


class Interrupted(Exception):
    """A warm stop that came while the worker waited in Redis with nothing in hand."""


class ColdShutdown(SystemExit):
    """The second stop signal: the running jobs fail, the worker exits."""


def raise_in_thread(ident: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in thread ``ident`` the next time it runs Python code; in the main
    thread by a signal, which also interrupts a blocking call."""
    if ident == threading.main_thread().ident and exc is JobStopped:
        signal.pthread_kill(ident, STOP_JOB_SIGNAL)
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


class Control:
    """A worker's stop flags, signal handlers and command channel."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stop_requested = False
        self.cold = False
        #: True while the main thread blocks in Redis with no job in hand.
        self.waiting = False
        #: The job ids asked to stop (stop-job), and the thread of each running job.
        self.stopping: set[str] = set()
        self.threads: dict[str, int] = {}
        #: The child process of each job running in one (the fork mode).
        self.horses: dict[str, int] = {}
        #: The event loop and task of each ``async def`` job running.
        self.tasks: dict[str, tuple[Any, Any]] = {}
        self._first_signal = 0.0
        #: Called on the warm stop (the worker records it in its hash, as RQ's does).
        self.on_warm: Any = None
        self._pubsub: Any = None
        self._thread: Any = None
        self._previous: dict[int, Any] = {}

    # -- signals ----------------------------------------------------------------------

    def install(self) -> None:
        """Our SIGTERM/SIGINT handlers (main thread only), and the stop-job signal's."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT, STOP_JOB_SIGNAL):
            handler = self._stop_job if sig == STOP_JOB_SIGNAL else self._on_signal
            self._previous[sig] = signal.signal(sig, handler)

    def uninstall(self) -> None:
        """Put back the handlers `install` replaced."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.stop_requested:
            self.stop_requested = True
            self._first_signal = time.monotonic()
            log.info(
                "worker %s: got %s, warm shutdown (the running jobs finish; a second signal "
                "stops them)",
                self.name,
                signal.Signals(signum).name,
            )
            if self.on_warm is not None:
                self.on_warm()
            if self.waiting:
                raise Interrupted
            return
        if time.monotonic() - self._first_signal < 1.0:
            return  # one Ctrl-C that reached the supervisor and this process both
        self.cold = True
        log.warning("worker %s: cold shutdown, the running jobs fail", self.name)
        main = threading.main_thread().ident
        for ident in list(self.threads.values()):
            if ident != main:
                raise_in_thread(ident, ColdShutdown)
        for loop, task in list(self.tasks.values()):
            loop.call_soon_threadsafe(task.cancel)
        raise ColdShutdown(1)

    def _stop_job(self, signum: int, frame: Any) -> None:
        main = threading.main_thread().ident
        if any(self.threads.get(job_id) == main for job_id in self.stopping):
            raise JobStopped("stopped on request")

    # -- commands -----------------------------------------------------------------------

    def subscribe(self, connection: redis.Redis) -> None:
        """Listen on RQ's command channel of this worker, in a thread."""
        client: Any = connection  # pubsub() is typed in some redis-py releases, not in others
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(**{worker_channel(self.name): self._on_command})
        self._thread = self._pubsub.run_in_thread(
            sleep_time=0.2, daemon=True, exception_handler=self._on_pubsub_error
        )

    def unsubscribe(self) -> None:
        """Stop listening."""
        if self._thread is not None:
            self._thread.stop()
            self._thread.join(5)
            self._thread = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone with Redis
                self._pubsub.close()
            self._pubsub = None

    def _on_pubsub_error(self, exc: Exception, pubsub: Any, thread: Any) -> None:
        # A Redis outage: redis-py's thread reconnects on the next read; keep it alive.
        log.warning("worker %s: command channel error (%s); listening again", self.name, exc)
        time.sleep(1.0)

    def _on_command(self, message: Any) -> None:
        try:
            payload = parse_payload(message)
        except Exception:
            log.warning("worker %s: unreadable command %r", self.name, message)
            return
        command = payload.get("command")
        if command == "stop-job":
            self.stop_job(str(payload.get("job_id")))
        elif command == "kill-horse":
            for job_id in [*self.threads, *self.horses, *self.tasks]:
                self.stop_job(job_id)
        elif command == "shutdown":
            log.info("worker %s: shutdown command, warm shutdown", self.name)
            self.stop_requested = True

    def stop_job(self, job_id: str) -> None:
        """Raise `JobStopped` in the job's thread, if this worker runs it."""
        ident, horse = self.threads.get(job_id), self.horses.get(job_id)
        task = self.tasks.get(job_id)
        if ident is None and horse is None and task is None:
            return
        log.info("worker %s: stopping job %s on request", self.name, job_id)
        self.stopping.add(job_id)
        if task is not None:
            loop, running = task
            loop.call_soon_threadsafe(running.cancel)
        elif horse is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(horse, signal.SIGKILL)
        elif ident is not None:
            raise_in_thread(ident, JobStopped)
