"""Page cache benchmark: CPU per request and queries for the anonymous catalogue pages with the
page cache off, on a miss and on a hit, and the hit ratio of a browsing mix with sales.

In process, through the whole middleware stack (Django's test client, DEBUG off), so the
figures are CPU time (`time.process_time`), which a busy machine disturbs far less than wall
time. Redis and PostgreSQL are real; their own CPU is not counted, their round trips are in
the wall-clock column.

    .venv/bin/python bench/page_cache_bench.py [--products 1000] [--requests 30] [--mix 2000]

Uses BENCH_DATABASE_URL (default: database bazaar_bench_pagecache on DATABASE_URL's server,
created, migrated and filled if missing) and REDIS_URL with its own key prefix.
"""

import argparse
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
_server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", f"{_server.split('?')[0].rpartition('/')[0]}/bazaar_bench_pagecache"
)
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
        "CACHE_KEY_PREFIX": "bazaar-bench-pagecache",
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "EVENTS_EMBEDDED_DISPATCHER": "0",
    }
)
sys.path.insert(0, str(BASE_DIR))


def ensure_database() -> None:
    """Create the benchmark's database when the server has none of that name."""
    import psycopg
    from psycopg import sql

    server, _, name = DATABASE_URL.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def fill(products: int) -> None:
    from shop.models import Category, Product, Vendor, VendorStatus

    if Product.objects.count() >= products:
        return
    rng = random.Random(12)
    vendors = Vendor.objects.bulk_create(
        Vendor(name=f"Shop {n}", slug=f"shop-{n}", status=VendorStatus.APPROVED) for n in range(10)
    )
    categories = Category.objects.bulk_create(
        Category(name=f"Category {n}", slug=f"category-{n}") for n in range(8)
    )
    words = ["oak", "linen", "walnut", "mug", "candle", "board", "towel", "lamp", "bowl", "jar"]
    Product.objects.bulk_create(
        (
            Product(
                vendor=vendors[n % len(vendors)],
                category=categories[n % len(categories)],
                name=f"{rng.choice(words).title()} {rng.choice(words)} {n}",
                slug=f"product-{n}",
                description=f"A {rng.choice(words)} made with care.",
                price=Decimal(rng.randrange(100, 20000)) / 100,
                stock=rng.randrange(0, 60),
            )
            for n in range(products)
        ),
        batch_size=1000,
    )


PAGES = {
    "home": "/",
    "listing": "/products/",
    "listing p3": "/products/?page=3",
    "category": "/c/category-3/",
    "search": "/products/?q=oak+board",
    "product": "/p/product-7/",
    "results fragment": (
        "/products/?q=oak",
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "product-results"},
    ),
}


def measure(path_and_headers, *, requests: int, before=None) -> tuple[float, float, int, str]:
    """Median CPU ms, median wall ms, queries and the X-Page-Cache of the last request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    path, headers = (
        path_and_headers if isinstance(path_and_headers, tuple) else (path_and_headers, {})
    )
    cpu, wall, queries, state = [], [], 0, ""
    client = Client()  # one handler (loading the middleware is not a request's cost)
    for _ in range(requests):
        if before:
            before()
        client.cookies.clear()  # a first-time visitor each time
        with CaptureQueriesContext(connection) as captured:
            started_cpu, started = time.process_time(), time.perf_counter()
            response = client.get(path, **headers)
            cpu.append((time.process_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        queries = len(captured)
        state = response.get("X-Page-Cache", "-")
    return statistics.median(cpu), statistics.median(wall), queries, state


def browsing_mix(total: int, *, sale_every: int) -> tuple[int, int]:
    """Anonymous visitors on a skewed mix of pages, with a sale (stock -1) every `sale_every`
    requests. Returns (hits, misses)."""
    from django.test import Client

    from shop.models import Product
    from shop.services import stock as stock_services

    rng = random.Random(7)
    products = list(Product.objects.filter(stock__gt=0).select_related("vendor")[:200])
    paths = (
        ["/"] * 20
        + ["/products/"] * 15
        + [f"/products/?page={n}" for n in range(2, 8)]
        + [f"/c/category-{n}/" for n in range(8)] * 2
        + [f"/products/?q={word}" for word in ("oak", "linen", "mug", "lamp")]
    )
    hits = misses = 0
    client = Client()
    for n in range(total):
        if n % sale_every == sale_every - 1:
            product = rng.choice(products)
            if product.stock > 0:
                stock_services.adjust_stock(
                    product_id=product.pk,
                    vendor=product.vendor,
                    change=-1,
                    reason="correction",
                    acting_user=None,
                )
                product.stock -= 1
        if rng.random() < 0.5:
            path = rng.choice(paths)
        else:  # product pages: a few popular ones, a long tail
            path = rng.choice(products[:20] if rng.random() < 0.6 else products).get_absolute_url()
        client.cookies.clear()
        response = client.get(path)
        if response.get("X-Page-Cache") == "hit":
            hits += 1
        else:
            misses += 1
    return hits, misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--mix", type=int, default=2000)
    parser.add_argument("--sale-every", type=int, default=20)
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings, setup_test_environment

    from project import page_cache

    setup_test_environment()  # the test client on ALLOWED_HOSTS' testserver
    call_command("migrate", verbosity=0)
    fill(args.products)

    def bump() -> None:
        page_cache.bump([page_cache.CATALOGUE, page_cache.product_scope("product-7")])

    print(
        f"{args.products} products; median of {args.requests} requests; CPU ms (wall ms), queries"
    )
    print(f"{'page':18} {'cache off':>18} {'miss':>18} {'hit':>18}")
    for name, page in PAGES.items():
        with override_settings(PAGE_CACHE_SECONDS=0):
            measure(page, requests=3)
            off = measure(page, requests=args.requests)
        miss = measure(page, requests=args.requests, before=bump)
        measure(page, requests=1)
        hit = measure(page, requests=args.requests)
        if (miss[3], hit[3]) != ("miss", "hit"):
            raise SystemExit(f"{name}: expected a miss and a hit, got {miss[3]} and {hit[3]}")
        cells = [f"{cpu:6.1f} ({wall:5.1f}) {q:2}q" for cpu, wall, q, _ in (off, miss, hit)]
        print(
            f"{name:18} " + " ".join(f"{cell:>18}" for cell in cells) + f"   x{off[0] / hit[0]:.0f}"
        )

    bump()
    hits, misses = browsing_mix(args.mix, sale_every=args.sale_every)
    print(
        f"browsing mix: {args.mix} anonymous requests, a sale every {args.sale_every}: "
        f"hit ratio {hits / (hits + misses):.0%} ({hits} hits, {misses} misses)"
    )


if __name__ == "__main__":
    main()
