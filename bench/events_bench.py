"""Live-event benchmark: commit → websocket latency, and fan-out to 1,000 sockets.

Runs the production shape on the local PostgreSQL and Redis: a uvicorn process serving
project.asgi (channels-redis) and one `manage.py run_dispatcher` (woken by NOTIFY). This
process records events the way services do (a transaction that commits an outbox row) and
times how long until the resulting HTML fragment arrives on connected websocket clients.

    .venv/bin/python bench/events_bench.py [--events 200] [--clients 1000] [--rounds 5]

Uses BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bazaar_bench_events,
created and migrated if missing) and BENCH_REDIS_URL (default redis://127.0.0.1:6379/11).
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar_bench_events"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "CACHE_KEY_PREFIX": "bazaar-bench",
    "DJANGO_DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "EVENTS_EMBEDDED_DISPATCHER": "0",
    "DATABASE_POOL_MAX": "20",
}
os.environ.update(ENV)
sys.path.insert(0, str(BASE_DIR))

BENCH_PASSWORD = "x-bench-pw-1"  # noqa: S105 - throwaway accounts in a bench database
SEQ = re.compile(r'id="order-status"[^>]*data-seq="(\d+)"')


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def ensure_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=BASE_DIR,
        env=ENV,
        check=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        args,
        cwd=BASE_DIR,
        env=ENV,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=raise_file_limit,  # noqa: PLW1509 - only raises the fd limit
    )


def stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def setup_data(order_count: int):
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from accounts.models import User
    from shop.models import Category, Order, OrderLine, Product, Vendor, VendorMembership

    stamp = f"{int(time.time())}-{os.getpid()}"
    vendor = Vendor.objects.create(name=f"Bench {stamp}", slug=f"bench-{stamp}", status="approved")
    member = User.objects.create_user(email=f"vendor-{stamp}@bench.local", password=BENCH_PASSWORD)
    VendorMembership.objects.create(vendor=vendor, user=member, role="owner")
    shopper = User.objects.create_user(
        email=f"shopper-{stamp}@bench.local", password=BENCH_PASSWORD
    )
    category, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    product = Product.objects.create(
        vendor=vendor,
        category=category,
        name="Bench item",
        slug=f"bench-item-{stamp}",
        price=Decimal("10.00"),
        stock=1000,
    )
    orders = []
    for _ in range(order_count):
        order = Order.objects.create(
            customer=shopper,
            total=Decimal("10.00"),
            status="paid",
            ship_name="Bench",
            ship_line1="1 Bench Road",
            ship_city="Berlin",
            ship_postal_code="10115",
            ship_country="DE",
        )
        OrderLine.objects.create(
            order=order,
            vendor=vendor,
            product=product,
            product_name=product.name,
            unit_price=product.price,
            quantity=1,
            line_total=product.price,
        )
        orders.append(order)

    def cookie(user) -> str:
        client = Client()
        client.force_login(user)
        return (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )

    return orders, cookie(shopper), cookie(member)


def record_captured(order) -> float:
    """A service's transaction: record PaymentCaptured; returns the time of the commit."""
    from django.db import transaction

    from project import events
    from shop import events as shop_events

    with transaction.atomic():
        row = events.record(
            shop_events.PaymentCaptured(
                order_id=order.pk, payment_id=0, amount=order.total, currency=order.currency
            ),
            aggregate=order,
        )
    return time.perf_counter(), row.sequence


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def connect(url: str, cookie: str, origin: str):
    from websockets.asyncio.client import connect as ws_connect

    return await ws_connect(
        url,
        additional_headers={"Cookie": cookie, "Origin": origin},
        open_timeout=30,
        max_size=2**22,
    )


async def measure_latency(base: str, origin: str, orders, cookie: str, count: int) -> list[float]:
    sockets = [await connect(f"{base}/ws/orders/{o.pk}/", cookie, origin) for o in orders]
    latencies = []
    try:
        for n in range(count + 10):
            index = n % len(orders)
            committed, sequence = await asyncio.to_thread(record_captured, orders[index])
            while True:
                message = await asyncio.wait_for(sockets[index].recv(), timeout=10)
                match = SEQ.search(message)
                if match and int(match.group(1)) == sequence:
                    break
            if n >= 10:  # the first ten warm up caches, pools and templates
                latencies.append((time.perf_counter() - committed) * 1000)
    finally:
        for ws in sockets:
            await ws.close()
    return latencies


async def measure_fanout(
    base: str, origin: str, order, cookie: str, clients: int, rounds: int
) -> tuple[float, list[float]]:
    started = time.perf_counter()
    sockets = []
    for batch in range(0, clients, 100):
        sockets += await asyncio.gather(
            *(
                connect(f"{base}/ws/vendor/", cookie, origin)
                for _ in range(batch, min(batch + 100, clients))
            )
        )
    connect_seconds = time.perf_counter() - started
    marker = f'id="order-row-{order.pk}"'
    results = []
    try:
        for _ in range(rounds):
            arrivals: list[float] = []

            async def wait_one(ws, arrivals: list[float] = arrivals) -> None:
                while True:
                    message = await ws.recv()
                    if marker in message:
                        arrivals.append(time.perf_counter())
                        return

            waiters = [asyncio.create_task(wait_one(ws)) for ws in sockets]
            await asyncio.sleep(0.2)
            committed, _ = await asyncio.to_thread(record_captured, order)
            await asyncio.wait_for(asyncio.gather(*waiters), timeout=60)
            results.append((max(arrivals) - committed) * 1000)
            await asyncio.sleep(0.5)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return connect_seconds, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()

    raise_file_limit()
    ensure_database()
    orders, shopper_cookie, vendor_cookie = setup_data(20)
    port = free_port()
    logs = BASE_DIR / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    server = spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--ws-max-queue",
            "64",
        ],
        logs / "events-uvicorn.log",
    )
    dispatcher = spawn(
        [sys.executable, "manage.py", "run_dispatcher", "--poll", "1"],
        logs / "events-dispatcher.log",
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("uvicorn did not start; see var/bench/events-uvicorn.log")
            time.sleep(0.1)
        time.sleep(1.0)  # the dispatcher's LISTEN
        base, origin = f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
        latencies = asyncio.run(
            measure_latency(base, origin, orders, shopper_cookie, options.events)
        )
        connect_seconds, fanout = asyncio.run(
            measure_fanout(base, origin, orders[0], vendor_cookie, options.clients, options.rounds)
        )
    finally:
        stop(dispatcher)
        stop(server)

    figures = {
        "commit_to_websocket_ms": {
            "events": len(latencies),
            "p50": round(statistics.median(latencies), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(max(latencies), 2),
        },
        "fanout": {
            "clients": options.clients,
            "connect_all_s": round(connect_seconds, 2),
            "commit_to_last_client_ms": [round(value, 1) for value in fanout],
            "median_ms": round(statistics.median(fanout), 1),
        },
    }
    latency = figures["commit_to_websocket_ms"]
    print(
        f"events: commit → websocket over {latency['events']} events: "
        f"p50 {latency['p50']} ms, p99 {latency['p99']} ms (max {latency['max']} ms)"
    )
    fan = figures["fanout"]
    print(
        f"events: fan-out to {fan['clients']} sockets on one vendor group: commit → last client "
        f"median {fan['median_ms']} ms over {len(fanout)} rounds {fan['commit_to_last_client_ms']} "
        f"(connecting all took {fan['connect_all_s']} s)"
    )
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
