"""Live-event benchmark: websockets on a vendor's live feed, from commit to browser.

Runs the production shape: uvicorn serving project.asgi (channels-redis) with `--workers`
processes, one `manage.py run_dispatcher` (woken by NOTIFY), the local PostgreSQL and a
private redis-server started for the run on a free port (so thousands of sockets never touch
a shared Redis; stopped at the end). This process records events the way services do (a
transaction that commits an outbox row) and times how long until the resulting HTML fragment
arrives on every connected websocket client.

  1. `--latency-clients` sockets (1,000) on one vendor's feed, backoffice pages in the stated
     `--mix` (by default half order lists, a quarter dashboards, a quarter other pages);
     `--events` events, each timed from its commit to its arrival on every socket (the message
     with what that page shows of it: the order list's row, the dashboard's tiles, another
     page's badge): p50/p99/max over all arrivals and per page. A probe subscribed to the
     groups' Redis channels times each publish, so the commit → browser time splits into
     commit → publish (the dispatcher) and publish → browser (the web processes, the client).
  2. More sockets up to `--clients` (10,000): time to connect them all, failures, then
     `--rounds` events timed from commit to arrival on every socket (p50/p99/max).
  3. Redis connections per process (CLIENT LIST, each client's socket traced to its process
     through /proc) and resident memory per websocket (the workers' RSS growth / sockets).

    .venv/bin/python bench/events_bench.py [--clients 10000] [--latency-clients 1000]
        [--events 50] [--rounds 3] [--workers 2] [--redis-maxclients 10000]
        [--mix orders=2,dashboard=1,nav=1] [--json FILE]

Uses BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bazaar_bench_events,
created and migrated if missing).
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar_bench_events"
)
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DATABASE_URL": DATABASE_URL,
    "CACHE_KEY_PREFIX": "bazaar-bench",
    "DJANGO_DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "EVENTS_EMBEDDED_DISPATCHER": "0",
    "DATABASE_POOL_MAX": "20",
}
ENV.pop("REDIS_SENTINELS", None)
sys.path.insert(0, str(BASE_DIR))

from bench.feed_client import Feed, Page  # noqa: E402 - from this checkout
from tests.fixtures import redis_clients  # noqa: E402 - from this checkout

BENCH_PASSWORD = "x-bench-pw-1"  # noqa: S105 - throwaway accounts in a bench database
FILE_LIMIT = 65536


def raise_file_limit() -> None:
    """10,000 sockets need 10,000 descriptors in this process and across the workers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, FILE_LIMIT)), hard))


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
    return subprocess.Popen(  # noqa: S603 - our own interpreter, manage.py, redis-server
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
        process.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"{what} did not start; see {log}")
        time.sleep(0.1)


def start_redis(workdir: Path, maxclients: int) -> tuple[subprocess.Popen, int]:
    """A private redis-server: the bench's thousands of sockets never reach a shared one."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    log = workdir / "redis.log"
    process = spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--maxclients", str(maxclients)],
        log,
    )  # fmt: skip
    wait_for_port(port, process, "redis-server", log)
    return process, port


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def setup_data(sessions: int):
    """A vendor with one paid order and a signed-in member: the order and `sessions` cookies
    of the member's."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.sessions.backends.base import VALID_KEY_CHARS
    from django.contrib.sessions.models import Session
    from django.test import Client
    from django.utils.crypto import get_random_string

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
    client = Client()
    client.force_login(member)
    signed_in = client.session
    # Each socket its own browser: `sessions` copies of the member's session (the worst case
    # for the per-message session check), left out of the cache as after a cold start.
    rows = [
        Session(
            session_key=get_random_string(32, VALID_KEY_CHARS),
            session_data=signed_in.encode(dict(signed_in.items())),
            expire_date=signed_in.get_expiry_date(),
        )
        for _ in range(sessions)
    ]
    Session.objects.bulk_create(rows, batch_size=1000)
    return order, [f"{settings.SESSION_COOKIE_NAME}={row.session_key}" for row in rows]


