"""Fixtures of the differential suite: an app on the suite's Redis, and `compare_runs`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from rq.worker import SimpleWorker, Worker

import jobs_app
from differential.allowed import ALLOWED
from differential.compare import Allowed, Difference, KnownDivergence, differences, report
from differential.divergences import DIVERGENCES
from differential.sides import Side
from differential.snapshot import Snapshot, take_snapshot

Scenario = Callable[[Side], None]

#: RQ's snapshot of each scenario, taken once per session and compared with each of ours.
_REFERENCE: dict[tuple[str, str], Snapshot] = {}
#: Comparisons the session defined, kept after -k/-m selection, and made; the `ALLOWED`
#: entries they used; the comparison tests of the suite.
_COMPARISONS = {"defined": 0, "collected": 0, "made": 0}
_USED: set[int] = set()
_TESTS = {
    "test_same_data_as_rq",
    "test_stop_job_as_rqs_forking_worker",
    "test_killed_worker_as_rqs",
}


def _comparisons(items: list[pytest.Item]) -> list[pytest.Item]:
    return [item for item in items if "compare_runs" in getattr(item, "fixturenames", ())]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _COMPARISONS["defined"] = len(_comparisons(items))  # before any deselection


def pytest_collection_finish(session: pytest.Session) -> None:
    kept = _comparisons(session.items)
    tests = {getattr(item, "originalname", item.name) for item in kept}
    _COMPARISONS["collected"] = len(kept) if tests == _TESTS else -1


def pytest_sessionfinish(session: pytest.Session) -> None:
    """After a run of every comparison: an allow-list entry no difference used is stale
    (RQ or we changed), and would hide that difference if it came back; fail on it."""
    counts = set(_COMPARISONS.values())
    if len(counts) != 1 or counts == {0}:
        return  # not every comparison of the suite was made in this session
    unused = [rule for n, rule in enumerate(ALLOWED) if n not in _USED and not rule.timing]
    if unused:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("differential/allowed.py: entries no scenario needs any more:")
            for rule in unused:
                reporter.write_line(f"  {rule.key} {rule.field}: {rule.reason[:70]}...")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def diff_app(redis_client: redis.Redis, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """Our app on the suite's Redis database (the history database is never written:
    the workers here run without their recorder)."""
    app = jobs_app.create_app(
        {"JOBS_REDIS_URL": redis_url, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'h.db'}"}
    )
    app.instance_path = str(tmp_path / "instance")
    yield app


@pytest.fixture
def compare_runs(diff_app: Flask, redis_client: redis.Redis, redis_url: str) -> Callable[..., None]:
    """``compare_runs(scenario, kind)``: run ``scenario`` under RQ's worker and under our
    ``kind`` on a flushed database each, and fail on any difference not in `ALLOWED`."""

    def run(side: Side, scenario: Scenario) -> Snapshot:
        redis_client.flushdb()
        scenario(side)
        snapshot = take_snapshot(redis_client, side.job_ids, side.worker_names)
        redis_client.flushdb()
        return snapshot

    def compare(scenario: Scenario, kind: str, rq_worker: type[Worker] = SimpleWorker) -> None:
        name = scenario.__name__.removeprefix("scenario_")
        ref = (name, rq_worker.__name__)
        if ref not in _REFERENCE:
            side = Side("rq", redis_client, diff_app, redis_url, rq_worker=rq_worker)
            _REFERENCE[ref] = run(side, scenario)
        ours = run(Side(kind, redis_client, diff_app, redis_url), scenario)
        unexplained: list[Difference] = []
        allowed: list[tuple[Difference, Allowed]] = []
        known: list[tuple[Difference, Allowed]] = []
        for diff in differences(_REFERENCE[ref], ours):
            rule = next((a for a in ALLOWED if a.covers(diff, kind, name)), None)
            bug = next((d for d in DIVERGENCES if d.covers(diff, kind, name)), None)
            if rule is not None:
                allowed.append((diff, rule))
                _USED.add(ALLOWED.index(rule))
            elif bug is not None:
                known.append((diff, bug))
            else:
                unexplained.append(diff)
        _COMPARISONS["made"] += 1
        title = f"scenario {name!r}: RQ's {rq_worker.__name__} vs our {kind!r}"
        assert not unexplained, report(title, unexplained, allowed, known)
        if known:
            raise KnownDivergence(report(title, [], allowed, known))

    return compare
