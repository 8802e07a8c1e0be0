"""Helpers of the example app's tests: the app they build, login, the reports table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from example_app import create_app, db
from example_app.models import Report

__all__ = ["REDIS_URL", "login", "make_app", "reports"]

REDIS_URL = os.environ.get("JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def make_app(tmp_path: Path, **config: Any) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "JOBS_REDIS_URL": REDIS_URL,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'ex.db'}",
            "EXAMPLE_REPORT_STEP_SECONDS": 0,
            "EXAMPLE_MAILBOX": str(tmp_path / "mailbox"),
            **config,
        },
        instance_path=str(tmp_path / "instance"),
    )


def login(client: FlaskClient, name: str, password: str) -> Any:
    return client.post("/login", data={"name": name, "password": password, "next": "/jobs/"})


def reports(app: Flask) -> list[Report]:
    with app.app_context():
        found = list(db.session.scalars(select(Report).order_by(Report.id)))
        db.session.expunge_all()
        return found
