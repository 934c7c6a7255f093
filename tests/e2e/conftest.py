"""Browser tests: Playwright driving Debian's chromium against Django's live server."""

import os

import pytest

# pytest-playwright's sync API runs an event loop in this thread; the Django code the
# tests call (factories, assertions on the database) is synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # A missing browser must fail the run loudly, never skip it.
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; install Debian's chromium package.")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(autouse=True)
def _short_timeouts(page):
    # Every step should take well under a second here; fail fast with a clear locator error.
    page.set_default_timeout(10_000)


@pytest.fixture
def csp_violations(page):
    """Collects Content-Security-Policy violations reported by the browser on `page`."""
    violations: list[str] = []

    def record(message):
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(message.text)

    page.on("console", record)
    return violations


@pytest.fixture
def site(live_server, transactional_db):
    """The live server's base URL, with a database the server thread can see."""
    return live_server.url
