"""A real Chromium (Debian's, at /usr/bin/chromium) driven by Playwright, and the app
served over HTTP in a thread for it to open. Nothing here downloads a browser.

Without Chromium on the machine the browser tests are skipped, unless
HARAMBEE_REQUIRE_BROWSER is set (CI sets it), when they fail instead."""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug.serving import make_server

SCREENSHOTS = os.environ.get("HARAMBEE_SCREENSHOTS", "screenshots")


def chromium_path() -> str:
    found = os.environ.get("HARAMBEE_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("HARAMBEE_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser for one test module or session."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The WSGI app on a free loopback port, threaded; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def screenshot(page: Any, name: str) -> str:
    """Save a full-page PNG under SCREENSHOTS and return its path."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    return path
