"""Dashboard pages (being built)."""

from __future__ import annotations

from flask import Blueprint

__all__ = ["register"]


def register(bp: Blueprint) -> None:
    """Add this module's routes to the dashboard blueprint."""
