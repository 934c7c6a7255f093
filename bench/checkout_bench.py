"""Checkout benchmark: signed-in shoppers looping the checkout over HTTP, then a stampede on
the last units of one product.

Runs the production shape on the local PostgreSQL and Redis: gunicorn's sync workers serving
project.wsgi (--web-workers 2, DEBUG off; `--server` another shape of bench/support.py),
`manage.py run_dispatcher`, and the real `critical` Django-Q2 worker (`manage.py run_worker
critical`), which charges the simulated gateway.

1. Anatomy (in this process, through the full middleware with Django's test client, so the
   figures do not depend on the machine's load): CPU milliseconds (process_time) and SQL
   queries of each step of the journey, over --anatomy journeys.
2. Journey: --shoppers signed-in shoppers (threads, one cookie jar each), each looping
   product page → add to cart (an htmx POST, as the browser sends it: X-CSRFToken, HX-Request,
   HX-Target, HX-Current-URL) → cart → address step → choose the address → review → place
   order → the order page, for --seconds, pausing --think seconds on each page give or take
   --spread of it (shoppers start at random moments of their first journey: with one fixed
   pause all of them stayed in step and pressed "Place order" together). Reports p50/p99
   per step, orders/s, the payment created → captured latency of the orders placed (the
   critical worker's), and how long the disk took to sync a write meanwhile (every commit
   waits for one: a disk that stalls shows in every step's p99).
3. Stampede: --buyers shoppers sign in at once, each puts one of a product with --units left
   in its cart, and they all press "Place order" at once. Exactly --units orders must be
   placed, every other buyer must be sent back to the cart with a message saying so, stock
   must end at 0 and no request may fail with a 5xx; the run exits non-zero otherwise.

    .venv/bin/python bench/checkout_bench.py [--shoppers 16] [--seconds 30] [--buyers 64]

Uses BENCH_DATABASE_URL (default: database bazaar_bench_checkout on DATABASE_URL's server,
created and migrated if missing, emptied on every run) and BENCH_REDIS_URL (default: db 15 on
REDIS_URL's server, key prefix bazaar-bench-checkout). Logs go to var/bench/checkout-*.log.
"""

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
_server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", f"{_server.split('?')[0].rpartition('/')[0]}/bazaar_bench_checkout"
)
_redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", f"{_redis.rpartition('/')[0]}/15")
WORK_DIR = Path(tempfile.mkdtemp(prefix="bazaar-checkout-bench-"))
LOGS = BASE_DIR / "var" / "bench"
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "CACHE_KEY_PREFIX": "bazaar-bench-checkout",
    "DJANGO_DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "TASKS_BACKEND": "project.background.backend.DjangoQ2Backend",
    "EVENTS_EMBEDDED_DISPATCHER": "0",
    "BAZAAR_VAR_DIR": str(WORK_DIR),
    "SIMULATED_GATEWAY_LEDGER_PATH": str(WORK_DIR / "ledger.sqlite3"),
    # Shoppers here place an order every second or so: far above the card-testing limits.
    "RATE_LIMIT_CHECKOUT_USER": "1000000/600",
    "RATE_LIMIT_PAY_USER": "1000000/600",
    "PYTHONUNBUFFERED": "1",
}
os.environ.update(ENV)
sys.path.insert(0, str(BASE_DIR))

from bench.support import (  # noqa: E402
    SERVING_SHAPES,
    ensure_database,
    free_port,
    percentile,
    stop,
)

PASSWORD = "x-bench-checkout-1"  # noqa: S105 - throwaway accounts in a bench database
CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_HEADER = re.compile(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'')
ADDRESS_RE = re.compile(r'name="address" value="(\d+)"[^>]*checked')
ORDER_PATH = re.compile(r"/orders/(\d+)/$")
SOLD_OUT = "has sold out"
STEPS = ["product", "add", "cart", "address", "choose", "review", "place_order", "order"]


class Failed(Exception):
    """A step answered something a browser would not have continued from."""


# --- setup ---------------------------------------------------------------------------------


def reset_database() -> None:
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:  # the audit table refuses TRUNCATE unless asked
        cursor.execute("SET bazaar.audit_allow_truncate = 'on'")
    call_command("flush", interactive=False, verbosity=0)
    cache.clear()


def seed(*, shoppers: int, buyers: int, products: int, units: int) -> dict:
    """A vendor with products in deep stock, one product with `units` left, and verified
    shoppers with a default address, all with PASSWORD (hashed once: argon2 is slow)."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import Address, User
    from shop.models import Category, Product, Vendor, VendorStatus

    vendor = Vendor.objects.create(
        name="Bench Goods", slug="bench-goods", status=VendorStatus.APPROVED
    )
    category = Category.objects.create(name="Bench", slug="bench")
    Product.objects.bulk_create(
        Product(
            vendor=vendor,
            category=category,
            name=f"Bench item {n}",
            slug=f"bench-item-{n}",
            price=Decimal("12.50") + n,
            stock=1_000_000,
        )
        for n in range(products)
    )
    last = Product.objects.create(
        vendor=vendor,
        category=category,
        name="Last Edition",
        slug="last-edition",
        price=Decimal("99.00"),
        stock=units,
    )
    password = make_password(PASSWORD)
    now = timezone.now()
    users = User.objects.bulk_create(
        User(
            email=f"{role}{n}@bench.local",
            full_name=f"{role.title()} {n}",
            password=password,
            email_verified_at=now,
        )
        for role, count in (("shopper", shoppers), ("buyer", buyers))
        for n in range(count)
    )
    addresses = Address.objects.bulk_create(
        Address(
            user=user,
            full_name=user.full_name,
            line1=f"{n} Bench Road",
            city="Berlin",
            postal_code="10115",
            country="DE",
        )
        for n, user in enumerate(users)
    )
    for user, address in zip(users, addresses, strict=True):
        user.default_address = address
    User.objects.bulk_update(users, ["default_address"])
    catalogue = list(
        Product.objects.exclude(pk=last.pk).order_by("pk").values("id", "slug", "name")
    )
    return {
        "shoppers": [u.email for u in users[:shoppers]],
        "buyers": [u.email for u in users[shoppers:]],
        "catalogue": catalogue,
        "last": {"id": last.pk, "slug": last.slug, "name": last.name},
    }


# --- processes -----------------------------------------------------------------------------


def spawn(name: str, args: list[str]) -> subprocess.Popen:
    log = (LOGS / f"checkout-{name}.log").open("wb")
    return subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


# The pages' server, as `make run` and the image serve them (gunicorn's sync workers), or any
# other shape of bench/support.py to compare (`--server uvicorn`, `--server gunicorn-gthread`).
SERVERS = SERVING_SHAPES


def start_processes(port: int, web_workers: int, server: str) -> list[subprocess.Popen]:
    heartbeat = WORK_DIR / "worker-critical.alive"
    command = [arg.format(port=port, workers=web_workers) for arg in SERVERS[server]]
    processes = [
        spawn("web", command),
        spawn("dispatcher", ["manage.py", "run_dispatcher"]),
        spawn(
            "worker-critical",
            ["manage.py", "run_worker", "critical", "--heartbeat-file", str(heartbeat)],
        ),
    ]
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as sock:
            serving = sock.connect_ex(("127.0.0.1", port)) == 0
        if serving and heartbeat.exists():
            return processes
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            for process in processes:
                stop(process)
            raise SystemExit(f"the server or the worker did not start; see {LOGS}/checkout-*")
        time.sleep(0.1)


# --- the browser ---------------------------------------------------------------------------


class Browser:
    """One shopper's browser: a cookie jar, the CSRF token of the last page, step timings."""

    def __init__(self, base: str, think: float = 0, spread: float = 0) -> None:
        self.base = base
        # Seconds spent on each page before the next request: `think`, give or take `spread`
        # of it (drawn anew for every page), as no two people read a page for the same time.
        self.think = think
        self.spread = spread
        self.http = requests.Session()
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.recording = True
        self.statuses: list[int] = []
        self.resent = 0
        self.page = ""
        self.url = ""

    def send(self, step: str, method: str, path: str, **kwargs) -> requests.Response:
        if self.think:
            time.sleep(self.think * random.uniform(1 - self.spread, 1 + self.spread))
        started = time.perf_counter()
        try:
            response = self.http.request(
                method, self.base + path, allow_redirects=False, timeout=60, **kwargs
            )
        except requests.ConnectionError as exc:
            if "RemoteDisconnected" not in str(exc):
                raise
            # The server closed this idle keep-alive connection as the request went out
            # (nothing was answered, so nothing was done): a browser sends it again, so do we.
            self.resent += 1
            response = self.http.request(
                method, self.base + path, allow_redirects=False, timeout=60, **kwargs
            )
        if self.recording:
            self.timings[step].append((time.perf_counter() - started) * 1000)
        self.statuses.append(response.status_code)
        if response.status_code >= 500:
            raise Failed(f"{method} {path}: HTTP {response.status_code}")
        return response

    def get(self, step: str, path: str) -> requests.Response:
        response = self.send(step, "GET", path)
        if response.status_code != 200:
            raise Failed(f"GET {path}: HTTP {response.status_code}")
        self.page, self.url = response.text, path
        return response

    def submit(self, step: str, path: str, data: dict) -> requests.Response:
        """A form POST from the page last shown, as the browser sends it (no redirect followed)."""
        token = CSRF_FIELD.search(self.page)
        if token is None:
            raise Failed(f"no CSRF token on {self.url}")
        return self.send(
            step,
            "POST",
            path,
            data={"csrfmiddlewaretoken": token.group(1), **data},
            headers={"Referer": self.base + self.url, "Origin": self.base},
        )

    def hx_post(self, step: str, path: str, data: dict, target: str) -> requests.Response:
        """An htmx POST: the token from the body's hx-headers, htmx's own request headers."""
        token = CSRF_HEADER.search(self.page)
        if token is None:
            raise Failed(f"no hx-headers CSRF token on {self.url}")
        response = self.send(
            step,
            "POST",
            path,
            data=data,
            headers={
                "X-CSRFToken": token.group(1),
                "HX-Request": "true",
                "HX-Target": target,
                "HX-Current-URL": self.base + self.url,
                "Referer": self.base + self.url,
                "Origin": self.base,
            },
        )
        if response.status_code != 200:
            raise Failed(f"htmx POST {path}: HTTP {response.status_code}")
        return response

    def sign_in(self, email: str) -> None:
        self.get("login_page", "/accounts/login/")
        response = self.submit(
            "sign_in", "/accounts/login/", {"email": email, "password": PASSWORD}
        )
        if response.status_code != 302:
            raise Failed(f"sign-in of {email}: HTTP {response.status_code}")

    def fill_cart(self, product: dict, quantity: int = 1) -> None:
        self.get("product", f"/p/{product['slug']}/")
        added = self.hx_post(
            "add",
            "/cart/add/",
            {"product_id": product["id"], "quantity": quantity},
            target="add-to-cart-result",
        )
        if "Added" not in added.text:
            raise Failed(f"add to cart refused: {added.text[:200]}")

    def to_review(self) -> None:
        self.get("cart", "/cart/")
        self.get("address", "/checkout/")
        choice = ADDRESS_RE.search(self.page)
        if choice is None:
            raise Failed("no saved address chosen on the address step")
        chosen = self.submit("choose", "/checkout/", {"address": choice.group(1)})
        if chosen.headers.get("Location") != "/checkout/review/":
            raise Failed(f"address step answered {chosen.status_code}")
        self.get("review", "/checkout/review/")

    def place_order(self) -> requests.Response:
        return self.submit("place_order", "/checkout/review/", CARD)


