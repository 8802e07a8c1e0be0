"""``flask jobs worker --concurrency N``: N worker processes under one supervisor.

The supervisor forks its children after the app is loaded, restarts a child
that dies, and passes SIGTERM/SIGINT on: the first signal asks every child
for a warm shutdown (finish the current job), a second one for a cold one.
Children sit in their own process group so that a Ctrl-C in the terminal
reaches them once, through the supervisor, and they stop by themselves if
the supervisor disappears.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from ..forking import freeze_for_fork
from .memory import RECYCLE_EXIT

__all__ = ["Supervisor"]

log = logging.getLogger("flask_jobs.supervisor")


class Supervisor:
    """Keeps ``concurrency`` children alive, each running ``run_child(index)``."""

    def __init__(
        self,
        run_child: Callable[[int], int],
        concurrency: int,
        *,
        burst: bool = False,
        restart_delay: float = 1.0,
        extra: Callable[[], int] | None = None,
    ) -> None:
        self.run_child = run_child
        #: A companion process (the scheduler), child number 0, kept alive like the workers.
        self.extra = extra
        self.concurrency = concurrency
        self.burst = burst
        self.restart_delay = restart_delay
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (index, started at)
        self.crashes: dict[int, int] = {}  # index -> crashes in a row
        self.signals = 0

    def run(self) -> int:
        """Supervise until every child has exited; 1 if a burst ended with a crashed child."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        status = 0
        try:
            if self.extra is not None:
                self._spawn(0)
            for index in range(1, self.concurrency + 1):
                self._spawn(index)
            while self.children:
                if self.burst and self.extra is not None and self._only_extra_left():
                    self._stop_extra()
                try:
                    pid, wait_status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                if pid not in self.children:
                    continue
                index, started = self.children.pop(pid)
                code = os.waitstatus_to_exitcode(wait_status)
                if self.signals:
                    continue
                if code == RECYCLE_EXIT:
                    # --max-memory: a fresh process takes over, burst or not.
                    log.info("worker %d exited over --max-memory; starting a fresh one", index)
                    self.crashes[index] = 0
                    self._spawn(index)
                    continue
                if self.burst and (code == 0 or index == 0):
                    if index:
                        log.info("worker %d finished its burst", index)
                    continue
                if code == 0:
                    # --max-jobs reached: a fresh process takes over, as gunicorn's max_requests.
                    log.info("worker %d exited after --max-jobs; starting a fresh one", index)
                    self.crashes[index] = 0
                else:
                    status = 1
                    self.crashes[index] = (
                        self.crashes.get(index, 0) + 1 if time.monotonic() - started < 10 else 1
                    )
                    delay = min(self.restart_delay * 2 ** (self.crashes[index] - 1), 30.0)
                    log.error(
                        "worker %d (pid %d) died with exit code %s; restarting in %.0fs",
                        index,
                        pid,
                        code,
                        delay,
                    )
                    self._sleep(delay)
                    if self.signals:
                        continue
                self._spawn(index)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        # Stopped on request, every child ended: that is a clean exit whatever happened before.
        return 0 if self.signals else status

    def _only_extra_left(self) -> bool:
        return [index for index, _ in self.children.values()] == [0]

    def _stop_extra(self) -> None:
        for pid, (index, _) in list(self.children.items()):
            if index == 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.signals and time.monotonic() < deadline:
            time.sleep(0.1)

    def _spawn(self, index: int) -> None:
        # The children share the loaded app's pages with the supervisor (and so with each
        # other) for as long as no collection walks them.
        freeze_for_fork()
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                os.setpgid(0, 0)
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                _watch_parent(os.getppid())
                code = self.extra() if index == 0 and self.extra else self.run_child(index)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("worker %d crashed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = (index, time.monotonic())
        log.info("started worker %d (pid %d)", index, pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        kind = "warm" if self.signals == 1 else "cold"
        log.info(
            "got %s: %s shutdown of %d worker(s)",
            signal.Signals(signum).name,
            kind,
            len(self.children),
        )
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _watch_parent(parent: int) -> None:
    """Warm-stop this child if the supervisor dies (it would otherwise run on as an orphan)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="flask-jobs-parent-watch", daemon=True).start()
