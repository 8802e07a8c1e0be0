"""The package's shape: the public names and documented import paths, and module sizes."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import flask_jobs

ROOT = Path(__file__).resolve().parent.parent
#: Where users read import paths: the README, the guides, the example app.
DOCUMENTED = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "example_app").glob("*.py"))
#: What ``from flask_jobs import *`` gives; a name leaves it only with a major version.
PUBLIC = [
    "ConfigurationError",
    "FlaskJob",
    "HeldStatus",
    "JobArgumentError",
    "JobCall",
    "JobFunction",
    "JobSoftTimeout",
    "Jobs",
    "JobsConnectionError",
    "JobsError",
    "Middleware",
    "Producer",
    "Progress",
    "Retry",
    "Signature",
    "UnknownJobError",
    "WorkflowHandle",
    "__version__",
    "enqueue_many",
    "thread_safe",
]
FROM_IMPORT = re.compile(r"^\s*from (flask_jobs[\w.]*) import \(?([\w, ]+)\)?\s*$", re.MULTILINE)
#: ``flask_jobs.module.Name`` in prose or code (a module path followed by a capitalised name).
DOTTED = re.compile(r"`(flask_jobs(?:\.[a-z_]+)*\.[A-Za-z_]\w*)`")


def _documented_imports() -> list[tuple[str, str]]:
    found = []
    for path in [*DOCUMENTED, *EXAMPLES]:
        for module, names in FROM_IMPORT.findall(path.read_text()):
            found += [(module, name.strip()) for name in names.split(",") if name.strip()]
    return sorted(set(found))


def test_public_names_are_unchanged() -> None:
    assert sorted(flask_jobs.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(flask_jobs, name) is not None


@pytest.mark.parametrize(("module", "name"), _documented_imports())
def test_documented_imports_work(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name), f"from {module} import {name}"


def test_documented_dotted_names_resolve() -> None:
    names = {m for path in DOCUMENTED for m in DOTTED.findall(path.read_text())}
    assert "flask_jobs.reporting.FailureContext" in names  # the list is not empty
    for dotted in sorted(names):
        module, _, attr = dotted.rpartition(".")
        try:
            target = importlib.import_module(dotted)
        except ImportError:
            target = getattr(importlib.import_module(module), attr, None)
        assert target is not None, f"{dotted} is documented but does not exist"


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for folder in ("flask_jobs", "dashboard")
        for path in (ROOT / folder).rglob("*.py")
    }
    assert len(sizes) > 40
    assert {path: lines for path, lines in sizes.items() if lines > 400} == {}
