"""The wheel holds one import package, and the job wrapper is typed on the wrapped function."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("flask_jobs-*.whl")
    return built


def test_wheel_holds_only_the_flask_jobs_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"flask_jobs"}
    for required in [
        "flask_jobs/__init__.py",
        "flask_jobs/py.typed",
        "flask_jobs/dashboard/__init__.py",
        "flask_jobs/dashboard/templates/flask_jobs/base.html",
        "flask_jobs/dashboard/templates/flask_jobs/overview.html",
        "flask_jobs/dashboard/templates/flask_jobs/job_detail.html",
        "flask_jobs/dashboard/static/htmx.min.js",
        "flask_jobs/dashboard/static/flask_jobs.css",
    ]:
        assert required in names
    assert not any(
        name.startswith(("dashboard/", "templates/", "static/", "tests/")) for name in names
    )


def test_installed_wheel_imports_and_finds_its_templates(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    probe = (
        "import flask_jobs, flask_jobs.dashboard as d\n"
        "from importlib import resources\n"
        f"assert flask_jobs.__file__.startswith({str(target)!r}), flask_jobs.__file__\n"
        "t = resources.files('flask_jobs.dashboard.templates') / 'flask_jobs' / 'base.html'\n"
        "assert t.is_file()\n"
        "bp = d.create_blueprint()\n"
        "assert bp.jinja_loader.get_source(None, 'flask_jobs/overview.html')\n"
    )
    # run outside the repository, so the local flask_jobs/ folder cannot shadow the wheel
    subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        timeout=60,
    )


def test_mypy_checks_enqueue_against_the_signature(tmp_path: Path) -> None:
    sample = tmp_path / "typed_usage.py"
    sample.write_text(
        "from datetime import timedelta\n"
        "from flask_jobs import Jobs\n"
        "jobs = Jobs()\n"
        "@jobs.job(queue='high')\n"
        "def send(user_id: int, *, urgent: bool = False) -> str:\n"
        "    return str(user_id)\n"
        "ok: str = send(1)\n"
        "send.enqueue(1, urgent=True)\n"
        "send.options(queue='low').enqueue_in(timedelta(seconds=5), 2)\n"
        "send.enqueue('not an int')\n"
        "send.enqueue(1, loud=True)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-incremental",
            str(sample),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 1, out
    assert (
        'typed_usage.py:10: error: Argument 1 to "enqueue" of "JobCall" has incompatible type "str"'
        in out
    )
    assert 'typed_usage.py:11: error: Unexpected keyword argument "loud"' in out
    assert out.count("error:") == 2, out
