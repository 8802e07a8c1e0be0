"""Checks that a job's arguments survive the JSON round trip before anything is enqueued."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import JobArgumentError

__all__ = ["check_json_arguments"]

_SCALARS = (str, int, float, bool, type(None))


def check_json_arguments(func_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Raise `JobArgumentError` naming the first argument JSON cannot carry faithfully.

    Tuples are accepted (they arrive as lists); dict keys must be strings
    (JSON would turn ``{1: "a"}`` into ``{"1": "a"}``), floats must be finite.
    """
    for index, value in enumerate(args):
        problem = _find_problem(value, f"args[{index}]")
        if problem:
            _raise(func_name, f"positional argument {index}", *problem)
    for name, value in kwargs.items():
        problem = _find_problem(value, f"kwargs[{name!r}]")
        if problem:
            _raise(func_name, f"argument {name!r}", *problem)


def _raise(func_name: str, which: str, path: str, value: Any, why: str) -> None:
    kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
    raise JobArgumentError(
        f"cannot enqueue {func_name}: {which} ({path}) is a {kind}, {why}; pass plain JSON data "
        "(str, int, float, bool, None, list, dict with str keys) such as an id or an ISO date "
        "string, or set JOBS_SERIALIZER = 'pickle'"
    )


def _find_problem(value: Any, path: str) -> tuple[str, Any, str] | None:
    # An explicit stack keeps deeply nested data from hitting the recursion limit.
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > 500:
            return where, item, "nested too deeply for JSON"
        if isinstance(item, bool) or item is None or isinstance(item, str | int):
            if type(item) not in _SCALARS:  # an int or str subclass (an IntEnum, say)
                return where, item, "a subclass that JSON would turn into a plain value"
            continue
        if isinstance(item, float):
            if type(item) is not float:
                return where, item, "a subclass that JSON would turn into a plain value"
            if not math.isfinite(item):
                return where, item, "not a finite number, which JSON cannot carry"
            continue
        if type(item) in (list, tuple):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
            continue
        if type(item) is dict:
            for key, child in item.items():
                if not isinstance(key, str):
                    return (
                        f"{where} key {key!r}",
                        key,
                        "a dict key that is not a string (JSON keys are strings)",
                    )
                stack.append((child, f"{where}[{key!r}]", depth + 1))
            continue
        return where, item, "which JSON cannot carry"
    return None
