"""Schedule declarations: validation, and fire times from fixed clocks (no waiting)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask

import jobs_app
from flask_jobs import ConfigurationError, Jobs
from flask_jobs.scheduler.declarations import Schedule, parse_schedule

UTC = timezone.utc


def fires(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        fire = schedule.next_fire(previous, now)
        assert fire is not None
        out.append(fire.astimezone(UTC))
        previous = fire
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_berlin_across_dst_2026_and_2027() -> None:
    schedule = parse_schedule(
        "digest",
        {"job": "jobs_app:add", "cron": "3 17 * * sun", "timezone": "Europe/Berlin"},
        "UTC",
    )
    # CET is UTC+1, CEST UTC+2; the clocks change on Sundays:
    # 2026-03-29, 2026-10-25, 2027-03-28, 2027-10-31
    assert fires(schedule, utc(2026, 3, 20), 3) == [
        utc(2026, 3, 22, 16, 3),
        utc(2026, 3, 29, 15, 3),
        utc(2026, 4, 5, 15, 3),
    ]
    assert fires(schedule, utc(2026, 10, 17), 2) == [
        utc(2026, 10, 18, 15, 3),
        utc(2026, 10, 25, 16, 3),
    ]
    assert fires(schedule, utc(2027, 3, 20), 2) == [
        utc(2027, 3, 21, 16, 3),
        utc(2027, 3, 28, 15, 3),
    ]
    assert fires(schedule, utc(2027, 10, 23), 2) == [
        utc(2027, 10, 24, 15, 3),
        utc(2027, 10, 31, 16, 3),
    ]
    assert schedule.describe() == "every Sunday at 17:03 (Europe/Berlin)"


def test_daily_new_york_nonexistent_and_repeated_times() -> None:
    daily = parse_schedule(
        "nightly",
        {"job": "jobs_app:add", "cron": "30 2 * * *", "timezone": "America/New_York"},
        "UTC",
    )
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist: it runs at 03:30 EDT
    assert fires(daily, utc(2026, 3, 7), 3) == [
        utc(2026, 3, 7, 7, 30),
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 9, 6, 30),
    ]
    assert fires(daily, utc(2027, 3, 13), 3) == [
        utc(2027, 3, 13, 7, 30),
        utc(2027, 3, 14, 7, 30),
        utc(2027, 3, 15, 6, 30),
    ]
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST; 02:30 happens once (EST)
    assert fires(daily, utc(2026, 10, 31), 3) == [
        utc(2026, 10, 31, 6, 30),
        utc(2026, 11, 1, 7, 30),
        utc(2026, 11, 2, 7, 30),
    ]
    # 01:30 happens twice that night: it fires once, at the first one (EDT)
    repeated = parse_schedule(
        "early",
        {"job": "jobs_app:add", "cron": "30 1 * * *", "timezone": "America/New_York"},
        "UTC",
    )
    assert fires(repeated, utc(2026, 10, 31, 12), 2) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]
    assert fires(repeated, utc(2027, 11, 6, 12), 2) == [
        utc(2027, 11, 7, 5, 30),
        utc(2027, 11, 8, 6, 30),
    ]


def test_cron_weekday_numbers_are_crons() -> None:
    sunday = parse_schedule("s", {"job": "jobs_app:add", "cron": "0 9 * * 0"}, "UTC")
    seven = parse_schedule("s7", {"job": "jobs_app:add", "cron": "0 9 * * 7"}, "UTC")
    weekdays = parse_schedule("w", {"job": "jobs_app:add", "cron": "0 9 * * 1-5"}, "UTC")
    monday_noon = utc(2026, 11, 23, 12)  # a Monday
    assert sunday.next_fire(None, monday_noon) == utc(2026, 11, 29, 9)
    assert seven.next_fire(None, monday_noon) == utc(2026, 11, 29, 9)
    assert weekdays.next_fire(None, monday_noon) == utc(2026, 11, 24, 9)
    assert weekdays.describe() == "every weekday at 09:00 (UTC)"


def test_cron_fields_dict() -> None:
    schedule = parse_schedule(
        "d", {"job": "jobs_app:add", "cron": {"day_of_week": "sun", "hour": 17, "minute": 3}}, "UTC"
    )
    assert schedule.next_fire(None, utc(2026, 11, 23)) == utc(2026, 11, 29, 17, 3)


def test_every_is_anchored_on_the_last_run() -> None:
    schedule = parse_schedule("e", {"job": "jobs_app:add", "every": "1h30m"}, "UTC")
    last = utc(2026, 1, 1, 10, 17, 42)
    # a restart at any later time keeps the rhythm of the last run
    assert schedule.next_fire(last, utc(2026, 1, 1, 11, 0)) == utc(2026, 1, 1, 11, 47, 42)
    assert schedule.next_fire(last, utc(2026, 1, 1, 23, 0)) == utc(2026, 1, 1, 11, 47, 42)
    assert schedule.describe() == "every 1 hour 30 minutes"
    for every, seconds in [(5, 5), ("5s", 5), ("1w", 604_800), ("2m", 120)]:
        parsed = parse_schedule("x", {"job": "jobs_app:add", "every": every}, "UTC")
        assert parsed.interval == timedelta(seconds=seconds)


def test_at_fires_once() -> None:
    schedule = parse_schedule(
        "once", {"job": "jobs_app:add", "at": "2026-12-24T18:00:00+01:00"}, "UTC"
    )
    first = schedule.next_fire(None, utc(2026, 12, 1))
    assert first == utc(2026, 12, 24, 17)
    assert schedule.next_fire(first, utc(2026, 12, 25)) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"job": "jobs_app:add"}, "exactly one of 'cron', 'every' or 'at' (got none)"),
        ({"job": "jobs_app:add", "cron": "* * * * *", "every": 5}, "(got cron, every)"),
        ({"job": "jobs_app:add", "cron": "61 * * * *"}, "bad cron '61 * * * *'"),
        ({"job": "jobs_app:add", "cron": "* * *"}, "expected 5 fields"),
        ({"job": "jobs_app:add", "every": "soon"}, "bad every 'soon'"),
        ({"job": "jobs_app:add", "every": 0}, "not a positive duration"),
        ({"job": "jobs_app:add", "at": "tomorrow"}, "not an ISO-8601"),
        ({"job": "jobs_app:add", "every": 5, "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"job": "jobs_app:add", "every": 5, "colour": "red"}, "unknown key(s) colour"),
        ({"job": "jobs_app:add", "every": 5, "jitter": -1}, "jitter must be"),
        ({"job": "jobs_app:add", "every": 5, "coalesce": "yes"}, "coalesce must be True or False"),
        ({"job": "jobs_app:add", "every": 5, "args": "x"}, "'args' must be a list"),
        ({"every": 5}, "'job' must be an import path"),
        ({"job": "nowhere:thing", "every": 5}, "cannot import 'nowhere:thing'"),
        ({"job": "jobs_app:no_such", "every": 5}, "has no attribute"),
    ],
)
def test_config_errors_name_the_entry(entry: dict[str, Any], message: str) -> None:
    app = Flask("sched")
    app.config.update(
        TESTING=True, JOBS_REDIS_URL="redis://127.0.0.1:6379/15", JOBS_SCHEDULE={"nightly": entry}
    )
    with pytest.raises(ConfigurationError) as info:
        Jobs(app)
    assert str(info.value).startswith("JOBS_SCHEDULE['nightly']")
    assert message in str(info.value)


def test_bad_schedule_setting_types() -> None:
    for key, value in [("JOBS_SCHEDULE", ["not", "a", "dict"]), ("JOBS_TIMEZONE", "Nowhere/City")]:
        app = Flask("sched")
        app.config.update(TESTING=True, JOBS_REDIS_URL="redis://127.0.0.1:6379/15", **{key: value})
        with pytest.raises(ConfigurationError, match=key):
            Jobs(app)


def weekly_digest() -> None:
    """A periodic job declared with the decorator below."""


def test_periodic_decorator_registers_and_validates() -> None:
    jobs = Jobs()
    wrapped = jobs.periodic(cron="3 17 * * sun", timezone="Europe/Berlin")(jobs.job(weekly_digest))
    assert wrapped.path == "test_schedules:weekly_digest"
    assert jobs._periodic[wrapped.path]["cron"] == "3 17 * * sun"
    with pytest.raises(ConfigurationError, match="unknown timezone"):
        jobs.periodic(every=5, timezone="Nope/Nope")(jobs_app.plain_function)
