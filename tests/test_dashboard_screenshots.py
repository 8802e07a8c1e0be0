"""The main pages in real Chromium, light and dark, at 1280 and 800 px: they fit, the theme
toggle works without a flash, ids copy; the screenshots are kept as test artifacts, and
``make screenshots`` (``JOBS_SCREENSHOTS=docs/images``) writes the README's from them."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from rq.job import JobStatus

import jobs_app
from browser import browser_page, serve
from conftest import drain_history, flask_command, stop_process, wait_for
from flask_jobs import Retry
from flask_jobs.ops.jobs import stop

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
#: The pages shot, by name.
PAGES = {
    "overview": "/jobs/",
    "jobs": "/jobs/jobs",
    "job": "/jobs/job/{failed}",
    "failed-now": "/jobs/failed",
    "running": "/jobs/running",
    "workers": "/jobs/workers",
}
#: Pages that must keep one line per row at 1280 px, by their table.
DENSE = {"jobs": "#fj-jobs", "failed-now": "#fj-live-jobs", "running": "#fj-live-jobs"}
#: The README's images: (page, theme), shot at 1280 px.
README = {("overview", "light"), ("jobs", "dark")}
BACKGROUND = {"light": "rgb(255, 255, 255)", "dark": "rgb(21, 24, 28)"}


def _jobs(app: Flask, work: Any) -> str:
    """Jobs of every kind, their history recorded; the id of a failed one."""
    for n in range(12):
        jobs_app.add.enqueue(n, n)
    jobs_app.echo.options(queue="other").enqueue("customer-4711")
    failed = jobs_app.fail.enqueue("the invoice service answered 502 Bad Gateway\nretry later")
    jobs_app.fail.enqueue("disk full: /var/lib/app/exports")
    later = Retry(3, delay=600, jitter=False)  # waits for its retry while the shots are taken
    jobs_app.fail.options(retry=later).enqueue("payment gateway timed out after 30 s")
    jobs_app.add.enqueue_in(timedelta(hours=1), 1, 2)
    work(queues=["default", "other"])
    drain_history(app)
    return failed.id


def _row_heights(page: Any, table: str) -> list[float]:
    return list(
        page.eval_on_selector_all(
            f"{table} tbody tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
        )
    )


@SQLITE
def test_main_pages_light_and_dark_at_1280_and_800(
    app: Flask, ctx: None, work: Any, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    failed = _jobs(app, work)
    running = jobs_app.whoami.options(timeout=120).enqueue(pause=60.0)
    proc = subprocess.Popen(flask_command("jobs", "worker"), env=subprocess_env)
    folder = Path(os.environ.get("JOBS_TEST_ARTIFACTS", tmp_path)) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    try:
        wait_for(lambda: running.get_status() == JobStatus.STARTED)
        job = jobs_app.jobs.fetch_job(running.id)
        job.meta["progress"] = {"fraction": 0.6, "message": "exporting invoices"}
        job.save_meta()
        with serve(app) as base, browser_page() as page:
            for theme in ("light", "dark"):
                page.emulate_media(color_scheme=theme)
                for width in (1280, 800):
                    page.set_viewport_size({"width": width, "height": 800})
                    for name, path in PAGES.items():
                        page.goto(base + path.format(failed=failed))
                        assert (
                            page.evaluate("getComputedStyle(document.body).backgroundColor")
                            == BACKGROUND[theme]
                        ), (name, theme)
                        scroll = page.evaluate("document.scrollingElement.scrollWidth")
                        assert scroll <= width, (name, width, scroll)  # no sideways scroll
                        if width == 1280 and name in DENSE:
                            line = page.evaluate(
                                f"parseFloat(getComputedStyle(document.querySelector("
                                f"'{DENSE[name]} td')).lineHeight)"
                            )
                            heights = _row_heights(page, DENSE[name])
                            assert heights and max(heights) < 1.6 * line + 12, (name, heights)
                        shot = folder / f"{name}-{theme}-{width}.png"
                        page.screenshot(path=str(shot), full_page=True)
                        shots.append(shot)
                        if width == 1280 and (name, theme) in README:
                            page.screenshot(path=str(folder / f"readme-{name}-{theme}.png"))
            page.goto(f"{base}/jobs/running")
            assert "60%" in page.locator("#fj-live-jobs").inner_text()
            assert "exporting invoices" in page.locator("#fj-live-jobs").inner_text()
    finally:
        with contextlib.suppress(Exception):
            stop(jobs_app.jobs.state(app), jobs_app.jobs.fetch_job(running.id))
        stop_process(proc)
    assert len(shots) == 2 * 2 * len(PAGES) and all(s.stat().st_size > 1000 for s in shots)
    target = os.environ.get("JOBS_SCREENSHOTS")
    if target:  # `make screenshots`: the README's images
        Path(target).mkdir(parents=True, exist_ok=True)
        for name, theme in README:
            shutil.copyfile(folder / f"readme-{name}-{theme}.png", Path(target) / f"{name}.png")


def test_theme_toggle_is_remembered_without_a_flash_and_ids_copy(
    app: Flask, ctx: None, work: Any
) -> None:
    (job,) = [jobs_app.fail.enqueue("x")]
    work()
    drain_history(app)
    with serve(app) as base, browser_page() as page:
        page.emulate_media(color_scheme="dark")
        page.goto(f"{base}/jobs/jobs")

        def background() -> str:
            return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))

        assert background() == BACKGROUND["dark"]  # the OS default
        assert page.locator("#fj-theme").inner_text().strip() == "◐ auto"
        page.click("#fj-theme")
        assert background() == BACKGROUND["light"]
        assert page.evaluate("localStorage.getItem('flask_jobs_theme')") == "light"
        # set by the script in <head>, before the body is parsed: no dark first frame
        page.add_init_script(
            "document.addEventListener('readystatechange', () => {"
            " if (document.readyState === 'interactive') window.__first ="
            " document.documentElement.dataset.theme; });"
        )
        page.reload()
        assert page.evaluate("window.__first") == "light"
        assert page.locator("#fj-theme").inner_text().strip() == "◐ light"
        page.click("#fj-theme")
        assert (
            background() == BACKGROUND["dark"]
            and page.evaluate("document.documentElement.dataset.theme") == "dark"
        )
        page.click("#fj-theme")  # back to the OS default
        assert page.evaluate("localStorage.getItem('flask_jobs_theme')") == "auto"
        assert page.evaluate("document.documentElement.dataset.theme") is None
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.click(f".fj-copy[data-copy='{job.id}']")
        page.wait_for_selector(".fj-copy.fj-copied")
        assert page.evaluate("navigator.clipboard.readText()") == job.id
