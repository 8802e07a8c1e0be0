"""The wheel and sdist hold one import package and install in a fresh virtualenv; the job
wrapper is typed on the wrapped function."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tarfile
import venv
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


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("flask_jobs-*.tar.gz")
    return built


def test_version_is_one_literal_read_by_the_build(wheel: Path, sdist: Path) -> None:
    import flask_jobs

    version = flask_jobs.__version__
    assert wheel.name.startswith(f"flask_jobs-{version}-")
    assert sdist.name == f"flask_jobs-{version}.tar.gz"
    assert f"## {version}" in (ROOT / "CHANGELOG.md").read_text()


def test_sdist_carries_package_tests_and_docs(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in [
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "flask_jobs/__init__.py",
        "dashboard/__init__.py",
        "templates/flask_jobs/base.html",
        "static/htmx.min.js",
        "tests/conftest.py",
        "tests/test_config.py",
        "docs/deploy.md",
        "deploy/Procfile",
        "example_app/__init__.py",
    ]:
        assert required in names, required
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def fresh_venv(folder: Path) -> Path:
    """A new virtualenv whose dependencies come from this one, without its flask_jobs."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # A plain path in a .pth: the dependencies, but not the editable finder of this checkout
    # (.pth files in that folder are not run), so flask_jobs comes from what we install.
    (target / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_built_distribution_installs_and_passes_tests_in_a_fresh_venv(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    dist: Path = request.getfixturevalue(kind)
    python = fresh_venv(tmp_path / "venv")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"),
            *("--no-build-isolation", "--quiet", str(dist)),
        ],
        check=True,
        timeout=300,
    )
    # The tests from the sdist itself (from the checkout for the wheel), run outside the
    # checkout so that its flask_jobs/ folder cannot shadow the installed package.
    if kind == "sdist":
        with tarfile.open(dist) as archive:
            archive.extractall(tmp_path / "src", filter="data")
        (tests,) = (tmp_path / "src").glob("flask_jobs-*/tests")
    else:
        tests = ROOT / "tests"
    run = tmp_path / "run"
    run.mkdir()
    # Config from the environment, and real workers (simple and fork) on real Redis.
    names = ["conftest.py", "jobs_app.py", "test_config.py", "test_config_env.py"]
    for name in [*names, "test_reporting.py"]:
        (run / name).write_text((tests / name).read_text())
    probe = "import flask_jobs, sys; print(flask_jobs.__file__)"
    where = subprocess.run(
        [str(python), "-c", probe], cwd=run, capture_output=True, text=True, check=True
    ).stdout
    assert where.startswith(str(tmp_path / "venv")), where
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(run)],
        cwd=run,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout
