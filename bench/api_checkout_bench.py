"""API checkout against the HTML checkout: 16 concurrent clients each, p50/p99 side by side.

The same production shape as bench/checkout_bench.py (whose setup, server and browsers this
reuses): gunicorn's sync workers serving project.wsgi (--web-workers 2, DEBUG off; the API's
async views run in an event loop per request there; `--server uvicorn` for the ASGI shape), the
event dispatcher and the
real `critical` Django-Q2 worker charging the simulated gateway, on the local PostgreSQL and
Redis.

1. HTML: --clients signed-in browsers loop product page → add to cart (htmx) → cart → address
   → review → place order → order page, for --seconds (checkout_bench's journey, no thinking).
2. API: --clients apps, each with its access token (POST /api/v1/auth/token), loop
   POST /api/v1/cart/items → POST /api/v1/orders/ with a fresh payment token, for --seconds.
   The token is made by the simulated processor in this process, outside the timing (a real
   app's card form gets it from the processor, not from us).

Reported: add to cart and place order, p50/p99 ms, and orders/s, for both; and first, the
same two steps in this process through the whole middleware (Django's test client), as CPU
milliseconds and SQL queries per request, which do not depend on the machine's load. Exits
non-zero if any request failed.

    .venv/bin/python bench/api_checkout_bench.py [--clients 16] [--seconds 20]

Uses BENCH_DATABASE_URL (default: database bazaar_bench_api_checkout on DATABASE_URL's server,
created and migrated if missing, emptied on every run) and BENCH_REDIS_URL (default: db 15 on
REDIS_URL's server, key prefix bazaar-bench-api-checkout). Logs go to var/bench/checkout-*.log.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

_server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar")
os.environ.setdefault(
    "BENCH_DATABASE_URL", f"{_server.split('?')[0].rpartition('/')[0]}/bazaar_bench_api_checkout"
)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from bench import checkout_bench as html  # noqa: E402 - sets the bench's environment
from bench.support import ensure_database, free_port, percentile, stop  # noqa: E402

html.ENV["CACHE_KEY_PREFIX"] = os.environ["CACHE_KEY_PREFIX"] = "bazaar-bench-api-checkout"


class App:
    """One API client: its access token, a keep-alive connection, timings per call."""

    def __init__(self, base: str, email: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.timings: dict[str, list[float]] = {"add": [], "place_order": []}
        self.recording = False
        answer = self.http.post(
            f"{base}/api/v1/auth/token",
            json={"email": email, "password": html.PASSWORD},
            timeout=60,
        )
        if answer.status_code != 200:
            raise html.Failed(f"token for {email}: HTTP {answer.status_code}")
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def call(self, step: str, path: str, body: dict, expect: int) -> dict:
        started = time.perf_counter()
        response = self.http.post(self.base + path, json=body, timeout=60)
        if self.recording:
            self.timings[step].append((time.perf_counter() - started) * 1000)
        if response.status_code != expect:
            raise html.Failed(f"POST {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    def buy(self, product: dict, address_id: int) -> int:
        cart = self.call("add", "/api/v1/cart/items", {"product_id": product["id"]}, 200)
        token = payment_token()
        order = self.call(
            "place_order",
            "/api/v1/orders/",
            {"address_id": address_id, "payment_token": token, "expected_total": cart["total"]},
            201,
        )
        return order["id"]


def payment_token() -> str:
    from shop.gateways import simulated

    card = html.CARD
    month, year = (int(part) for part in card["expiry"].split("/"))
    return (
        simulated.SimulatedGateway()
        .tokenize_card(number=card["card_number"], exp_month=month, exp_year=year, cvc=card["cvc"])
        .token
    )


def api_journey(base: str, data: dict, clients: int, seconds: float, warmup: float) -> dict:
    from accounts.models import User

    addresses = dict(
        User.objects.filter(email__in=data["shoppers"]).values_list("email", "default_address_id")
    )
    apps = [App(base, email) for email in data["shoppers"][:clients]]
    stopping = threading.Event()
    measuring = threading.Event()
    orders: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    catalogue = data["catalogue"]

    def loop(index: int, app: App, address_id: int) -> None:
        n = index
        while not stopping.is_set():
            n += clients
            try:
                order_id = app.buy(catalogue[n % len(catalogue)], address_id)
                if measuring.is_set():
                    with lock:
                        orders.append(order_id)
            except (html.Failed, requests.RequestException) as exc:
                with lock:
                    failures.append(str(exc))

    threads = [
        threading.Thread(target=loop, args=(i, app, addresses[data["shoppers"][i]]), daemon=True)
        for i, app in enumerate(apps)
    ]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    for app in apps:
        app.recording = True
    measuring.set()
    started = time.perf_counter()
    time.sleep(seconds)
    measuring.clear()
    for app in apps:
        app.recording = False
    elapsed = time.perf_counter() - started
    stopping.set()
    for thread in threads:
        thread.join(timeout=120)
    steps = {}
    for step in ("add", "place_order"):
        values = [value for app in apps for value in app.timings[step]]
        steps[step] = {
            "n": len(values),
            "p50": round(statistics.median(values), 1) if values else None,
            "p99": round(percentile(values, 0.99), 1) if values else None,
        }
    return {
        "seconds": round(elapsed, 1),
        "orders": len(orders),
        "orders_per_s": round(len(orders) / elapsed, 2),
        "failures": failures,
        "steps": steps,
    }


def api_anatomy(data: dict, orders: int) -> dict:
    """CPU ms (median) and SQL queries (most) of the API's add to cart and place order, in this
    process, over `orders` orders after three to warm up."""
    import json

    from django.db import connection, reset_queries
    from django.test import Client

    from accounts.models import User
    from api import tokens

    user = User.objects.get(email=data["shoppers"][0])
    access, _ = tokens.issue_access_token(user=user)
    client = Client(headers={"Authorization": f"Bearer {access}"})
    product = data["catalogue"][0]
    cpu: dict[str, list[float]] = {"add": [], "place_order": []}
    queries: dict[str, list[int]] = {"add": [], "place_order": []}
    connection.force_debug_cursor = True

    def step(name: str, path: str, body: dict, expect: int, *, warm: bool) -> None:
        reset_queries()
        started = time.process_time()
        response = client.post(path, json.dumps(body), content_type="application/json")
        if warm:
            cpu[name].append((time.process_time() - started) * 1000)
            queries[name].append(len(connection.queries))
        if response.status_code != expect:
            raise html.Failed(f"anatomy {path}: HTTP {response.status_code}")

    for n in range(orders + 3):
        step("add", "/api/v1/cart/items", {"product_id": product["id"]}, 200, warm=n >= 3)
        body = {"address_id": user.default_address_id, "payment_token": payment_token()}
        step("place_order", "/api/v1/orders/", body, 201, warm=n >= 3)
    connection.force_debug_cursor = False
    return {
        name: {"cpu_ms": round(statistics.median(cpu[name]), 2), "queries": max(queries[name])}
        for name in cpu
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--server", choices=sorted(html.SERVERS), default="gunicorn-sync")
    parser.add_argument("--anatomy", type=int, default=20, help="in-process orders profiled")
    options = parser.parse_args()

    html.LOGS.mkdir(parents=True, exist_ok=True)
    ensure_database(html.DATABASE_URL)
    html.reset_database()
    data = html.seed(shoppers=options.clients, buyers=0, products=50, units=1)
    from django.db import connection

    cost = {
        "html": html.anatomy(data, options.anatomy, None),
        "api": api_anatomy(data, options.anatomy),
    }
    connection.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes = html.start_processes(port, options.web_workers, options.server)
    try:
        pages = html.journey(base, data, options.clients, options.seconds, options.warmup, 0, 0)
        api = api_journey(base, data, options.clients, options.seconds, options.warmup)
    finally:
        for process in reversed(processes):
            stop(process)

    print(
        f"\nCheckout, HTML pages against the API: {options.clients} concurrent clients each, "
        f"{options.seconds:g} s ({options.server}, {options.web_workers} workers; "
        f"{os.cpu_count()} CPUs)"
    )
    print(f"  {'':<24} {'HTML p50':>9} {'p99':>8} {'API p50':>9} {'p99':>8}")
    for step, label in (("add", "add to cart"), ("place_order", "place order")):
        left, right = pages["steps"].get(step, {}), api["steps"][step]
        print(
            f"  {label + ' (ms)':<24} {left.get('p50')!s:>9} {left.get('p99')!s:>8} "
            f"{right['p50']!s:>9} {right['p99']!s:>8}"
        )
    print(
        f"  {'orders/s':<24} {pages['orders_per_s']:>9} {'':>8} {api['orders_per_s']:>9}\n"
        f"  (an HTML order is 8 requests: product, add, cart, address, choose, review, place, "
        f"order page; an API order is 2)"
    )
    print(f"\n  in-process, per request (median of {options.anatomy}): CPU ms / SQL queries")
    for step, label in (("add", "add to cart"), ("place_order", "place order")):
        left, right = cost["html"][step], cost["api"][step]
        print(
            f"  {label:<24} HTML {left['cpu_ms']:>7.2f} ms / {left['queries']:>3}    "
            f"API {right['cpu_ms']:>7.2f} ms / {right['queries']:>3}"
        )
    failures = pages["failures"] + api["failures"]
    if failures:
        raise SystemExit(f"api checkout bench: {len(failures)} failed, e.g. {failures[:3]}")


if __name__ == "__main__":
    main()
