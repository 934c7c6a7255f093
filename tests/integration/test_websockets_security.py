"""Websocket hardening: the full-origin check, sockets of a session that ended, unknown
paths, connect rate limits, and the request id on refusal log lines."""

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.test import Client
from django.urls import reverse

from accounts import sessions as account_sessions
from project import live
from project.asgi import application
from tests import factories
from tests.fixtures import live_orders

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_dispatch_on_commit(settings):
    settings.EVENTS_DISPATCH_ON_COMMIT = False


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def communicator(path: str, client: Client | None = None, origin: str | None = None):
    headers = [(b"origin", (origin or settings.SITE_ORIGIN).encode())]
    if client is not None:
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def run(scenario):
    """An async scenario on its own loop in its own thread (the browser tests keep a loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


def connect_result(comm: WebsocketCommunicator) -> tuple[bool, int | None]:
    async def scenario():
        connected, code = await comm.connect()
        if connected:
            await comm.disconnect()
        return connected, code

    return run(scenario)


@pytest.fixture
def watched_order(shopper):
    vendor = factories.VendorFactory()
    return live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8001",  # another port on the same host
        "https://127.0.0.1:8000",  # another scheme
        "http://evil.example",
        "http://127.0.0.1:8000.evil.example",
        "null",
    ],
)
def test_sockets_from_another_origin_are_refused(shopper, watched_order, origin):
    assert settings.SITE_ORIGIN == "http://127.0.0.1:8000"
    comm = communicator(f"/ws/orders/{watched_order.pk}/", signed_in(shopper), origin=origin)

    assert connect_result(comm) == (False, 4403)


def test_sockets_from_the_sites_own_origin_are_accepted(shopper, watched_order):
    comm = communicator(f"/ws/orders/{watched_order.pk}/", signed_in(shopper))

    assert connect_result(comm) == (True, None)


def test_an_unknown_socket_path_is_closed_cleanly_with_4404(shopper, json_logs):
    for path in ["/ws/orders/abc/", "/ws/nothing-here/"]:
        assert connect_result(communicator(path, signed_in(shopper))) == (False, 4404)

    refusals = [line for line in json_logs() if line["logger"] == "project.websockets"]
    assert [line["message"] for line in refusals] == [
        "Refused websocket to /ws/orders/abc/ (unknown path; origin http://127.0.0.1:8000)",
        "Refused websocket to /ws/nothing-here/ (unknown path; origin http://127.0.0.1:8000)",
    ]
    assert all(line["level"] == "WARNING" for line in refusals)
    assert not [line for line in json_logs() if line["level"] == "ERROR"]


def test_refusal_log_lines_carry_a_request_id(shopper, watched_order, json_logs):
    stranger = factories.UserFactory()
    connect_result(communicator(f"/ws/orders/{watched_order.pk}/", signed_in(stranger)))
    connect_result(communicator("/ws/vendor/", origin="http://127.0.0.1:9999"))

    lines = [line for line in json_logs() if line["message"].startswith("Refused websocket")]
    assert [line["message"] for line in lines] == [
        f"Refused websocket subscription to /ws/orders/{watched_order.pk}/ by user {stranger.pk}",
        "Refused websocket to /ws/vendor/ (origin not allowed; origin http://127.0.0.1:9999)",
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in lines)
    assert lines[0]["request_id"] != lines[1]["request_id"]
    assert lines[0]["user_id"] == stranger.pk


def sign_out_by_logging_out(client: Client, user) -> None:
    client.post(reverse("accounts:logout"))


def sign_out_by_changing_the_password(client: Client, user) -> None:
    user.set_password("a-brand-new-password-42")
    user.save()


def sign_out_by_session_expiry(client: Client, user) -> None:
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    # The session's end, as the store sees it (cache and database alike).
    client.session.delete(session_key)
    DatabaseSessionStore().delete(session_key)


def sign_out_everywhere_from_another_browser(client: Client, user) -> None:
    other = signed_in(user)
    response = other.post(reverse("accounts:sign_out_everywhere"))
    assert response.status_code == 302


def sign_out_by_the_absolute_session_lifetime(client: Client, user) -> None:
    session = client.session
    session[account_sessions.SIGNED_IN_AT_KEY] = time.time() - settings.SESSION_MAX_AGE - 1
    session.save()


@pytest.mark.parametrize(
    "sign_out",
    [
        sign_out_by_logging_out,
        sign_out_by_changing_the_password,
        sign_out_by_session_expiry,
        sign_out_everywhere_from_another_browser,
        sign_out_by_the_absolute_session_lifetime,
    ],
)
def test_an_open_socket_gets_nothing_once_its_session_ended(shopper, watched_order, sign_out):
    client = signed_in(shopper)
    comm = communicator(f"/ws/orders/{watched_order.pk}/", client)
    group = live.order_group(watched_order.pk)

    async def scenario():
        connected, _ = await comm.connect()
        assert connected
        await get_channel_layer().group_send(
            group, {"type": live.MESSAGE_TYPE, "html": "<p>before</p>"}
        )
        before = await comm.receive_output(timeout=3)
        await sync_to_async(sign_out)(client, shopper)
        await get_channel_layer().group_send(
            group, {"type": live.MESSAGE_TYPE, "html": "<p>after</p>"}
        )
        after = await comm.receive_output(timeout=3)
        nothing_more = await comm.receive_nothing(timeout=0.5)
        await comm.wait()
        return before, after, nothing_more

    before, after, nothing_more = run(scenario)

    assert before == {"type": "websocket.send", "text": "<p>before</p>"}
    assert after == {"type": "websocket.close", "code": 4401}
    assert nothing_more


def test_socket_connects_are_rate_limited_per_session(shopper, watched_order, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "websocket_session": {"limit": 2, "window": 60}}
    client = signed_in(shopper)
    path = f"/ws/orders/{watched_order.pk}/"

    results = [connect_result(communicator(path, client)) for _ in range(3)]
    other_session = connect_result(communicator(path, signed_in(shopper)))

    assert results == [(True, None), (True, None), (False, 4429)]
    assert other_session == (True, None)
