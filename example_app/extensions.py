"""The extension objects, created unbound so that tasks and models can import them."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy

from flask_jobs import Jobs

db = SQLAlchemy()
jobs = Jobs(db=db)
