"""Periodic job declarations (``JOBS_SCHEDULE``, ``@jobs.periodic``): validation and fire times.

Fire times come from APScheduler's triggers. Two rules of our own, because
cron users expect them: in a crontab string, day-of-week numbers are cron's
(0 and 7 are Sunday; APScheduler counts from Monday), and a local time that
happens twice when clocks go back fires once, at its first occurrence (the
local wall clock of successive runs only moves forward). A
local time that does not exist when clocks go forward fires once, an hour
later by the wall clock (APScheduler's rule): "30 2 * * *" in New York runs
at 03:30 EDT on the day DST starts.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..durations import parse_duration
from ..errors import ConfigurationError
from ..keys import QUEUE_NAME
from ..keys import SCHEDULE_NAME as NAME

if TYPE_CHECKING:
    from ..state import JobsState

__all__ = ["Schedule", "app_schedules", "parse_schedule"]

TRIGGERS = ("cron", "every", "at")
KEYS = {
    "job",
    "args",
    "kwargs",
    "queue",
    *TRIGGERS,
    "timezone",
    "jitter",
    "enabled",
    "misfire_grace",
    "coalesce",
    "unique",
    "start",
    "end",
}
_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAY_WORDS = {
    "sun": "Sunday",
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
}


@dataclass
class Schedule:
    """One periodic job: what to enqueue, and when."""

    name: str
    job: str
    trigger: Any
    kind: str
    spec: Any
    tz: tzinfo
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    jitter: float = 0.0
    enabled: bool = True
    misfire_grace: float = 60.0
    coalesce: bool = True
    #: Skip a fire while the previous run is queued or running (counted as "skipped").
    unique: bool = False
    interval: timedelta | None = None

    def next_fire(self, after: datetime | None, now: datetime) -> datetime | None:
        """The first fire time after ``after`` (None: the first one from ``now`` on)."""
        if self.kind == "every" and after is not None:
            assert self.interval is not None
            candidate: datetime | None = after + self.interval  # anchored on the last run
            end = getattr(self.trigger, "end_date", None)
            if candidate is not None and end is not None and candidate > end:
                return None
            return candidate
        if self.kind == "at":
            run_at: datetime = self.trigger.run_date
            return run_at if after is None or run_at > after else None

        # Always from a moving "now" in whole UTC seconds, never from APScheduler's
        # previous-fire rule: both can step back around DST changes.
        def step(moment: datetime) -> datetime:
            return moment.astimezone(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)

        start = now if after is None else step(after)
        for _ in range(10_000):
            fire: datetime | None = self.trigger.get_next_fire_time(None, start)
            if fire is None:
                return None
            if after is not None and _wall_clock(fire, self.tz) <= _wall_clock(after, self.tz):
                start = step(fire)  # the clocks went back: this local time has already run
                continue
            return fire
        return None

    def describe(self) -> str:
        """The trigger in words: "every Sunday at 17:03 (Europe/Berlin)"."""
        zone = getattr(self.tz, "key", None) or str(self.tz)
        if self.kind == "every":
            assert self.interval is not None
            return f"every {_words(self.interval)}"
        if self.kind == "at":
            return f"once at {self.trigger.run_date.strftime('%Y-%m-%d %H:%M')} ({zone})"
        fields = {f.name: str(f) for f in self.trigger.fields}
        minute, hour = fields["minute"], fields["hour"]
        dom, month, dow = fields["day"], fields["month"], fields["day_of_week"]
        if minute.isdigit() and hour.isdigit() and dom == "*" and month == "*":
            at = f"at {int(hour):02d}:{int(minute):02d} ({zone})"
            if dow == "*":
                return f"every day {at}"
            days = [_DAY_WORDS.get(d) for d in dow.split(",")]
            if all(days):
                return f"every {', '.join(d for d in days if d)} {at}"
            if dow == "mon-fri":
                return f"every weekday {at}"
        if isinstance(self.spec, str):
            return f"cron '{self.spec}' ({zone})"
        return f"cron {dict(self.spec)} ({zone})"


def _wall_clock(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _words(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("week", 604_800), ("day", 86_400), ("hour", 3_600), ("minute", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count > 1 else ''}")
    if seconds or not parts:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return " ".join(parts)


def _crontab_with_cron_weekdays(expr: str) -> str:
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")

    def name(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if number > 7:
            raise ValueError(f"day of week {number} is out of range 0-7")
        return _DOW_NAMES[number]

    # Only plain numbers: "*/2" steps are left to APScheduler as written.
    fields[4] = re.sub(r"(?<![/\d])\d+", name, fields[4])
    return " ".join(fields)


def _timezone(name: str, value: Any) -> tzinfo:
    if value in (None, "UTC", "utc"):
        return timezone.utc
    if isinstance(value, tzinfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"JOBS_SCHEDULE[{name!r}]: unknown timezone {value!r}; use an IANA name such as "
            "'Europe/Berlin' or 'UTC'"
        ) from None


def _datetime(name: str, key: str, value: Any, tz: tzinfo) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigurationError(
                f"JOBS_SCHEDULE[{name!r}]: {key}={value!r} is not an ISO-8601 date and time, "
                "e.g. '2026-12-24T18:00:00+01:00'"
            ) from None
    else:
        raise ConfigurationError(f"JOBS_SCHEDULE[{name!r}]: {key} must be an ISO-8601 string")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def parse_schedule(name: str, entry: Mapping[str, Any], default_tz: str) -> Schedule:
    """Validate one ``JOBS_SCHEDULE`` entry; a `ConfigurationError` names the entry if wrong."""
    where = f"JOBS_SCHEDULE[{name!r}]"
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigurationError(f"{where}: a schedule name is 1-100 letters, digits, '_.:-'")
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where}: expected a dict like {{'job': ..., 'cron': ...}}")
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KEYS))}"
        )
    triggers = [t for t in TRIGGERS if t in entry]
    if len(triggers) != 1:
        raise ConfigurationError(
            f"{where}: give exactly one of 'cron', 'every' or 'at' (got "
            f"{', '.join(triggers) or 'none'})"
        )
    job = entry.get("job")
    path = getattr(job, "path", job)
    if not isinstance(path, str) or not path:
        raise ConfigurationError(f"{where}: 'job' must be an import path like 'app.tasks:digest'")
    tz = _timezone(name, entry.get("timezone", default_tz))
    kind = triggers[0]
    spec = entry[kind]
    start = _datetime(name, "start", entry["start"], tz) if entry.get("start") else None
    end = _datetime(name, "end", entry["end"], tz) if entry.get("end") else None
    interval = None
    # Here, not at the top: an app without schedules (a worker's, most often) never loads
    # APScheduler (and tzlocal, which it imports).
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    try:
        if kind == "cron":
            if isinstance(spec, str):
                crontab = _crontab_with_cron_weekdays(spec)
                trigger: Any = CronTrigger.from_crontab(crontab, timezone=tz)
                trigger.start_date, trigger.end_date = start or trigger.start_date, end
            elif isinstance(spec, Mapping):
                trigger = CronTrigger(**dict(spec), timezone=tz, start_date=start, end_date=end)
            else:
                raise ValueError("use a crontab string or a dict of APScheduler cron fields")
        elif kind == "every":
            interval = parse_duration(spec)
            trigger = IntervalTrigger(
                seconds=interval.total_seconds(), timezone=tz, start_date=start, end_date=end
            )
        else:
            trigger = DateTrigger(run_date=_datetime(name, "at", spec, tz), timezone=tz)
    except ConfigurationError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{where}: bad {kind} {spec!r}: {exc}") from None
    args = entry.get("args", [])
    kwargs = entry.get("kwargs", {})
    if not isinstance(args, list | tuple) or not isinstance(kwargs, Mapping):
        raise ConfigurationError(f"{where}: 'args' must be a list and 'kwargs' a dict")
    options: dict[str, Any] = {}
    for key, kind_of in (("jitter", float), ("misfire_grace", float)):
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(f"{where}: {key} must be a number of seconds >= 0")
            options[key] = kind_of(value)
    for key in ("enabled", "coalesce", "unique"):
        if key in entry:
            if not isinstance(entry[key], bool):
                raise ConfigurationError(f"{where}: {key} must be True or False")
            options[key] = entry[key]
    queue = entry.get("queue")
    if queue is not None and (not isinstance(queue, str) or not QUEUE_NAME.match(queue)):
        raise ConfigurationError(f"{where}: queue {queue!r} is not a valid queue name")
    return Schedule(
        name=name,
        job=path,
        trigger=trigger,
        kind=kind,
        spec=spec,
        tz=tz,
        args=list(args),
        kwargs=dict(kwargs),
        queue=queue,
        interval=interval,
        **options,
    )


@dataclass
class _Parsed:
    """One app's schedules: ``JOBS_SCHEDULE``'s, parsed once, and all of them merged."""

    config: dict[str, Schedule]
    merged: dict[str, Schedule]
    periodic_seen: int = -1


_parsed: weakref.WeakKeyDictionary[JobsState, _Parsed] = weakref.WeakKeyDictionary()


def app_schedules(state: JobsState) -> dict[str, Schedule]:
    """Every schedule of an app: ``JOBS_SCHEDULE`` and ``@jobs.periodic`` ones (config first).

    Each is parsed once: an ``every`` schedule counts from the moment it was parsed
    (``init_app`` parses the app's config), so parsing again would move its runs.
    """
    parsed = _parsed.get(state)
    tz = state.config.timezone
    if parsed is None:
        config = {
            name: parse_schedule(name, entry, tz) for name, entry in state.config.schedule.items()
        }
        parsed = _parsed[state] = _Parsed(config=config, merged=dict(config))
    declared = state.jobs._periodic
    if parsed.periodic_seen != len(declared):
        merged = dict(parsed.config)
        for name, entry in declared.items():
            known = parsed.merged.get(name)
            merged.setdefault(name, known or parse_schedule(name, entry, tz))
        parsed.merged, parsed.periodic_seen = merged, len(declared)
    return parsed.merged
