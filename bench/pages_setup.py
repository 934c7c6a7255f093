"""What the page benchmark and the page profile share: the settings, the data, the pages.

Both run the production shape (PostgreSQL, Redis cache and sessions, DEBUG off) on a database
of their own, BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bazaar_bench_pages,
created and migrated if missing), and BENCH_REDIS_URL (default redis://127.0.0.1:6379/12).

BENCH_APP_DIR=/path/to/checkout measures another checkout of Bazaar (e.g. an older commit, for
a before/after table) with this checkout's bench: its code serves the pages, and its schema
gets a database of its own (the database name ends with the checkout's commit).
"""

import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
OWN_DIR = BENCH_DIR.parent
APP_DIR = Path(os.environ.get("BENCH_APP_DIR") or OWN_DIR).resolve()
VAR_DIR = OWN_DIR / "var" / "bench"


def _app_commit() -> str:
    result = subprocess.run(  # noqa: S603 - git on a path we were given
        ["git", "-C", str(APP_DIR), "rev-parse", "--short=8", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


APP_COMMIT = _app_commit()
_default_database = "bazaar_bench_pages" + ("" if APP_DIR == OWN_DIR else f"_{APP_COMMIT}")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{_default_database}"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ENV = {
    **os.environ,
    # The product's settings with the references' URLconf (bench/pages_reference/).
    "DJANGO_SETTINGS_MODULE": "pages_reference.settings",
    "PYTHONPATH": os.pathsep.join(
        [str(BENCH_DIR), str(APP_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    ),
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "CACHE_KEY_PREFIX": "bazaar-bench-pages",
    "DJANGO_DEBUG": "0",
    # The production default: one JSON access line per request is part of what a page costs.
    "LOG_LEVEL": "INFO",
    "EVENTS_EMBEDDED_DISPATCHER": "0",
    "BAZAAR_VAR_DIR": str(VAR_DIR / "app-var"),
}
for name in ("BAZAAR_MODE", "DATABASE_MIGRATE_URL", "REDIS_SENTINELS", "DATABASE_PGBOUNCER"):
    ENV.pop(name, None)

PRODUCT_COUNT = 1000
SEARCH_WORD = "linen"
BENCH_PASSWORD = "x-bench-pw-1"  # noqa: S105 - a throwaway account in a bench database
SHOPPER_EMAIL = "bench-shopper@bench.local"
NEWEST_AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def configure(access_log: str) -> None:
    """Set this process up like the benchmark's server processes, and start Django; its log
    lines (one JSON access line per request, as in production) go to var/bench/<access_log>."""
    import logging

    os.environ.update(ENV)
    for path in (str(APP_DIR), str(BENCH_DIR)):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    import django

    django.setup()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    stream = (VAR_DIR / access_log).open("a")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)


def ensure_database() -> None:
    """Create the bench database if missing, migrate it, and add the reference POST's table."""
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1].split("?")[0]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(  # noqa: S603 - our own interpreter and the app's manage.py
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=APP_DIR,
        env=ENV,
        check=True,
    )
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_reference_row "
            "(id bigserial PRIMARY KEY, note text NOT NULL, created_at timestamptz "
            "NOT NULL DEFAULT now())"
        )


@dataclass(frozen=True)
class Visitor:
    """One browser: its cookies, and the CSRF token its pages carry."""

    name: str
    cookie: str
    csrf_token: str
    # What an anonymous visitor without a cart sends: the CSRF cookie, no session.
    catalogue_cookie: str

    def cookie_for(self, page: "Page") -> str:
        return self.cookie if page.with_cart else self.catalogue_cookie


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    method: str = "GET"
    form: dict[str, str] = field(default_factory=dict)
    # The reference the page is compared with (None: the page is a reference).
    reference: str | None = "reference GET"
    headers: dict[str, str] = field(default_factory=dict)
    # Sent with the cart's session (anonymous visitors browse the catalogue without one).
    with_cart: bool = False

    def body(self, visitor: Visitor) -> str:
        from urllib.parse import urlencode

        if self.method != "POST":
            return ""
        return urlencode({**self.form, "csrfmiddlewaretoken": visitor.csrf_token})


@dataclass(frozen=True)
class Scenario:
    pages: list[Page]
    visitors: list[Visitor]


