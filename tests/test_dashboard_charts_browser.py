"""The functions, queue and alerts pages in a real Chromium: light and dark, 1280 and 800 px
wide, no sideways scroll, charts with ticks, legend and a value on every bar and point."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from test_dashboard_functions import FUNC, fill
from test_queue_samples import store_samples

import jobs_app
from browser import browser_page, serve
from flask_jobs.history.alerts import evaluate

PAGES = [
    "/jobs/functions?range=7d",
    f"/jobs/functions/{FUNC}?range=7d",
    f"/jobs/functions/{FUNC}?range=1h",
    "/jobs/queues?range=24h",
    "/jobs/queues/default?range=1h",
    "/jobs/alerts",
]


def test_the_new_pages_fit_and_chart_in_light_and_dark(app: Flask, ctx: None) -> None:
    fill(app, days=8, count=2000)
    jobs_app.add.enqueue(1, 2)  # waiting, with no worker: an open alert
    store_samples(app, "default", [(timedelta(minutes=m), m % 7, 30.0 * m) for m in range(50)])
    evaluate(app, jobs_app.jobs.state(app))
    folder = Path(os.environ.get("JOBS_TEST_ARTIFACTS", "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, browser_page() as page:
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            for width in (1280, 800):
                page.set_viewport_size({"width": width, "height": 900})
                for path in PAGES:
                    response = page.goto(base + path)
                    assert response is not None and response.status == 200, path
                    assert page.locator("#fj-alert-banner").count() == 1, path
                    sideways = page.evaluate(
                        "document.scrollingElement.scrollWidth - window.innerWidth"
                    )
                    assert sideways <= 0, (path, width, sideways)
                    _check_charts(page, path)
                    name = f"{scheme}-{width}-{path.strip('/').replace('/', '_').replace('?', '_')}"
                    page.screenshot(path=str(folder / f"charts-{name}.png"), full_page=True)


def _check_charts(page: Any, path: str) -> None:
    charts = page.locator("svg.fj-chart")
    if path.startswith("/jobs/alerts") or path.startswith("/jobs/functions?"):
        assert charts.count() == 0
        return
    assert charts.count() >= 2, path
    for i in range(charts.count()):
        chart = charts.nth(i)
        assert chart.locator("text.fj-y").count() >= 3, path  # more than two y ticks
        assert chart.locator("text.fj-legend").count() >= 1, path
        assert chart.locator("text.fj-x").count() >= 2, path
        marks = chart.locator("rect:not(.fj-key) > title, circle > title")
        assert marks.count() >= 1, path
        assert "UTC" in marks.first.text_content(), path  # hover value: when, and how much
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200, path
