"""Every JOBS_* key from the environment (``from_prefixed_env``), and ``flask jobs config``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from flask_jobs import ConfigurationError, Jobs, Middleware
from flask_jobs.config import DEFAULTS
from flask_jobs.redis.connection import redact_url


def dashboard_policy(action: str) -> bool:
    """An auth hook named by import path from the environment."""
    return action == "view"


#: A worker middleware object, named in JOBS_MIDDLEWARE by its import path.
AUDIT = Middleware()


def report_failure(context: Any) -> None:
    """A failure hook named by import path from the environment."""


#: For every key: the FLASK_JOBS_* value a shell would export, and the validated result
#: (the attribute of JobsConfig named after the key). Flask parses values as JSON when it can.
ENV_EXAMPLES: dict[str, tuple[str, Any]] = {
    "JOBS_REDIS_URL": ("redis://:s3cret@127.0.0.1:6379/11", "redis://:s3cret@127.0.0.1:6379/11"),
    "JOBS_QUEUES": ('["high", "default"]', ("high", "default")),
    "JOBS_DEFAULT_TIMEOUT": ("60", 60),
    "JOBS_RESULT_TTL": ("-1", -1),
    "JOBS_FAILURE_TTL": ("86400", 86400),
    "JOBS_SERIALIZER": ("pickle", "pickle"),
    "JOBS_EAGER": ("true", True),
    "JOBS_EAGER_PROPAGATE": ("false", False),
    "JOBS_EMBEDDED_REDIS": ("false", False),
    "JOBS_WORKER_CLASS": ("fork", "fork"),
    "JOBS_WORKER_CONCURRENCY": ("4", 4),
    "JOBS_WORKER_THREADS": ("2", 2),
    "JOBS_WORKER_ASYNC_LIMIT": ("50", 50),
    "JOBS_WORKER_METRICS_PORT": ("9191", 9191),
    "JOBS_MIDDLEWARE": ('["test_config_env:AUDIT"]', (AUDIT,)),
    "JOBS_LOG_LEVEL": ("DEBUG", "DEBUG"),
    "JOBS_LOG_FORMAT": ("json", "json"),
    "JOBS_ON_FAILURE": ('["test_config_env:report_failure"]', (report_failure,)),
    "JOBS_DASHBOARD_ENABLED": ("false", False),
    "JOBS_DASHBOARD_URL_PREFIX": ("/admin/jobs", "/admin/jobs"),
    "JOBS_DASHBOARD_AUTH": ("test_config_env:dashboard_policy", dashboard_policy),
    "JOBS_HISTORY_ENABLED": ("false", False),
    "JOBS_HISTORY_DATABASE_URI": (
        "postgresql+psycopg://jobs:pw@db/jobs",
        "postgresql+psycopg://jobs:pw@db/jobs",
    ),
    "JOBS_HISTORY_MAX_ARG_BYTES": ("8192", 8192),
    "JOBS_HISTORY_MAX_RESULT_BYTES": ("1024", 1024),
    "JOBS_REDACT_KEYS": ('["password", "iban"]', ("password", "iban")),
    "JOBS_HISTORY_STREAM_MAXLEN": ("50000", 50000),
    "JOBS_HISTORY_RETENTION": ("7d", timedelta(days=7)),
    "JOBS_SCHEDULE": (
        '{"beat": {"job": "jobs_app:add", "every": "10s", "args": [1, 2]}}',
        {"beat": {"job": "jobs_app:add", "every": "10s", "args": [1, 2]}},
    ),
    "JOBS_TIMEZONE": ("Europe/Berlin", "Europe/Berlin"),
    "JOBS_ENQUEUE_ON_COMMIT": ("false", False),
    # True needs a db (Jobs(app, db=db)), which this environment-only app has not.
    "JOBS_OUTBOX": ("false", False),
    "JOBS_OUTBOX_BATCH": ("100", 100),
    "JOBS_OUTBOX_POLL_MS": ("50", 50),
    "JOBS_ALERT_QUEUE_WAIT": ("5m", timedelta(minutes=5)),
    "JOBS_ALERT_FAILURE_RATE": ("0.25", 0.25),
    "JOBS_ALERT_MIN_RUNS": ("20", 20),
    "JOBS_ALERT_SCHEDULE_GRACE": ("null", None),
    "JOBS_ON_ALERT": ('["test_config_env:report_failure"]', (report_failure,)),
}


def env_app(monkeypatch: pytest.MonkeyPatch, **env: str) -> Flask:
    """An app configured only from FLASK_* variables, as a twelve-factor deploy does."""
    monkeypatch.setenv("FLASK_JOBS_REDIS_URL", "redis://127.0.0.1:6379/11")
    for key, value in env.items():
        monkeypatch.setenv(f"FLASK_{key}", value)
    app = Flask("env_test")
    app.config.from_prefixed_env()
    Jobs(app)
    return app


def test_every_key_has_an_environment_example() -> None:
    assert set(ENV_EXAMPLES) == set(DEFAULTS)


@pytest.mark.parametrize("key", sorted(ENV_EXAMPLES))
def test_each_key_can_be_set_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    raw, expected = ENV_EXAMPLES[key]
    app = env_app(monkeypatch, **{key: raw})
    config = app.extensions["jobs"].config
    assert getattr(config, key.removeprefix("JOBS_").lower()) == expected


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("JOBS_QUEUES", "high,default,low", ("high", "default", "low")),
        ("JOBS_REDACT_KEYS", "password,iban", ("password", "iban")),
        ("JOBS_ON_FAILURE", "test_config_env:report_failure", (report_failure,)),
        ("JOBS_HISTORY_RETENTION", "null", None),
        ("JOBS_HISTORY_RETENTION", "3600", timedelta(hours=1)),
        ("JOBS_DASHBOARD_AUTH", "null", None),
        ("JOBS_EAGER", "1", True),
        (
            "JOBS_REDIS_URL",
            "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster/2",
            "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster/2",
        ),
    ],
)
def test_other_spellings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, key: str, raw: str, expected: Any
) -> None:
    app = env_app(monkeypatch, **{key: raw})
    config = app.extensions["jobs"].config
    assert getattr(config, key.removeprefix("JOBS_").lower()) == expected


def test_one_schedule_field_from_a_nested_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Flask's "__" nesting: one field of one schedule entry, the rest from config.
    monkeypatch.setenv("FLASK_JOBS_SCHEDULE__beat__job", "jobs_app:add")
    monkeypatch.setenv("FLASK_JOBS_SCHEDULE__beat__cron", "30 2 * * *")
    app = env_app(monkeypatch)
    assert app.extensions["jobs"].config.schedule == {
        "beat": {"job": "jobs_app:add", "cron": "30 2 * * *"}
    }


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("JOBS_DASHBOARD_AUTH", "no_such_module:policy", "cannot import"),
        ("JOBS_ON_FAILURE", '["test_config_env:nothing_here"]', "has no attribute"),
        ("JOBS_ON_FAILURE", "42", "expected a list of functions"),
        ("JOBS_LOG_FORMAT", "xml", "expected one of 'text', 'json'"),
        ("JOBS_REDIS_URL", "redis+sentinel://10.0.0.1:26379", "must name the master's service"),
        ("JOBS_REDIS_URL", "redis+sentinel://h:x/m", "is not a number"),
    ],
)
def test_bad_environment_values_name_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str, raw: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        env_app(monkeypatch, **{key: raw})
    assert str(info.value).startswith(f"{key} = ")
    assert message in str(info.value)


def test_config_command_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    app = env_app(
        monkeypatch,
        JOBS_REDIS_URL="redis://admin:s3cret@127.0.0.1:6379/11",
        JOBS_HISTORY_DATABASE_URI="postgresql+psycopg://jobs:hunter2@db:5432/jobs",
        JOBS_DASHBOARD_AUTH="test_config_env:dashboard_policy",
        JOBS_ON_FAILURE="test_config_env:report_failure",
        JOBS_QUEUES="high,default",
    )
    app.config["JOBS_SCHEDULE"] = {
        "sync": {"job": "jobs_app:add", "every": "1h", "kwargs": {"api_key": "k-123"}}
    }
    result = app.test_cli_runner().invoke(args=["jobs", "config"])
    assert result.exit_code == 0, result.output
    out = result.output
    for secret in ("s3cret", "hunter2", "k-123"):
        assert secret not in out
    assert 'JOBS_REDIS_URL                = "redis://admin:***@127.0.0.1:6379/11"' in out
    assert "postgresql+psycopg://jobs:***@db:5432/jobs" in out
    assert "<function test_config_env:dashboard_policy>" in out
    assert "<function test_config_env:report_failure>" in out
    assert "# Redis in use (JOBS_REDIS_URL): redis://admin:***@127.0.0.1:6379/11" in out

    as_json = app.test_cli_runner().invoke(args=["jobs", "config", "--json"])
    data = json.loads(as_json.output)
    assert set(DEFAULTS) <= set(data)
    assert data["JOBS_QUEUES"] == "high,default"
    assert data["JOBS_SCHEDULE"]["sync"]["kwargs"] == {"api_key": "***"}
    assert data["JOBS_HISTORY_RETENTION"] == "30d"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:pw@h/1", "rediss://user:***@h/1"),
        (
            "redis+sentinel://:pw@a:26379,b:26379/mymaster/0?sentinel_password=spw",
            "redis+sentinel://:***@a:26379,b:26379/mymaster/0?sentinel_password=***",
        ),
        ("postgresql+psycopg://app@db/app", "postgresql+psycopg://app@db/app"),
    ],
)
def test_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
