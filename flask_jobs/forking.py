"""Companion processes of a worker (the history recorder, the outbox relay): forked from
it, forgetting its database connections first, stopped by a signal; and the garbage
collector's freeze that keeps a forked child's memory shared with its parent."""

from __future__ import annotations

import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from flask import Flask

__all__ = ["Companion", "dispose_db_pools", "freeze_for_fork", "start_companion", "stop_companion"]

log = logging.getLogger("flask_jobs.worker")


class Companion(Protocol):
    """A loop that runs in its own process until stopped or orphaned."""

    def stop(self) -> None: ...

    def run(self, parent: int | None = None) -> None: ...


def dispose_db_pools(app: Flask) -> None:
    """Drop the SQLAlchemy connections inherited across a fork, without closing the parent's."""
    sqlalchemy = app.extensions.get("sqlalchemy")
    if sqlalchemy is None:
        return
    with app.app_context():
        for engine in sqlalchemy.engines.values():
            engine.dispose(close=False)


def freeze_for_fork() -> None:
    """Collect, then move every object the process holds out of the garbage collector's reach.

    A forked child shares its parent's pages until either process writes to one. A full
    collection writes into every tracked object it visits (in the parent or in the child),
    so without this a child soon holds a private copy of the whole heap. Frozen objects
    (the modules, the app, the worker: the state of a process that is about to fork) are
    kept for good, as they would be anyway; objects made afterwards are collected as before,
    in both processes. CPython's documentation of `gc.freeze` recommends it before a fork.
    """
    gc.collect()
    gc.freeze()


def start_companion(app: Flask, make: Callable[[], Companion], what: str) -> int:
    """Fork a process that runs ``make()``'s loop until SIGTERM (or its parent dies);
    return its pid.

    A process and not a thread: a worker forks a work horse per job, and a fork
    taken while a thread is inside SQLite or a connection pool can leave the child
    waiting forever on a lock that no thread will release.
    """
    parent = os.getpid()
    freeze_for_fork()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        dispose_db_pools(app)
        companion = make()

        def stop(signum: int, frame: Any) -> None:
            companion.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)  # a Ctrl-C reaches the whole process group
        companion.run(parent=parent)
    except BaseException:
        log.exception("%s process crashed", what)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def stop_companion(pid: int, timeout: float) -> None:
    """Ask the process to finish what it holds and exit (SIGTERM); kill it after ``timeout``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
