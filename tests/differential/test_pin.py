"""The RQ release the differential suite was written against."""

from __future__ import annotations

import rq

from differential import RQ_VERSION


def test_installed_rq_is_the_one_the_suite_was_written_for() -> None:
    assert rq.__version__ == RQ_VERSION, (
        f"rq {rq.__version__} is installed, but the differential suite (tests/differential/) "
        f"was compared against rq {RQ_VERSION}. Run it under the new release, read every "
        "difference it reports (a real change in RQ's data means our workers must follow it; "
        "an intended one goes into differential/allowed.py with its reason), then set "
        f"RQ_VERSION in tests/differential/__init__.py to {rq.__version__!r}."
    )