# --- 1. anatomy ----------------------------------------------------------------------------


def anatomy(data: dict, journeys: int, profile_to: Path | None) -> dict:
    """CPU ms and queries per step in this process, through the whole middleware stack."""
    from django.db import connection, reset_queries
    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(email=data["shoppers"][0]))
    product = data["catalogue"][0]
    cpu: dict[str, list[float]] = defaultdict(list)
    queries: dict[str, list[int]] = defaultdict(list)
    profiler = cProfile.Profile(time.process_time)  # CPU time: the machine's load left out
    connection.force_debug_cursor = True

    def step(name: str, call, *, profile: bool = False):
        reset_queries()
        started = time.process_time()
        if profile:
            profiler.enable()
        response = call()
        if profile:
            profiler.disable()
        cpu[name].append((time.process_time() - started) * 1000)
        queries[name].append(len(connection.queries))
        if response.status_code >= 400:
            raise Failed(f"anatomy {name}: HTTP {response.status_code}")
        return response

    page = f"/p/{product['slug']}/"
    address_id = str(User.objects.get(email=data["shoppers"][0]).default_address_id)
    htmx = {"HX-Request": "true", "HX-Target": "add-to-cart-result", "HX-Current-URL": page}
    calls = [
        ("product", lambda: client.get(page)),
        (
            "add",
            lambda: client.post(
                "/cart/add/", {"product_id": product["id"], "quantity": 1}, headers=htmx
            ),
        ),
        ("cart", lambda: client.get("/cart/")),
        ("address", lambda: client.get("/checkout/")),
        ("choose", lambda: client.post("/checkout/", {"address": address_id})),
        ("review", lambda: client.get("/checkout/review/")),
        ("place_order", lambda: client.post("/checkout/review/", CARD)),
    ]
    for n in range(journeys + 3):
        warm = n >= 3  # the first journeys fill caches, pools and templates
        for name, call in calls:
            if warm:
                response = step(
                    name, call, profile=profile_to is not None and name == "place_order"
                )
            else:
                response = call()
        location = response.headers.get("Location", "")
        if not ORDER_PATH.search(location):
            raise Failed(f"anatomy: place order answered {response.status_code} {location}")
        if warm:
            step("order", lambda location=location: client.get(location))
        else:
            client.get(location)
    connection.force_debug_cursor = False
    if profile_to is not None:
        profiler.dump_stats(profile_to)
        stats = pstats.Stats(profiler, stream=sys.stdout)
        print(f"\nplace order, CPU profile over {journeys} requests (top 40 by cumulative time):")
        stats.sort_stats("cumulative").print_stats(40)
    return {
        name: {
            "cpu_ms": round(statistics.median(cpu[name]), 2),
            "queries": max(queries[name]),
        }
        for name in STEPS
    }


