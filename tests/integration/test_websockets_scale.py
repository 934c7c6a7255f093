"""Many sockets on one web process: its Redis connections stay a small constant, a vendor's
event reaches every one of that vendor's sockets, and never another vendor's.

Real parts: a private redis-server (so its CLIENT LIST holds only this test's processes), a
uvicorn process on the test database with channels-redis, and the event dispatcher.
"""

import asyncio
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.test import Client
from websockets.asyncio.client import connect

from tests import factories
from tests.fixtures import live_orders, redis_clients
from tests.fixtures.asgi_server import AsgiServer, free_port, start_dispatcher, stop
from tests.fixtures.redis_sentinel import RedisProcess

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = 200
SOCKETS_PER_SESSION = 10  # under the per-session connect limit (30 a minute)
# The subscriber, the publisher and the cache's pool (sessions, rate limits), however many
# sockets are open: a handful, never one per socket.
MOST_REDIS_CONNECTIONS = 6


@pytest.fixture
def private_redis(tmp_path):
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (Debian: apt-get install redis-server)"
    port = free_port()
    server = RedisProcess(
        name="redis",
        port=port,
        args=[binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--logfile", str(tmp_path / "redis.log")],
        log=tmp_path / "redis.log",
    ).start()  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def run(scenario):
    """On a loop of its own thread: the browser tests keep a loop in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


def test_one_web_process_holds_a_few_redis_connections_and_fans_each_event_out(
    private_redis, shopper, tmp_path, settings
):
    settings.EVENTS_DISPATCH_ON_COMMIT = False  # the dispatcher process delivers, to its Redis
    mine = factories.VendorMembershipFactory()
    theirs = factories.VendorMembershipFactory()
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=mine.vendor)
    redis_url = f"redis://127.0.0.1:{private_redis.port}/0"
    server = AsgiServer(log=tmp_path / "uvicorn.log", env={"REDIS_URL": redis_url}).start()
    dispatcher = start_dispatcher(tmp_path / "dispatcher.log", "--poll", "0.5", REDIS_URL=redis_url)
    my_cookies = [session_cookie(mine.user) for _ in range(SOCKETS // SOCKETS_PER_SESSION)]
    their_cookie = session_cookie(theirs.user)
    row = re.compile(rf'<tr id="order-row-{order.pk}" data-seq="(\d+)"')

    async def open_socket(cookie: str):
        return await connect(
            f"ws://127.0.0.1:{server.port}/ws/vendor/orders/",
            additional_headers={"Origin": server.url, "Cookie": cookie},
            open_timeout=30,
        )

    async def paid_row(ws) -> str:
        while True:
            message = await ws.recv()
            if row.search(message):
                return message

    async def scenario():
        my_sockets = await asyncio.gather(
            *(open_socket(c) for c in my_cookies * SOCKETS_PER_SESSION)
        )
        their_sockets = [await open_socket(their_cookie) for _ in range(5)]
        try:
            connections = redis_clients.connections_by_process(
                private_redis.port, {server.process.pid: "web"}
            )["web"]
            await asyncio.to_thread(live_orders.capture, order)
            rows = await asyncio.wait_for(
                asyncio.gather(*(paid_row(ws) for ws in my_sockets)), timeout=30
            )
            leaked = await asyncio.gather(
                *(asyncio.wait_for(paid_row(ws), timeout=1) for ws in their_sockets),
                return_exceptions=True,
            )
            return connections, rows, leaked
        finally:
            await asyncio.gather(*(ws.close() for ws in my_sockets + their_sockets))

    try:
        connections, rows, leaked = run(scenario)
    finally:
        stop(dispatcher)
        server.stop()

    assert sum(connections.values()) <= MOST_REDIS_CONNECTIONS, dict(connections)
    assert len(rows) == SOCKETS
    assert all(f"Order {order.number} is paid and ready to ship." in html for html in rows)
    assert all(isinstance(outcome, TimeoutError) for outcome in leaked), leaked
