"""The Flask app a job runs in when its worker did not push one (a plain ``rq worker``).

Our workers run each job in a fresh app context of the app they loaded. A plain
``rq worker --job-class flask_jobs.FlaskJob`` knows of no app: the job loads it
itself, once per worker process, from ``FLASK_JOBS_APP`` or ``FLASK_APP`` (the
same import path ``flask --app`` takes), as Flask's own Celery example does in its
task class.
"""

from __future__ import annotations

import os
import threading

from flask import Flask
from flask.cli import NoAppException, ScriptInfo

from ..errors import ConfigurationError

__all__ = ["APP_ENV", "job_app"]

#: The environment variable that names the app (``module:create_app()`` or ``module``).
APP_ENV = "FLASK_JOBS_APP"

_loaded: dict[str, Flask] = {}
_lock = threading.Lock()


def job_app() -> Flask:
    """This process's Flask app, loaded on first use from ``FLASK_JOBS_APP`` or ``FLASK_APP``."""
    path = os.environ.get(APP_ENV) or os.environ.get("FLASK_APP") or ""
    app = _loaded.get(path)
    if app is not None:
        return app
    with _lock:
        if path not in _loaded:
            try:
                _loaded[path] = ScriptInfo(app_import_path=path or None).load_app()
            except NoAppException as exc:
                raise ConfigurationError(
                    f"this job needs its Flask app and cannot find it ({exc}): set FLASK_APP "
                    "(or FLASK_JOBS_APP) for the worker, e.g. "
                    "FLASK_APP=myapp:create_app rq worker --job-class flask_jobs.FlaskJob"
                ) from None
        return _loaded[path]
