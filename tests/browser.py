"""A real browser for dashboard tests: Debian's chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("JOBS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free localhost port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh headless Chromium page; skipped locally (failed in CI) when there is none."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        if os.environ.get("CI"):
            pytest.fail(f"chromium is required in CI ({CHROMIUM} not found)")
        pytest.skip(f"no chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            try:
                yield page
            except BaseException:
                _keep_screenshot(page)
                raise
            context.close()
        finally:
            browser.close()


def _keep_screenshot(page: Any) -> None:
    """On a failure, keep what the browser showed (test-artifacts/, or $JOBS_TEST_ARTIFACTS)."""
    folder = Path(os.environ.get("JOBS_TEST_ARTIFACTS", "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    name = os.environ.get("PYTEST_CURRENT_TEST", "browser").split(" ")[0]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:150]
    # the page may be gone with the failure: the test's own error is what matters
    with contextlib.suppress(Exception):
        page.screenshot(path=str(folder / f"{safe}.png"), full_page=True)
