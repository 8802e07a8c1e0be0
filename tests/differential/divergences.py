"""Differences between RQ's worker and ours that RQ's tools would see and that we do not
mean: bugs found by this suite, documented here until they are fixed (the scenarios they
show up in are strict xfails). Fixing one makes its scenarios pass, and the strict
xfail then fails until the entry is removed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from differential.compare import Divergence, KnownDivergence

__all__ = ["DIVERGENCES", "params"]

DIVERGENCES: list[Divergence] = []


def params(scenarios: list[Callable[..., None]], kinds: list[str]) -> list[Any]:
    """Every scenario under every kind, as pytest params; a strict xfail where a known
    divergence applies (failing with anything but `KnownDivergence` is a failure)."""
    found = []
    for scenario in scenarios:
        name = scenario.__name__.removeprefix("scenario_")
        for kind in kinds:
            reasons = [d.reason for d in DIVERGENCES if d.applies(kind, name)]
            marks = (
                [pytest.mark.xfail(strict=True, raises=KnownDivergence, reason=" | ".join(reasons))]
                if reasons
                else []
            )
            found.append(pytest.param(scenario, kind, id=f"{name}-{kind}", marks=marks))
    return found
