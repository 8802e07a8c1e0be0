"""Import a function by its path, ``"package.module:name"``, as config and the CLI name them."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import UnknownJobError

__all__ = ["import_path"]


def import_path(path: str) -> Any:
    """Import ``"package.module:name"`` (or ``"package.module.name"``), else `UnknownJobError`."""
    if not isinstance(path, str) or not path.strip():
        raise UnknownJobError(f"{path!r} is not an import path like 'package.module:function'")
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UnknownJobError(f"{path!r} is not an import path like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownJobError(f"cannot import {path!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UnknownJobError(
                f"cannot import {path!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    return target
