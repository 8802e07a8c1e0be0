"""Forked processes (companions, supervised workers) start with the parent's objects frozen."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterator

import pytest
from flask import Flask

from flask_jobs.forking import start_companion, stop_companion
from flask_jobs.worker.supervisor import Supervisor


class Cycle:
    """An object in a reference cycle: only the garbage collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Give the test process its collector back as it was (the fork froze its objects)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def gc_report(write_to: int) -> None:
    """Write what a child sees of its collector to a pipe: frozen objects, and whether a
    cycle made in the child is still collected."""
    Cycle()
    report = {
        "frozen": gc.get_freeze_count(),
        "enabled": gc.isenabled(),
        "collected": gc.collect(),
    }
    os.write(write_to, json.dumps(report).encode())
    os.close(write_to)


def read_report(read_from: int) -> dict[str, int]:
    with os.fdopen(read_from, "rb") as pipe:
        return dict(json.loads(pipe.read()))


class Reporter:
    """A companion that reports, then waits to be stopped."""

    def __init__(self, write_to: int) -> None:
        self.write_to = write_to
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def run(self, parent: int | None = None) -> None:
        gc_report(self.write_to)
        while not self.stopped:
            os.sched_yield()


def test_a_companion_shares_the_parents_objects_frozen_and_collects_its_own(
    unfrozen: None,
) -> None:
    Cycle()  # garbage of the parent's: collected before the fork, not frozen for good
    read_from, write_to = os.pipe()
    pid = start_companion(Flask(__name__), lambda: Reporter(write_to), "test companion")
    os.close(write_to)
    try:
        report = read_report(read_from)
    finally:
        stop_companion(pid, timeout=10)
    assert report["frozen"] > 1000  # the modules, the app: out of the collector's walks
    assert report["enabled"]
    assert report["collected"] >= 1  # the child's own cycle
    assert gc.get_freeze_count() > 1000  # the parent keeps them frozen too (its pages stay shared)
    gc.unfreeze()
    assert not [o for o in gc.get_objects() if isinstance(o, Cycle)]  # collected, not frozen


def test_supervised_workers_start_with_the_supervisors_objects_frozen(unfrozen: None) -> None:
    read_from, write_to = os.pipe()

    def run_child(index: int) -> int:
        gc_report(write_to)
        return 0

    assert Supervisor(run_child, 1, burst=True).run() == 0
    os.close(write_to)
    report = read_report(read_from)
    assert report["frozen"] > 1000
    assert report["enabled"]
    assert report["collected"] >= 1
