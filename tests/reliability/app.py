"""The app a reliability scenario's subprocesses load: ``jobs_app`` plus config from the test."""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask

import jobs_app
from reliability import tasks  # noqa: F401  (the scenarios' jobs, registered on jobs_app.jobs)

#: JSON config the test passes to its subprocesses, merged over jobs_app's.
CONFIG_ENV = "JOBS_REL_CONFIG"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    merged = json.loads(os.environ.get(CONFIG_ENV) or "{}")
    merged.update(config or {})
    return jobs_app.create_app(merged)