# --- 2. the journey under load -------------------------------------------------------------


def probe_disk_syncs(until: threading.Event, every: float = 0.1) -> list[float]:
    """Milliseconds of each 8 KB write + fdatasync to a file in the work dir, every `every`
    seconds until `until` is set: what each commit's WAL flush waits for, when the work dir is on
    the database's disk (as here: a commit's latency follows its disk's)."""
    path = WORK_DIR / "disk-probe"
    durations: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while not until.wait(every):
            started = time.perf_counter()
            os.pwrite(fd, b"\0" * 8192, 0)
            os.fdatasync(fd)
            durations.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return durations


def journey(
    base: str,
    data: dict,
    shoppers: int,
    seconds: float,
    warmup: float,
    think: float,
    spread: float,
) -> dict:
    browsers = [Browser(base, think=think, spread=spread) for _ in range(shoppers)]
    for browser, email in zip(browsers, data["shoppers"], strict=True):
        browser.sign_in(email)
    measuring = threading.Event()
    stopping = threading.Event()
    orders: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    catalogue = data["catalogue"]

    def loop(index: int, browser: Browser) -> None:
        n = index
        if spread:  # shoppers arrive one by one over a journey's time, not all at once
            time.sleep(random.uniform(0, think * len(STEPS)))
        while not stopping.is_set():
            n += shoppers
            try:
                browser.fill_cart(catalogue[n % len(catalogue)])
                browser.to_review()
                placed = browser.place_order()
                match = ORDER_PATH.search(placed.headers.get("Location", ""))
                if match is None:
                    raise Failed(f"place order answered {placed.status_code}")
                browser.get("order", match.group(0))
                if measuring.is_set():
                    with lock:
                        orders.append(int(match.group(1)))
            except (Failed, requests.RequestException) as exc:
                with lock:
                    failures.append(str(exc))

    threads = [
        threading.Thread(target=loop, args=(i, b), daemon=True) for i, b in enumerate(browsers)
    ]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    for browser in browsers:
        browser.timings.clear()
        browser.recording = True
    measuring.set()
    started = time.perf_counter()
    disk_done = threading.Event()
    disk: list[float] = []
    prober = threading.Thread(target=lambda: disk.extend(probe_disk_syncs(disk_done)))
    prober.start()
    time.sleep(seconds)
    measuring.clear()
    disk_done.set()
    prober.join()
    for browser in browsers:
        browser.recording = False
    elapsed = time.perf_counter() - started
    stopping.set()
    for thread in threads:
        thread.join(timeout=120)
    timings: dict[str, list[float]] = defaultdict(list)
    for browser in browsers:
        for step, values in browser.timings.items():
            timings[step] += values
    return {
        "shoppers": shoppers,
        "think_s": think,
        "spread": spread,
        "seconds": round(elapsed, 1),
        "orders": len(orders),
        "orders_per_s": round(len(orders) / elapsed, 2),
        "failures": failures,
        "steps": {
            step: {
                "n": len(timings[step]),
                "p50": round(statistics.median(timings[step]), 1),
                "p99": round(percentile(timings[step], 0.99), 1),
            }
            for step in STEPS
            if timings[step]
        },
        "disk_sync_ms": {
            "n": len(disk),
            "p50": round(statistics.median(disk), 1) if disk else None,
            "p99": round(percentile(disk, 0.99), 1) if disk else None,
            "max": round(max(disk), 1) if disk else None,
            "over_50": sum(1 for value in disk if value > 50),
        },
        "order_ids": orders,
    }


