"""The validators of the ``JOBS_*`` settings: each returns the value to use, or raises a
`ConfigurationError` that names the key, the value and what is allowed."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .durations import parse_duration
from .errors import ConfigurationError, UnknownJobError
from .importing import import_path
from .keys import QUEUE_NAME
from .redis.connection import parse_sentinel_url

__all__ = ["RULES"]

WORKER_CLASSES = ("default", "fork", "rq")
#: Worker classes of earlier releases, and what replaced them.
RETIRED_WORKER_CLASSES = {"lean": "default", "simple": "default", "spawn": "fork"}
SERIALIZERS = ("json", "pickle")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")


def _bad(key: str, value: Any, allowed: str) -> ConfigurationError:
    return ConfigurationError(f"{key} = {value!r} is not valid: {allowed}.")


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    ):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _bad(key, value, "expected True or False")


def _int(key: str, value: Any, *, minimum: int, allow_forever: bool = False) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, value, _int_rule(minimum, allow_forever))
    if value < minimum and not (allow_forever and value == -1):
        raise _bad(key, value, _int_rule(minimum, allow_forever))
    return value


def _int_rule(minimum: int, allow_forever: bool) -> str:
    rule = f"expected a whole number >= {minimum}"
    return rule + " (or -1 for no limit)" if allow_forever else rule


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    raise _bad(key, value, "expected one of " + ", ".join(repr(c) for c in choices))


def _queues(key: str, given: Any) -> tuple[str, ...]:
    value = given
    if isinstance(value, str):  # from the environment: "high,default,low"
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise _bad(key, given, "expected a non-empty list of queue names, e.g. ['high', 'default']")
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not QUEUE_NAME.match(name):
            raise _bad(
                key,
                given,
                f"queue name {name!r} must be 1-100 letters, digits, '_', '-', '.', ':'",
            )
        if name in names:
            raise _bad(key, given, f"queue {name!r} is listed twice")
        names.append(name)
    return tuple(names)


def _redis_url(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(key, value, "expected a URL such as 'redis://localhost:6379/0'")
    scheme = urlsplit(value).scheme
    if scheme not in REDIS_SCHEMES:
        raise _bad(
            key,
            value,
            "expected a redis://, rediss://, unix:// or redis+sentinel:// URL such as "
            "'redis://localhost:6379/0'",
        )
    if scheme.endswith("+sentinel"):
        try:
            parse_sentinel_url(value)
        except ValueError as exc:
            raise _bad(key, value, str(exc)) from None
    return value


def _url_prefix(key: str, value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"(/[A-Za-z0-9_.~-]+)+/?", value):
        return value.rstrip("/")
    raise _bad(key, value, "expected a URL path such as '/jobs' or '/admin/jobs'")


def _imported(key: str, value: Any, allowed: str) -> Callable[..., Any]:
    """``value`` itself when callable, else the function at import path ``value``."""
    if callable(value):
        return value  # type: ignore[no-any-return]
    # From the environment a function can only be named: "package.module:function".
    if isinstance(value, str) and re.fullmatch(r"[\w.]+[:.][\w.]+", value.strip()):
        try:
            target = import_path(value.strip())
        except UnknownJobError as exc:
            raise _bad(key, value, f"{allowed} ({exc})") from None
        if callable(target):
            return target  # type: ignore[no-any-return]
    raise _bad(key, value, allowed)


def _callable_or_none(key: str, value: Any) -> Callable[..., Any] | None:
    if value is None or value == "":
        return None
    return _imported(
        key,
        value,
        "expected a function of the action ('view', 'requeue'...) returning True, "
        "or its import path 'package.module:function'",
    )


def _callables(key: str, value: Any) -> tuple[Callable[..., Any], ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):  # from the environment: "app.errors:report,app.x:y"
        value = [part.strip() for part in value.split(",") if part.strip()]
    if callable(value):
        value = [value]
    allowed = "expected a list of functions of (context) or their import paths"
    if not isinstance(value, list | tuple):
        raise _bad(key, value, allowed)
    return tuple(_imported(key, item, allowed) for item in value)


def _worker_class(key: str, value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in RETIRED_WORKER_CLASSES:
        instead = RETIRED_WORKER_CLASSES[value.strip().lower()]
        raise _bad(
            key, value, f"that worker class was replaced by our worker loop: use {instead!r}"
        )
    return _choice(key, value, WORKER_CLASSES)


def _middleware(key: str, value: Any) -> tuple[Any, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):  # from the environment: "app.mw:Timing,app.mw:Audit"
        value = [part.strip() for part in value.split(",") if part.strip()]
    allowed = "expected a list of worker middleware (objects, classes or import paths)"
    if not isinstance(value, list | tuple):
        raise _bad(key, value, allowed)
    found = []
    for item in value:
        if isinstance(item, str):
            if not re.fullmatch(r"[\w.]+[:.][\w.]+", item.strip()):
                raise _bad(key, item, allowed)
            try:
                item = import_path(item.strip())
            except UnknownJobError as exc:
                raise _bad(key, item, f"{allowed} ({exc})") from None
        found.append(item() if isinstance(item, type) else item)
    return tuple(found)


def _port_or_none(key: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _bad(key, value, "expected a port number from 1 to 65535, or None (off)")
    return value


def _database_uri(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and "://" in value:
        return value
    raise _bad(key, value, "expected a SQLAlchemy URL such as 'sqlite:///history.db'")


def _keys(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise _bad(key, value, "expected a list of key names, e.g. ['password', 'token']")


def _retention(key: str, value: Any) -> timedelta | None:
    if value is None or value == "":
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise _bad(key, value, "expected a duration such as '30d' or '12h', or None") from None


def _fraction_or_none(key: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        fraction = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        fraction = None
    if fraction is None or not 0 < fraction <= 1:
        raise _bad(key, value, "expected a failure rate above 0 and at most 1, e.g. 0.2, or None")
    return fraction


def _schedule(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise _bad(key, value, "expected a dict of name -> {'job': ..., 'cron'|'every'|'at': ...}")


def _timezone_name(key: str, value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if isinstance(value, str) and value:
        try:
            ZoneInfo(value)
            return value
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise _bad(key, value, "expected an IANA timezone name such as 'UTC' or 'Europe/Berlin'")


#: The validator of each key: returns the value to use, or raises `ConfigurationError` saying
#: what is allowed (the configuration reference quotes it).
RULES: dict[str, Callable[[str, Any], Any]] = {
    "JOBS_REDIS_URL": _redis_url,
    "JOBS_QUEUES": _queues,
    "JOBS_DEFAULT_TIMEOUT": lambda k, v: _int(k, v, minimum=1, allow_forever=True),
    "JOBS_RESULT_TTL": lambda k, v: _int(k, v, minimum=0, allow_forever=True),
    "JOBS_FAILURE_TTL": lambda k, v: _int(k, v, minimum=1, allow_forever=True),
    "JOBS_SERIALIZER": lambda k, v: _choice(k, v, SERIALIZERS),
    "JOBS_EAGER": _bool,
    "JOBS_EAGER_PROPAGATE": _bool,
    "JOBS_EMBEDDED_REDIS": _bool,
    "JOBS_WORKER_CLASS": lambda k, v: _worker_class(k, v),
    "JOBS_WORKER_CONCURRENCY": lambda k, v: _int(k, v, minimum=1),
    "JOBS_WORKER_THREADS": lambda k, v: _int(k, v, minimum=1),
    "JOBS_WORKER_ASYNC_LIMIT": lambda k, v: _int(k, v, minimum=1),
    "JOBS_WORKER_METRICS_PORT": _port_or_none,
    "JOBS_MIDDLEWARE": lambda k, v: _middleware(k, v),
    "JOBS_LOG_LEVEL": lambda k, v: _choice(k, v, LOG_LEVELS),
    "JOBS_LOG_FORMAT": lambda k, v: _choice(k, v, LOG_FORMATS),
    "JOBS_ON_FAILURE": _callables,
    "JOBS_DASHBOARD_ENABLED": _bool,
    "JOBS_DASHBOARD_URL_PREFIX": lambda k, v: _url_prefix(k, v),
    "JOBS_DASHBOARD_AUTH": lambda k, v: _callable_or_none(k, v),
    "JOBS_HISTORY_ENABLED": _bool,
    "JOBS_HISTORY_DATABASE_URI": _database_uri,
    "JOBS_HISTORY_MAX_ARG_BYTES": lambda k, v: _int(k, v, minimum=64),
    "JOBS_HISTORY_MAX_RESULT_BYTES": lambda k, v: _int(k, v, minimum=64),
    "JOBS_REDACT_KEYS": _keys,
    "JOBS_HISTORY_STREAM_MAXLEN": lambda k, v: _int(k, v, minimum=1000),
    "JOBS_HISTORY_RETENTION": _retention,
    "JOBS_SCHEDULE": _schedule,
    "JOBS_TIMEZONE": _timezone_name,
    "JOBS_ENQUEUE_ON_COMMIT": _bool,
    "JOBS_OUTBOX": _bool,
    "JOBS_OUTBOX_BATCH": lambda k, v: _int(k, v, minimum=1),
    "JOBS_OUTBOX_POLL_MS": lambda k, v: _int(k, v, minimum=1),
    "JOBS_ALERT_QUEUE_WAIT": _retention,
    "JOBS_ALERT_FAILURE_RATE": _fraction_or_none,
    "JOBS_ALERT_MIN_RUNS": lambda k, v: _int(k, v, minimum=1),
    "JOBS_ALERT_SCHEDULE_GRACE": _retention,
    "JOBS_ON_ALERT": _callables,
}
