"""What a forked child process does first: forget the database connections of its parent."""

from __future__ import annotations

from flask import Flask

__all__ = ["dispose_db_pools"]


def dispose_db_pools(app: Flask) -> None:
    """Drop the SQLAlchemy connections inherited across a fork, without closing the parent's."""
    sqlalchemy = app.extensions.get("sqlalchemy")
    if sqlalchemy is None:
        return
    with app.app_context():
        for engine in sqlalchemy.engines.values():
            engine.dispose(close=False)
