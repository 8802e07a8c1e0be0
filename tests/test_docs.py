"""The documentation cannot drift from the code: every setting and public name is in it."""

from __future__ import annotations

import re
from pathlib import Path

import flask_jobs
from flask_jobs.config import DEFAULTS
from flask_jobs.config_docs import DESCRIPTIONS, reference

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
#: Environment variables of the test suite, not settings of an app.
TEST_ENVIRONMENT = ("JOBS_TEST_", "JOBS_RELIABILITY_")
AUTODOC = re.compile(r"^\.\. auto(?:class|function|exception):: flask_jobs\.(\w+)$", re.MULTILINE)


def test_every_setting_is_described_and_says_what_it_allows() -> None:
    assert set(DESCRIPTIONS) == set(DEFAULTS), "describe new settings in flask_jobs/config_docs.py"
    rows = reference()
    assert [row.key for row in rows] == list(DEFAULTS)
    for row in rows:
        assert row.allowed.startswith("expected"), row
        assert row.description.endswith("."), row.key


def test_every_setting_the_docs_name_exists() -> None:
    named = {
        key
        for page in PAGES
        for key in re.findall(r"\bJOBS_[A-Z0-9_]*[A-Z0-9]\b", page.read_text())
    }
    # prefixes of a family ("JOBS_HISTORY_*") are fine; a key that is not one is stale
    unknown = {
        k
        for k in named
        if k not in DEFAULTS
        and not k.startswith(TEST_ENVIRONMENT)
        and not any(d.startswith(k + "_") for d in DEFAULTS)
    }
    assert not unknown, f"the docs name settings that do not exist: {sorted(unknown)}"


def test_the_api_reference_documents_every_public_name() -> None:
    documented = set(AUTODOC.findall((DOCS / "api.md").read_text()))
    public = set(flask_jobs.__all__) - {"__version__"}
    assert documented == public


def test_every_public_name_has_a_docstring_with_a_summary_line() -> None:
    for name in set(flask_jobs.__all__) - {"__version__"}:
        doc = getattr(flask_jobs, name).__doc__
        assert doc and doc.strip(), name
        assert doc.strip().splitlines()[0].rstrip().endswith("."), name
