"""Every JOBS_* key is validated at init_app with an error that names it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_jobs import ConfigurationError, Jobs
from flask_jobs.config import DEFAULTS


def make_app(**config: Any) -> Flask:
    app = Flask("config_test")
    app.config.update(TESTING=True, JOBS_REDIS_URL="redis://127.0.0.1:6379/15")
    app.config.update(config)
    return app


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("JOBS_REDIS_URL", "http://localhost:6379"),
        ("JOBS_REDIS_URL", 6379),
        ("JOBS_QUEUES", []),
        ("JOBS_QUEUES", "default"[:0]),
        ("JOBS_QUEUES", ["ok", "has space"]),
        ("JOBS_QUEUES", ["a", "a"]),
        ("JOBS_QUEUES", 5),
        ("JOBS_DEFAULT_TIMEOUT", 0),
        ("JOBS_DEFAULT_TIMEOUT", "ten"),
        ("JOBS_DEFAULT_TIMEOUT", 1.5),
        ("JOBS_RESULT_TTL", -5),
        ("JOBS_FAILURE_TTL", True),
        ("JOBS_SERIALIZER", "yaml"),
        ("JOBS_EAGER", "maybe"),
        ("JOBS_EAGER_PROPAGATE", 2),
        ("JOBS_EMBEDDED_REDIS", None),
        ("JOBS_WORKER_CLASS", "thread"),
        ("JOBS_WORKER_CONCURRENCY", 0),
        ("JOBS_LOG_LEVEL", "LOUD"),
        ("JOBS_DASHBOARD_ENABLED", "sometimes"),
        ("JOBS_DASHBOARD_URL_PREFIX", "jobs"),
        ("JOBS_DASHBOARD_AUTH", "admin"),
        ("JOBS_ENQUEUE_ON_COMMIT", "later"),
        ("JOBS_OUTBOX", 2),
        ("JOBS_OUTBOX_BATCH", 0),
        ("JOBS_OUTBOX_POLL_MS", "fast"),
    ],
)
def test_bad_value_is_a_configuration_error_naming_key_and_value(key: str, value: Any) -> None:
    app = make_app(**{key: value})
    with pytest.raises(ConfigurationError) as info:
        Jobs(app)
    message = str(info.value)
    assert message.startswith(f"{key} = {value!r} is not valid: ")
    assert "jobs" not in app.extensions


def test_defaults_are_set_on_app_config() -> None:
    app = make_app()
    Jobs(app)
    for key in DEFAULTS:
        assert key in app.config
    assert app.config["JOBS_QUEUES"] == ["default"]
    assert app.config["JOBS_SERIALIZER"] == "json"


def test_values_from_the_environment_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_JOBS_QUEUES", "high,default,low")
    monkeypatch.setenv("FLASK_JOBS_DEFAULT_TIMEOUT", "60")
    monkeypatch.setenv("FLASK_JOBS_EAGER", "true")
    app = make_app()
    app.config.from_prefixed_env()
    Jobs(app)
    config = app.extensions["jobs"].config
    assert config.queues == ("high", "default", "low")
    assert config.default_timeout == 60
    assert config.eager is True


def test_missing_redis_url_outside_debug_is_an_error() -> None:
    app = Flask("prod")
    with pytest.raises(ConfigurationError, match="JOBS_REDIS_URL is not set"):
        Jobs(app)


def test_missing_redis_url_in_debug_uses_embedded(tmp_path: Any) -> None:
    app = Flask("dev", instance_path=str(tmp_path))
    app.debug = True
    Jobs(app)
    state = app.extensions["jobs"]
    assert state.embedded is not None
    assert state.redis_url.startswith("unix://")


def test_init_app_twice_is_an_error() -> None:
    app = make_app()
    Jobs(app)
    with pytest.raises(RuntimeError, match="already been registered"):
        Jobs(app)


def test_bad_decorator_options() -> None:
    jobs = Jobs()
    with pytest.raises(ValueError, match="not a valid queue name"):
        jobs.job(queue="no spaces")
    with pytest.raises(TypeError, match=r"flask_jobs\.Retry"):
        jobs.job(retry=3)  # type: ignore[arg-type]

    def outer() -> None:
        def inner() -> None: ...

        jobs.job(inner)

    with pytest.raises(TypeError, match="module level"):
        outer()
