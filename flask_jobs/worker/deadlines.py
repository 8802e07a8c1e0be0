"""Job time limits without a thread, or a signal handler change, per job.

RQ's penalties start a timer thread per job (a job in a thread) or install a SIGALRM
handler and put the default one back (a job in the main thread). A worker runs
thousands of jobs a second, so here one watchdog thread per process keeps the deadlines
of every thread (hard and soft time limits) in a heap and raises the asynchronous
exception of the one that falls due, as RQ's timer does; and the main thread's SIGALRM
handler is installed once, after which a job only sets and clears the alarm. Both are
context managers with RQ's death-penalty interface (``penalty(timeout, exception,
job_id=...)``), so RQ's callback runner can time callbacks with them too.
"""

from __future__ import annotations

import ctypes
import functools
import heapq
import itertools
import os
import signal
import threading
import time
from typing import Any

from rq.timeouts import BaseDeathPenalty, JobTimeoutException

__all__ = [
    "SignalDeathPenalty",
    "ThreadDeathPenalty",
    "Watchdog",
    "penalty_for_this_thread",
    "timeout_error",
    "watchdog",
]


def raise_in(ident: int, exc: type[BaseException] | None) -> None:
    """Set (or, with None, clear) the exception thread ``ident`` raises at its next step."""
    target = ctypes.py_object(exc) if exc is not None else ctypes.c_void_p(0)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), target)


class Deadline:
    """One armed limit: the thread it is for and what it raises there."""

    __slots__ = ("active", "exc", "fired", "ident")

    def __init__(self, ident: int, exc: type[BaseException]) -> None:
        self.ident = ident
        self.exc = exc
        self.active = True
        self.fired = False


class Watchdog:
    """The deadlines of one process's threads, watched by one thread (started on first
    use, and again in a forked child, which inherits no threads)."""

    def __init__(self) -> None:
        self._pid: int | None = None

    def _ensure(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._active = 0
        thread = threading.Thread(target=self._run, name="flask-jobs-deadlines", daemon=True)
        thread.start()

    def arm(self, seconds: float, exc: type[BaseException]) -> Deadline:
        """Raise ``exc`` in this thread in ``seconds`` unless `disarm` comes first."""
        self._ensure()
        deadline = Deadline(threading.get_ident(), exc)
        with self._cond:
            heap = self._heap
            if len(heap) > 64 and len(heap) > 4 * self._active:
                # ended deadlines leave the heap lazily; keep it near the running ones
                heap[:] = [entry for entry in heap if entry[2].active]
                heapq.heapify(heap)
            heapq.heappush(heap, (time.monotonic() + seconds, next(self._order), deadline))
            self._active += 1
            if heap[0][2] is deadline:
                self._cond.notify()
        return deadline

    def disarm(self, deadline: Deadline) -> bool:
        """End ``deadline``; whether it had fired (its exception, if not raised yet, never
        will be)."""
        with self._cond:
            if deadline.active:
                deadline.active = False
                self._active -= 1
            if deadline.fired:
                raise_in(deadline.ident, None)
        return deadline.fired

    def _run(self) -> None:
        cond, heap = self._cond, self._heap
        with cond:
            while True:
                while heap and not heap[0][2].active:
                    heapq.heappop(heap)
                if not heap:
                    cond.wait()
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    cond.wait(wait)
                    continue
                deadline = heapq.heappop(heap)[2]
                deadline.active = False
                deadline.fired = True
                self._active -= 1
                raise_in(deadline.ident, deadline.exc)


#: The process's watchdog.
watchdog = Watchdog()


@functools.cache
def timeout_error(timeout: float) -> type[JobTimeoutException]:
    """RQ's `JobTimeoutException` for a ``timeout`` in a thread, with RQ's message: an
    exception raised in another thread is a class, made without arguments there, so each
    timeout gets a subclass of its own that writes the message itself."""

    def __init__(self: BaseException, *args: Any) -> None:
        JobTimeoutException.__init__(
            self, *(args or (f"Task exceeded maximum timeout value ({timeout} seconds)",))
        )

    error = type("JobTimeoutException", (JobTimeoutException,), {"__init__": __init__})
    error.__module__ = JobTimeoutException.__module__
    return error


class ThreadDeathPenalty(BaseDeathPenalty):
    """RQ's thread timeout (an asynchronous exception), on the shared `watchdog`."""

    def setup_death_penalty(self) -> None:
        self._deadline = None
        if self._timeout > 0:
            exc = self._exception
            if exc is JobTimeoutException:
                exc = timeout_error(self._timeout)
            self._deadline = watchdog.arm(self._timeout, exc)

    def cancel_death_penalty(self) -> None:
        if self._deadline is not None:
            watchdog.disarm(self._deadline)
            self._deadline = None


#: The main thread's penalty now running, which the SIGALRM handler raises.
_current: SignalDeathPenalty | None = None


def _on_alarm(signum: int, frame: Any) -> None:
    penalty = _current
    if penalty is not None:
        raise penalty._exception(
            f"Task exceeded maximum timeout value ({penalty._timeout} seconds)"
        )


class SignalDeathPenalty(BaseDeathPenalty):
    """RQ's main-thread timeout (SIGALRM interrupts even a blocking call), with the
    handler installed once: per job, only the alarm is set and cleared."""

    def setup_death_penalty(self) -> None:
        global _current
        if self._timeout <= 0:
            return
        if signal.getsignal(signal.SIGALRM) is not _on_alarm:
            signal.signal(signal.SIGALRM, _on_alarm)
        _current = self
        signal.setitimer(signal.ITIMER_REAL, self._timeout)

    def cancel_death_penalty(self) -> None:
        global _current
        if self._timeout <= 0:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        _current = None


def penalty_for_this_thread() -> type[BaseDeathPenalty]:
    """The penalty for a job run by this thread: the signal in the main thread, else the
    watchdog."""
    if threading.current_thread() is threading.main_thread():
        return SignalDeathPenalty
    return ThreadDeathPenalty
