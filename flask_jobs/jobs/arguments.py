"""Checks that a job's arguments survive the JSON round trip before anything is enqueued."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import JobArgumentError

__all__ = ["MAX_ARGUMENT_BYTES", "check_json_arguments"]

_SCALARS = (str, int, float, bool, type(None))

#: The most JSON one job's arguments may take. Redis refuses a value past 512 MB only
#: after the client has sent it all, and a big job hash is rewritten on every state
#: change; anything this large belongs in a file or a table, with its id as the argument.
MAX_ARGUMENT_BYTES = 16 * 1024 * 1024


def check_json_arguments(func_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Raise `JobArgumentError` naming the first argument JSON cannot carry faithfully.

    Tuples are accepted (they arrive as lists); dict keys must be strings
    (JSON would turn ``{1: "a"}`` into ``{"1": "a"}``), floats must be finite.
    """
    size = [0]  # the arguments' JSON size so far (a close lower bound, counted on the way)
    for index, value in enumerate(args):
        problem = _find_problem(value, f"args[{index}]", size)
        if problem:
            _raise(func_name, f"positional argument {index}", *problem)
    for name, value in kwargs.items():
        problem = _find_problem(value, f"kwargs[{name!r}]", size)
        if problem:
            _raise(func_name, f"argument {name!r}", *problem)


def _raise(func_name: str, which: str, path: str, value: Any, why: str) -> None:
    if why == _TOO_LARGE:
        raise JobArgumentError(
            f"cannot enqueue {func_name}: {which} ({path}) makes the arguments too large: "
            f"more than {MAX_ARGUMENT_BYTES // (1024 * 1024)} MiB of JSON; store the data "
            "elsewhere (a file, a table) and pass its id or path"
        )
    kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
    raise JobArgumentError(
        f"cannot enqueue {func_name}: {which} ({path}) is a {kind}, {why}; pass plain JSON data "
        "(str, int, float, bool, None, list, dict with str keys) such as an id or an ISO date "
        "string, or set JOBS_SERIALIZER = 'pickle'"
    )


_TOO_LARGE = "too large"


def _find_problem(value: Any, path: str, size: list[int]) -> tuple[str, Any, str] | None:
    # An explicit stack keeps deeply nested data from hitting the recursion limit.
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > 500:
            return where, item, "nested too deeply for JSON"
        size[0] += len(item) + 3 if isinstance(item, str) else 2
        if size[0] > MAX_ARGUMENT_BYTES:
            return path, value, _TOO_LARGE
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
                size[0] += len(key) + 3 if isinstance(key, str) else 0
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