def seed() -> Scenario:
    """1,000 products of the demo's shape (bulk inserted once), a shopper, and two visitors,
    anonymous and signed in, each with a cart of 3 lines."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from shop.models import Product
    from shop.services import demo

    with transaction.atomic():
        vendors = [demo._vendor(name, text) for name, text in demo.VENDORS]
        categories = [demo._category(name) for name in demo.CATEGORIES]
        if Product.objects.filter(slug__startswith="bench-").count() < PRODUCT_COUNT:
            Product.objects.filter(slug__startswith="bench-").delete()
            _insert_products(vendors, categories)
    user_model = get_user_model()
    shopper = user_model.objects.filter(email=SHOPPER_EMAIL).first()
    if shopper is None:
        shopper = user_model.objects.create_user(
            SHOPPER_EMAIL, BENCH_PASSWORD, email_verified_at=timezone.now()
        )
    products = list(Product.objects.filter(slug__startswith="bench-").order_by("id")[:3])
    # The cart's lines take what the POST adds: stock that a bench run never exhausts.
    Product.objects.filter(pk__in=[p.pk for p in products]).update(stock=1_000_000_000)
    product, category = products[0], products[0].category
    visitors = [_visitor("anonymous", None, products), _visitor("signed in", shopper, products)]
    add = {"product_id": str(product.pk), "quantity": "1"}
    pages = [
        Page("reference GET", "/__bench__/products/", reference=None),
        Page(
            "reference POST",
            "/__bench__/write/",
            "POST",
            {"note": "bench"},
            reference=None,
            with_cart=True,
        ),
        Page("home", "/"),
        Page("product listing (24)", "/products/"),
        Page("category", category.get_absolute_url()),
        Page("search", f"/products/?q={SEARCH_WORD}"),
        Page("product", product.get_absolute_url()),
        Page(
            "add to cart (POST)",
            "/cart/add/",
            "POST",
            add,
            reference="reference POST",
            headers={"HX-Request": "true"},
            with_cart=True,
        ),
        Page("cart with 3 lines", "/cart/", with_cart=True),
    ]
    return Scenario(pages=pages, visitors=visitors)


def _insert_products(vendors: list, categories: list) -> None:
    from django.utils.text import slugify

    from shop.models import Product
    from shop.services import demo

    rng = random.Random(demo.SEED)
    nouns = list(demo.CATEGORIES.values())
    rows = []
    for index in range(PRODUCT_COUNT):
        noun = nouns[index % len(nouns)][(index // len(nouns)) % 5]
        adjective = demo.ADJECTIVES[(index * 7 + index // 60) % len(demo.ADJECTIVES)]
        name = f"{adjective} {noun}"
        vendor = vendors[rng.randrange(len(vendors))]
        slug = f"bench-{slugify(name)}-{index + 1:04d}"
        # Every product shows an image with its thumbnails made, as the demo's do.
        image = f"products/demo/{slug}.jpg"
        rows.append(
            Product(
                vendor=vendor,
                category=categories[index % len(categories)],
                name=name,
                slug=slug,
                description=(
                    f"A {adjective.lower()} {noun.lower()} from {vendor.name}. "
                    f"{rng.choice(demo.PRAISE)}"
                ),
                price=Decimal(rng.randint(4, 180)) + Decimal(rng.choice([0, 50, 90, 95, 99])) / 100,
                stock=rng.choice([0, 2, 4, *range(6, 60)]),
                image=image,
                image_width=960,
                image_height=720,
                thumbnails_for=image,
            )
        )
    products = Product.objects.bulk_create(rows, batch_size=500)
    for index, product in enumerate(products):
        product.created_at = NEWEST_AT - timedelta(hours=3 * index)
    Product.objects.bulk_update(products, ["created_at"], batch_size=500)


def _visitor(name: str, user, products: list) -> Visitor:
    """A browser's cookies after it signed in (or not) and put 3 products in its cart, with
    the CSRF token of the product page it was shown."""
    from django.conf import settings
    from django.test import Client

    from shop.models import CartItem

    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
        CartItem.objects.filter(cart__user=user).delete()
    page = client.get(products[0].get_absolute_url())
    assert page.status_code == 200, page.status_code  # noqa: S101 - a bench's sanity check
    token = CSRF_INPUT.search(page.content.decode()).group(1)
    for product in products:
        response = client.post(
            "/cart/add/",
            {"product_id": product.pk, "quantity": 1, "csrfmiddlewaretoken": token},
            headers={"HX-Request": "true"},
        )
        assert response.status_code == 200, response.status_code  # noqa: S101
    csrf = f"{settings.CSRF_COOKIE_NAME}={client.cookies[settings.CSRF_COOKIE_NAME].value}"
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return Visitor(
        name=name,
        cookie=f"{cookie}; {csrf}",
        csrf_token=token,
        catalogue_cookie=csrf if user is None else f"{cookie}; {csrf}",
    )
