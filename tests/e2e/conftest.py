"""A real `streamlit run` server and Debian's headless Chromium driven by Playwright.

The browser must be there: when /usr/bin/chromium is missing the tests fail (install the Debian
packages chromium and chromium-driver, as .ci/run does); they never skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GEOMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The machines running these tests are small and shared: give the app time to answer.
expect.set_options(timeout=60_000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The app served by `streamlit run` on a free port; yields its base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "streamlit_app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    tmp = tmp_path_factory.mktemp("server_tmp")  # the sessions' workspaces go here
    env = {**os.environ, "HOME": str(log.parent), "TMPDIR": str(tmp)}
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start; its log:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless; fails (never skips) when it is not installed."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install the Debian packages chromium and "
            "chromium-driver (apt-get install -y chromium chromium-driver); the browser tests "
            "need it."
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Offline:
    """A browser context in which only the app's server answers; lists what else was asked."""

    def __init__(self, browser, server: str) -> None:
        self.blocked: list[str] = []
        self.context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, accept_downloads=True
        )
        self.context.route("**/*", lambda route: self._route(route, server))
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)

    def _route(self, route, server: str) -> None:
        url = route.request.url
        if url.startswith((server, "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture
def new_session(browser, server):
    """Call to open the app in a fresh browser session with every non-local request blocked."""
    sessions = []

    def open_one() -> Offline:
        session = Offline(browser, server)
        sessions.append(session)
        session.page.goto(server)
        return session

    yield open_one
    for session in sessions:
        session.context.close()


@pytest.fixture
def offline(new_session):
    """The app in a fresh browser session with every non-local request blocked."""
    return new_session()
