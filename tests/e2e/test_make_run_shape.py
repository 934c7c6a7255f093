"""`make run`'s serving shape in a real browser: scripts/run.sh itself, on free ports, serving
the pages from gunicorn's sync workers and the websockets from uvicorn on the next port. A
shopper watching an order sees the payment arrive over the websocket on that second port,
under the CSP, without a reload.

The script runs on the test database and Redis, where `make run` is joined by `make
dispatcher` (here the `event_dispatcher` fixture); the embedded SQLite default is what
tests/integration/test_run_script.py starts. It runs in its own process group, with its own
BAZAAR_VAR_DIR: SIGTERM to it stops everything it started, and the group is killed if not.
"""

import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, WebSocket, expect

from shop.services import payments as payment_services
from tests import factories
from tests.fixtures import live_orders
from tests.fixtures.asgi_server import (  # noqa: F401 - event_dispatcher: a fixture
    django_env,
    event_dispatcher,
    healthy,
    wait_for,
)

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "run.sh"
LIVE_TIMEOUT = 15_000


@dataclass
class MakeRun:
    url: str
    websocket_port: int


def port_pair() -> int:
    """A free port whose next one is free too: run.sh serves websockets on port + 1."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not listening(port + 1):
            return port


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(autouse=True)
def _dispatch_in_the_dispatcher_process(settings):
    """Events this test records are delivered by the `run_dispatcher` process."""
    settings.EVENTS_DISPATCH_ON_COMMIT = False


@pytest.fixture
def make_run(transactional_db, tmp_path) -> Iterator[MakeRun]:
    port = port_pair()
    log = tmp_path / "run.log"
    env = django_env(BAZAAR_VAR_DIR=str(tmp_path / "var"))
    with log.open("wb") as output:
        script = subprocess.Popen(  # noqa: S603
            [str(SCRIPT), "127.0.0.1", str(port)],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed below if need be
        )
    try:
        # Six Python processes start at once: on a loaded machine that takes a while.
        wait_for(
            lambda: script.poll() is not None or (healthy(port) and healthy(port + 1)),
            timeout=120,
            interval=0.2,
        )
        assert script.poll() is None, log.read_text(errors="replace")
        yield MakeRun(url=f"http://127.0.0.1:{port}", websocket_port=port + 1)
    finally:
        script.send_signal(signal.SIGTERM)
        try:
            script.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait(timeout=5)


@pytest.fixture
def order_awaiting_its_charge(transactional_db):
    """A shopper's placed order whose charge is left for the test to run."""
    shopper = factories.UserFactory(email="sam@example.com", full_name="Sam Shopper")
    vendor = factories.VendorFactory(name="Oak & Iron")
    order = live_orders.placed_order(customer=shopper, vendor=vendor)
    return live_orders.pending_charge(order, key_prefix="payment-make-run")


@pytest.mark.usefixtures("event_dispatcher")
def test_pages_from_gunicorn_live_updates_over_uvicorn_on_the_next_port(
    page: Page, make_run, order_awaiting_its_charge, csp_violations
):
    order = order_awaiting_its_charge.order
    sockets: list[WebSocket] = []
    frames: list[str | bytes] = []

    def watch(websocket: WebSocket) -> None:
        sockets.append(websocket)
        websocket.on("framereceived", lambda payload: frames.append(payload))

    page.on("websocket", watch)
    page.goto(f"{make_run.url}/accounts/login/")
    page.get_by_label("Email").fill("sam@example.com")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    response = page.goto(f"{make_run.url}/orders/{order.pk}/")
    page.wait_for_selector("[data-live-connected]", state="attached", timeout=LIVE_TIMEOUT)
    page.evaluate("document.documentElement.dataset.e2eMarker = 'still-here'")
    status = page.locator("#order-status")
    expect(status.locator(".order-headline")).to_have_text("Awaiting payment")

    # What the critical worker does: the charge, its outcome and events, in one transaction.
    payment_services.process_payment(payment_id=order_awaiting_its_charge.pk)

    expect(status).to_contain_text(
        f"Thank you, your order {order.number} is confirmed.", timeout=LIVE_TIMEOUT
    )
    expect(status.locator(".order-headline")).to_have_text("Paid")
    assert page.evaluate("document.documentElement.dataset.e2eMarker") == "still-here"
    assert response is not None
    assert response.headers["server"] == "gunicorn"
    # The page's socket went to uvicorn on the next port of the page's own host, and the
    # confirmation came over it.
    assert [websocket.url for websocket in sockets] == [
        f"ws://127.0.0.1:{make_run.websocket_port}/ws/orders/{order.pk}/"
    ]
    assert any("is confirmed" in frame for frame in frames if isinstance(frame, str))
    assert not sockets[0].is_closed()
    assert csp_violations == []
    connect_src = re.search(r"connect-src ([^;]*)", response.headers["content-security-policy"])
    assert connect_src is not None
    assert f"ws://127.0.0.1:{make_run.websocket_port}" in connect_src[1].split()