def record_captured(order) -> tuple[float, int]:
    """A service's transaction: record PaymentCaptured; the time of the commit and the
    event's sequence (the order row it pushes carries it as data-seq)."""
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


def summary(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 1) if values else float("nan"),
        "p50": round(statistics.median(values), 1) if values else float("nan"),
        "p99": round(percentile(values, 0.99), 1) if values else float("nan"),
        "max": round(max(values), 1) if values else float("nan"),
    }


PROBE = """
import sys, time, redis
pubsub = redis.Redis(port=int(sys.argv[1])).pubsub(ignore_subscribe_messages=True)
pubsub.psubscribe("*__group__*")
print("ready", flush=True)
for message in pubsub.listen():
    channel = message["channel"].decode().split("__group__", 1)[1]
    print(time.perf_counter(), channel, len(message["data"]), flush=True)
"""


class Probe:
    """A process subscribed to every group's channel on the bench's Redis: when each group's
    message was published and how big it was (perf_counter is the machine's monotonic clock,
    the same in every process)."""

    def __init__(self, redis_port: int) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", PROBE, str(redis_port)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the Redis probe did not start")
        self.published: list[tuple[float, str, int]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            at, group, size = line.split()
            self.published.append((float(at), group, int(size)))

    def after(self, committed: float) -> dict[str, tuple[float, int]]:
        """Each group's first publish after `committed`: ms after it, and bytes."""
        found: dict[str, tuple[float, int]] = {}
        for at, group, size in list(self.published):
            if at >= committed and group not in found:
                found[group] = ((at - committed) * 1000, size)
        return found


async def time_event(feed: Feed, order, timeout: float, probe: Probe):
    """Commit one event; the milliseconds until it reached each socket (by page), and until
    each group's message was published (with its size)."""
    feed.start_round()
    committed, sequence = await asyncio.to_thread(record_captured, order)
    arrived = await feed.arrivals(sequence, timeout=timeout)
    # Groups by kind: vendor-7-orders → vendor-orders.
    published = {re.sub(r"-\d+", "", group): one for group, one in probe.after(committed).items()}
    return {page: [(t - committed) * 1000 for t in times] for page, times in arrived.items()}, (
        published
    )


def vendor_pages(order, mix: dict[str, int]) -> list[Page]:
    """One of each page of the mix, repeated by its weight (sockets take them in turn)."""
    pages = {
        "orders": Page(
            "orders",
            "/ws/vendor/orders/",
            re.compile(rf'id="order-row-{order.pk}" data-seq="(\d+)"'.encode()),
        ),
        "dashboard": Page(
            "dashboard", "/ws/vendor/dashboard/", re.compile(b'id="dashboard-tiles"')
        ),
        "nav": Page("nav", "/ws/vendor/", re.compile(b'id="orders-badge"')),
    }
    return [pages[name] for name, weight in mix.items() for _ in range(weight)]


def sockets_for(pages: list[Page], first: int, count: int) -> list[Page]:
    return [pages[n % len(pages)] for n in range(first, first + count)]


async def run_bench(options, port: int, order, cookies: list[str], watch, probe) -> dict:
    origin = f"http://127.0.0.1:{port}"
    feed = Feed(
        "127.0.0.1", port, lambda n: {"Cookie": cookies[n % len(cookies)], "Origin": origin}
    )
    pages = vendor_pages(order, options.mix)
    figures: dict = {"mix": options.mix}
    rss_before = watch.rss()

    failed = await feed.open(sockets_for(pages, 0, options.latency_clients))
    for _ in range(5):  # warm up pools, templates and caches
        await time_event(feed, order, 10, probe)
    latencies: dict[str, list[float]] = {}
    published: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    missed = 0
    cpu_before = watch.cpu_ms()
    for _ in range(options.events):
        arrived, groups = await time_event(feed, order, 10, probe)
        for page, times in arrived.items():
            latencies.setdefault(page, []).extend(times)
        for group, (after, size) in groups.items():
            published.setdefault(group, []).append(after)
            sizes[group] = size
        missed += len(feed.sockets) - sum(map(len, arrived.values()))
    cpu_after = watch.cpu_ms()
    every = [t for times in latencies.values() for t in times]
    figures["at_latency_clients"] = {
        "cpu_ms_per_event": {
            name: round((cpu_after[name] - cpu_before[name]) / options.events, 1)
            for name in cpu_after
        },
        "sockets": len(feed.sockets),
        "sockets_by_page": dict(Counter(page.name for page in feed.page_of.values())),
        "failed_to_connect": failed,
        "events": options.events,
        "commit_to_browser_ms": summary(every),
        "commit_to_browser_ms_by_page": {p: summary(t) for p, t in sorted(latencies.items())},
        "commit_to_publish_ms_by_group": {g: summary(t) for g, t in sorted(published.items())},
        "message_bytes_by_group": sizes,
        "missed_arrivals": missed,
        "redis_connections": watch.redis(),
    }

    started = time.perf_counter()
    more = max(0, options.clients - len(feed.sockets))
    failed = await feed.open(sockets_for(pages, len(feed.sockets), more))
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(2)  # let the last handshakes' work settle before sampling
    rss_after = watch.rss()
    grown_kib = sum(rss_after.values()) - sum(rss_before.values())
    rounds = []
    for _ in range(options.rounds):
        arrived, _groups = await time_event(feed, order, 30, probe)
        every = [t for times in arrived.values() for t in times]
        rounds.append(
            {
                "reached": len(every),
                **summary(every),
                "by_page": {p: summary(t) for p, t in sorted(arrived.items())},
            }
        )
        await asyncio.sleep(0.5)
    figures["at_clients"] = {
        "sockets": len(feed.sockets),
        "failed_to_connect": failed,
        "connect_more_s": round(connect_seconds, 1),
        "fanout_rounds": rounds,
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
        "kib_per_socket": round(grown_kib / max(1, len(feed.sockets)), 1),
        "redis_connections": watch.redis(),
    }
    feed.close()
    return figures


class Watch:
    """The server's processes: their RSS, and the Redis connections each holds."""

    def __init__(self, server: subprocess.Popen, dispatcher: subprocess.Popen, redis_port: int):
        self.server, self.dispatcher, self.redis_port = server, dispatcher, redis_port

    def processes(self) -> dict[int, str]:
        workers = [
            pid
            for pid in redis_clients.children(self.server.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ] or [self.server.pid]
        named = {pid: f"web-{n}" for n, pid in enumerate(sorted(workers), 1)}
        if workers != [self.server.pid]:
            named[self.server.pid] = "web-supervisor"
        named[self.dispatcher.pid] = "dispatcher"
        named[os.getpid()] = "bench"
        return named

    def rss(self) -> dict[str, int]:
        return {
            name: rss_kib(pid) for pid, name in self.processes().items() if name.startswith("web-")
        }

    def cpu_ms(self) -> dict[str, float]:
        """CPU time (user + system) each server process has used so far, in ms."""
        tick = os.sysconf("SC_CLK_TCK")
        used = {}
        for pid, name in self.processes().items():
            if name.startswith("web-") or name == "dispatcher":
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[name] = (int(fields[11]) + int(fields[12])) * 1000 / tick
        return used

    def redis(self) -> dict[str, dict[str, int]]:
        return {
            name: dict(commands.most_common())
            for name, commands in sorted(
                redis_clients.connections_by_process(self.redis_port, self.processes()).items()
            )
        }


def report(figures: dict, options) -> None:
    small, big = figures["at_latency_clients"], figures["at_clients"]
    latency = small["commit_to_browser_ms"]
    print(
        f"events: commit → browser at {small['sockets']} sockets on one vendor feed "
        f"({small['sockets_by_page']}), {small['events']} events: min {latency['min']} ms, "
        f"p50 {latency['p50']} ms, p99 {latency['p99']} ms, max {latency['max']} ms "
        f"({small['missed_arrivals']} arrivals missed)"
    )
    for page, by_page in small["commit_to_browser_ms_by_page"].items():
        print(f"        {page} pages: {by_page}")
    print(f"events: CPU per event (ms, /proc utime+stime): {small['cpu_ms_per_event']}")
    for group, by_group in small["commit_to_publish_ms_by_group"].items():
        size = small["message_bytes_by_group"][group]
        print(f"events: commit → publish to the {group} group ({size} bytes): {by_group}")
    print(
        f"events: {big['sockets']} sockets open ({big['failed_to_connect']} failed), the last "
        f"{options.clients - small['sockets']} connected in {big['connect_more_s']} s"
    )
    for n, fan in enumerate(big["fanout_rounds"], 1):
        print(
            f"events: fan-out {n} to {big['sockets']}: reached {fan['reached']}, commit → browser "
            f"min {fan['min']} ms, p50 {fan['p50']} ms, p99 {fan['p99']} ms, max {fan['max']} ms"
        )
        for page, by_page in fan["by_page"].items():
            print(f"        {page} pages: {by_page}")
    print(
        f"events: memory {big['kib_per_socket']} KiB per websocket "
        f"(workers' RSS {big['rss_kib_before']} → {big['rss_kib_after']} KiB)"
    )
    for label, entry in (
        ("at " + str(small["sockets"]), small),
        ("at " + str(big["sockets"]), big),
    ):
        per_process = {
            name: sum(commands.values()) for name, commands in entry["redis_connections"].items()
        }
        print(f"events: Redis connections per process {label} sockets: {per_process}")
        print(f"        by last command: {entry['redis_connections']}")


def mix_of(text: str) -> dict[str, int]:
    mix = {name: int(weight) for name, weight in (part.split("=") for part in text.split(","))}
    if not mix or set(mix) - {"orders", "dashboard", "nav"} or min(mix.values()) < 1:
        raise argparse.ArgumentTypeError(f"not a mix of orders, dashboard and nav: {text}")
    return mix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--latency-clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis-maxclients", type=int, default=10000)
    parser.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="permessage-deflate on the sockets (compressing each message once per socket)",
    )
    parser.add_argument(
        "--sessions", type=int, default=0, help="distinct sessions (default: one per socket)"
    )
    parser.add_argument(
        "--mix",
        type=mix_of,
        default="orders=2,dashboard=1,nav=1",
        help="the sockets' pages and their weights: orders (the order list), dashboard, nav "
        "(any other backoffice page)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()

    raise_file_limit()
    logs = BASE_DIR / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bazaar-events-bench-"))
    redis_server, redis_port = start_redis(workdir, options.redis_maxclients)
    ENV["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    os.environ.update(ENV)
    server = dispatcher = probe = None
    try:
        ensure_database()
        order, cookies = setup_data(options.sessions or options.clients)
        port = free_port()
        ENV["SITE_URL"] = f"http://127.0.0.1:{port}"
        server = spawn(
            [sys.executable, "-m", "uvicorn", "project.asgi:application",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--workers", str(options.workers), "--backlog", "4096", "--ws-max-queue", "64",
             "--ws-per-message-deflate", str(options.deflate).lower()],
            logs / "events-uvicorn.log",
        )  # fmt: skip
        dispatcher = spawn(
            [sys.executable, "manage.py", "run_dispatcher", "--poll", "1"],
            logs / "events-dispatcher.log",
        )
        wait_for_port(port, server, "uvicorn", logs / "events-uvicorn.log")
        time.sleep(2.0)  # every worker up, the dispatcher's LISTEN
        watch = Watch(server, dispatcher, redis_port)
        probe = Probe(redis_port)
        figures = asyncio.run(run_bench(options, port, order, cookies, watch, probe))
    finally:
        for process in (probe.process if probe else None, dispatcher, server, redis_server):
            if process is not None:
                stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
    report(figures, options)
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