def payment_latency(order_ids: list[int], timeout: float = 120) -> dict:
    """Created → captured of the payments of these orders, once the worker has caught up with
    every payment (so the next run does not share the machine with this one's charges)."""
    from django.db.models import F

    from shop.models import Payment, PaymentStatus

    payments = Payment.objects.filter(order_id__in=order_ids)
    deadline = time.monotonic() + timeout
    while Payment.objects.exclude(status=PaymentStatus.CAPTURED).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    latencies = [
        row.total_seconds() * 1000
        for row in payments.filter(status=PaymentStatus.CAPTURED)
        .annotate(latency=F("updated_at") - F("created_at"))
        .values_list("latency", flat=True)
    ]
    return {
        "payments": payments.count(),
        "captured": len(latencies),
        "p50": round(statistics.median(latencies), 1) if latencies else None,
        "p99": round(percentile(latencies, 0.99), 1) if latencies else None,
    }


def sign_in_burst(base: str, emails: list[str]) -> dict:
    """Everyone signs in at the same moment: argon2's hash is a quarter of a second of CPU
    each, so most of them wait, and none may fail for want of a database connection."""
    browsers = [Browser(base) for _ in emails]
    gate = threading.Barrier(len(browsers))
    failures: list[str] = []

    def sign_in(browser: Browser, email: str) -> None:
        try:
            browser.get("login_page", "/accounts/login/")
            gate.wait(timeout=120)
            response = browser.submit(
                "sign_in", "/accounts/login/", {"email": email, "password": PASSWORD}
            )
            if response.status_code != 302:
                raise Failed(f"sign-in answered {response.status_code}")
        except (Failed, requests.RequestException, threading.BrokenBarrierError) as exc:
            failures.append(repr(exc))
            gate.abort()

    threads = [
        threading.Thread(target=sign_in, args=(b, e), daemon=True)
        for b, e in zip(browsers, emails, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    times = [t for b in browsers for t in b.timings["sign_in"]]
    return {
        "at_once": len(browsers),
        "signed_in": len(browsers) - len(failures),
        "server_errors": sum(1 for b in browsers for s in b.statuses if s >= 500),
        "failures": failures[:3],
        "p50": round(statistics.median(times), 1) if times else None,
        "max": round(max(times), 1) if times else None,
    }


# --- 3. the stampede -----------------------------------------------------------------------


def stampede(base: str, data: dict, units: int, browsers_at_once: int) -> dict:
    """The buyers sign in, fill their carts and reach the review step (`browsers_at_once` at
    a time); then all of them press "Place order" at the same moment."""
    from shop.models import Order, Payment, Product

    buyers = [Browser(base) for _ in data["buyers"]]
    outcome: dict[str, list] = defaultdict(list)
    lock = threading.Lock()
    gate = threading.Barrier(len(buyers))
    getting_ready = threading.Semaphore(browsers_at_once)

    def buy(browser: Browser, email: str) -> None:
        try:
            with getting_ready:
                browser.sign_in(email)
                browser.fill_cart(data["last"])
                browser.to_review()
            gate.wait(timeout=600)
            placed = browser.place_order()
            location = placed.headers.get("Location", "")
            if ORDER_PATH.search(location):
                kind = "ordered"
            else:
                cart = browser.get("cart", location) if location == "/cart/" else None
                kind = "told" if cart is not None and SOLD_OUT in cart.text else "unclear"
        except (Failed, requests.RequestException, threading.BrokenBarrierError) as exc:
            kind = f"failed: {exc!r}"
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.abort()
        with lock:
            outcome[kind].append(email)

    threads = [
        threading.Thread(target=buy, args=(b, e), daemon=True)
        for b, e in zip(buyers, data["buyers"], strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    placing = [t for b in buyers for t in b.timings["place_order"]]
    resent = sum(b.resent for b in buyers)
    statuses = [s for b in buyers for s in b.statuses]
    return {
        "buyers": len(buyers),
        "units": units,
        "ordered": len(outcome["ordered"]),
        "told_sold_out": len(outcome["told"]),
        "other": {k: len(v) for k, v in outcome.items() if k not in ("ordered", "told")},
        "server_errors": sum(1 for s in statuses if s >= 500),
        "resent": resent,
        "stock_left": Product.objects.get(pk=data["last"]["id"]).stock,
        "orders_in_db": Order.objects.filter(lines__product_id=data["last"]["id"]).count(),
        "payments_in_db": Payment.objects.filter(
            order__lines__product_id=data["last"]["id"]
        ).count(),
        "place_order_ms": {
            "p50": round(statistics.median(placing), 1),
            "p99": round(percentile(placing, 0.99), 1),
        }
        if placing
        else None,
    }


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shoppers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument(
        "--think",
        type=float,
        nargs="+",
        default=[0.0, 0.5],
        help="seconds each shopper spends on a page; one journey run per value (0: flat out)",
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=0.5,
        help="each pause is --think give or take this share of it, and shoppers start at "
        "random moments of their first journey (0: every shopper in step with the others)",
    )
    parser.add_argument("--buyers", type=int, default=64)
    parser.add_argument("--units", type=int, default=10)
    parser.add_argument("--sign-ins", type=int, default=24, help="sign-ins at the same moment")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--server", choices=sorted(SERVERS), default="gunicorn-sync")
    parser.add_argument("--anatomy", type=int, default=20, help="in-process journeys profiled")
    parser.add_argument("--profile", type=Path, help="write place order's cProfile stats here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--anatomy-only", action="store_true", help="only the in-process figures (no servers)"
    )
    options = parser.parse_args()

    LOGS.mkdir(parents=True, exist_ok=True)
    ensure_database(DATABASE_URL)
    reset_database()
    data = seed(shoppers=options.shoppers, buyers=options.buyers, products=50, units=options.units)
    from django.conf import settings
    from django.db import connection

    print(f"Checkout benchmark ({os.cpu_count()} CPUs; work dir {WORK_DIR})")
    figures: dict = {"anatomy": anatomy(data, options.anatomy, options.profile)}
    connection.close()
    print(f"\nPer step, in-process through the middleware (median of {options.anatomy}):")
    print(f"  {'step':<12} {'CPU ms':>7} {'queries':>8}")
    for step, row in figures["anatomy"].items():
        print(f"  {step:<12} {row['cpu_ms']:>7.2f} {row['queries']:>8}")
    if options.anatomy_only:
        return

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes = start_processes(port, options.web_workers, options.server)
    try:
        runs = []
        for think in options.think:
            run = journey(
                base, data, options.shoppers, options.seconds, options.warmup, think, options.spread
            )
            # Its charges are settled before the next run starts.
            run["payment"] = payment_latency(run.pop("order_ids"))
            runs.append(run)
        burst = sign_in_burst(base, data["buyers"][: options.sign_ins])
        rush = stampede(base, data, options.units, options.shoppers)
    finally:
        for process in reversed(processes):
            stop(process)
    figures |= {"journeys": runs, "sign_in": burst, "stampede": rush}

    for run in runs:
        print(
            f"\n{run['shoppers']} signed-in shoppers over HTTP ({options.server}, "
            f"{options.web_workers} workers), {run['think_s']} s on each page "
            f"(± {run['spread']:.0%}), "
            f"{run['seconds']} s: {run['orders']} orders, {run['orders_per_s']} orders/s"
        )
        print(f"  {'step':<12} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}")
        for step, row in run["steps"].items():
            print(f"  {step:<12} {row['n']:>6} {row['p50']:>8} {row['p99']:>8}")
        if run["failures"]:
            print(f"  failed journeys: {len(run['failures'])}, e.g. {run['failures'][:3]}")
        sync = run["disk_sync_ms"]
        print(
            f"  the disk meanwhile (8 KB write + fdatasync every 0.1 s in the work dir): p50 "
            f"{sync['p50']} ms, p99 {sync['p99']} ms, max {sync['max']} ms, "
            f"{sync['over_50']} of {sync['n']} over 50 ms"
        )
        payments = run["payment"]
        print(
            f"  payment created → captured (critical worker, gateway latency "
            f"{settings.SIMULATED_GATEWAY_LATENCY_MS} ms): {payments['captured']} of "
            f"{payments['payments']} captured, p50 {payments['p50']} ms, "
            f"p99 {payments['p99']} ms"
        )
    print(
        f"\n{rush['buyers']} buyers of the last {rush['units']} units: {rush['ordered']} orders, "
        f"{rush['told_sold_out']} told it sold out, other {rush['other']}, "
        f"{rush['server_errors']} server errors, stock left {rush['stock_left']}, "
        f"{rush['orders_in_db']} orders and {rush['payments_in_db']} payments in the database"
    )
    print(
        f"  place order, all at once: p50 {rush['place_order_ms']['p50']} ms, "
        f"p99 {rush['place_order_ms']['p99']} ms"
        if rush["place_order_ms"]
        else "  nobody reached the review step"
    )
    print(
        f"\n{burst['at_once']} sign-ins at the same moment: {burst['signed_in']} signed in, "
        f"{burst['server_errors']} server errors, p50 {burst['p50']} ms, max {burst['max']} ms"
        + (f"; failures {burst['failures']}" if burst["failures"] else "")
    )
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))
    correct = (
        rush["ordered"] == rush["orders_in_db"] == rush["payments_in_db"] == options.units
        and rush["told_sold_out"] == options.buyers - options.units
        and rush["server_errors"] == 0
        and burst["signed_in"] == burst["at_once"]
        and rush["stock_left"] == 0
        and not any(run["failures"] for run in runs)
    )
    if not correct:
        raise SystemExit("checkout bench: the checkout misbehaved under load (see above)")


if __name__ == "__main__":
    main()
