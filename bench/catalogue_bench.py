"""Catalogue benchmark: the shopper's catalogue pages on 1,000,000 products.

    .venv/bin/python bench/catalogue_bench.py [--products 1000000] [--requests 60]
                                              [--regenerate]

1. Its own database (BENCH_DATABASE_URL, default bazaar_bench_catalogue on DATABASE_URL's
   server) set up as production has it: owned and migrated by an owner role, read by an app
   role that row-level security binds (docs/database-security.md). The catalogue is
   generated once with COPY (products named and described from a word list, 40 shops of
   which 4 are not approved, 24 categories, stock from none to hundreds, 3 % inactive,
   created over two years) and reused while it holds that many products.
2. Each page is requested single client through the whole Django stack (middleware,
   sessions, templates) in this process, connected as the app role: a warm-up, then
   `--requests` timed requests, anonymous. Prints p50/p99 and the queries per page, then
   the EXPLAIN (ANALYZE, BUFFERS) plan of each page's slowest statement.

Not part of the test suite; `make bench` runs it. Needs a role that may create databases and
roles (the default superuser URL of the test services). The first run takes minutes.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

_server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar")
ADMIN_URL = _server.split("?")[0]
SERVER, _, _ = ADMIN_URL.rpartition("/")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", f"{SERVER}/bazaar_bench_catalogue")
DATABASE_NAME = DATABASE_URL.rpartition("/")[2]
OWNER, APP = "bazaar_bench_catalogue_owner", "bazaar_bench_catalogue_app"
HOST_PART = SERVER.split("@")[-1]
OWNER_URL = f"postgres://{OWNER}:{OWNER}@{HOST_PART}/{DATABASE_NAME}"
APP_URL = f"postgres://{APP}:{APP}@{HOST_PART}/{DATABASE_NAME}"

ADJECTIVES = [
    "classic",
    "modern",
    "rustic",
    "vintage",
    "compact",
    "large",
    "small",
    "handmade",
    "sturdy",
    "elegant",
    "minimalist",
    "cozy",
    "bright",
    "dark",
    "soft",
    "slim",
    "round",
    "square",
    "folding",
    "portable",
    "foldable",
    "stackable",
    "premium",
    "everyday",
    "tall",
    "low",
    "wide",
    "narrow",
    "light",
    "heavy",
    "woven",
    "carved",
    "painted",
    "polished",
    "brushed",
    "recycled",
    "organic",
    "washable",
    "waterproof",
    "quilted",
    "padded",
    "adjustable",
]
MATERIALS = [
    "oak",
    "walnut",
    "pine",
    "birch",
    "bamboo",
    "teak",
    "maple",
    "cherry",
    "ash",
    "beech",
    "steel",
    "brass",
    "copper",
    "iron",
    "aluminium",
    "glass",
    "ceramic",
    "stoneware",
    "porcelain",
    "marble",
    "concrete",
    "leather",
    "linen",
    "cotton",
    "wool",
    "velvet",
    "jute",
    "rattan",
    "wicker",
    "cork",
    "felt",
    "silk",
    "hemp",
    "denim",
    "canvas",
]
COLOURS = [
    "red",
    "blue",
    "green",
    "yellow",
    "black",
    "white",
    "grey",
    "navy",
    "teal",
    "olive",
    "ochre",
    "amber",
    "ivory",
    "charcoal",
    "mustard",
    "coral",
    "sage",
    "terracotta",
    "cream",
    "blush",
]
NOUNS = [
    "chair",
    "table",
    "lamp",
    "sofa",
    "stool",
    "bench",
    "desk",
    "shelf",
    "bookcase",
    "cabinet",
    "dresser",
    "wardrobe",
    "mirror",
    "rug",
    "cushion",
    "blanket",
    "throw",
    "curtain",
    "basket",
    "vase",
    "bowl",
    "plate",
    "mug",
    "cup",
    "teapot",
    "jug",
    "tray",
    "candle",
    "holder",
    "clock",
    "frame",
    "planter",
    "pot",
    "bed",
    "pillow",
    "duvet",
    "towel",
    "apron",
    "bag",
    "backpack",
    "wallet",
    "belt",
    "scarf",
    "hat",
    "glove",
    "sock",
    "jacket",
    "sweater",
    "shirt",
    "dress",
    "skirt",
    "trousers",
    "shoes",
    "boots",
    "sandals",
    "slippers",
    "umbrella",
    "notebook",
    "journal",
    "pen",
    "pencil",
    "case",
    "box",
    "crate",
    "hook",
    "rail",
    "stand",
    "trolley",
    "cart",
    "lantern",
    "pendant",
    "sconce",
    "chandelier",
    "kettle",
    "skillet",
    "pan",
    "knife",
    "board",
    "spoon",
    "ladle",
    "whisk",
    "grater",
    "colander",
]
QUALITIES = [
    "made by hand in a small workshop",
    "finished with natural oil",
    "easy to clean",
    "built to last for years",
    "packed without plastic",
    "a gift that gets used every day",
    "sized for small flats",
    "designed and made locally",
    "sold in limited batches",
    "repairable, with spare parts available",
]
CATEGORIES = [
    "Furniture",
    "Lighting",
    "Textiles",
    "Kitchen",
    "Tableware",
    "Storage",
    "Decor",
    "Bedroom",
    "Bathroom",
    "Garden",
    "Stationery",
    "Bags",
    "Accessories",
    "Clothing",
    "Footwear",
    "Outdoor",
    "Kids",
    "Pets",
    "Office",
    "Crafts",
    "Gifts",
    "Vintage",
    "Wellness",
    "Tools",
]
VENDORS = 40
NOT_APPROVED = {7: "suspended", 15: "pending", 23: "rejected", 31: "suspended"}
CREATED_SPAN = timedelta(days=730)
# Products whose name the benchmark's pages look for.
SEARCHES = {
    "search, one word": "chair",
    "search, two words": "oak table",
    "search, a typo (corrected)": "chiar",
}


def admin_connect(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(f"{SERVER}/{dbname}", autocommit=True)


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": APP_URL,
        "DATABASE_MIGRATE_URL": OWNER_URL,
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "0",
    }


def prepare_database() -> None:
    """The two roles, the database (owned by the owner) and its migrations."""
    os.environ.update(environment())
    from project.db import roles

    with admin_connect() as admin, admin.cursor() as cursor:
        roles.ensure_roles(cursor, owner=roles.Role(OWNER, OWNER), app=roles.Role(APP, APP))
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME])
        if cursor.fetchone() is None:
            cursor.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(DATABASE_NAME), sql.Identifier(OWNER)
                )
            )
    with admin_connect(DATABASE_NAME) as admin:
        admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(OWNER)))
    subprocess.run(  # noqa: S603 - this interpreter and manage.py
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        env=environment(),
        cwd=BASE_DIR,
        check=True,
    )


def drop_database() -> None:
    with admin_connect() as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE_NAME))
        )


def product_count() -> int:
    with psycopg.connect(OWNER_URL) as owner:
        owner.execute("SELECT set_config('app.vendor_id', 'system', false)")
        return owner.execute("SELECT count(*) FROM shop_product").fetchone()[0]


def product_rows(count: int, *, categories: int, first_id: int = 1):
    """Rows for COPY into shop_product: deterministic, varied, realistic enough to search."""
    rng = random.Random(first_id)  # noqa: S311 - benchmark data, not security
    now = datetime.now(UTC)
    for number in range(first_id, first_id + count):
        noun = rng.choice(NOUNS)
        words = [rng.choice(ADJECTIVES), rng.choice(MATERIALS), noun]
        if rng.random() < 0.4:
            words.insert(1, rng.choice(COLOURS))
        name = " ".join(words).capitalize()
        other = rng.choice(NOUNS)
        description = (
            f"A {words[-2]} {noun}, {rng.choice(QUALITIES)}. "
            f"Pairs well with our {rng.choice(MATERIALS)} {other}; {rng.choice(QUALITIES)}."
        )
        created = now - CREATED_SPAN * rng.random()
        stock = 0 if rng.random() < 0.15 else int(rng.paretovariate(1.2) * 3)
        yield (
            rng.randrange(1, VENDORS + 1),
            rng.randrange(1, categories + 1),
            name,
            f"{'-'.join(words).lower()}-{number}",
            description,
            f"{rng.randrange(300, 90000) / 100:.2f}",
            min(stock, 5000),
            rng.random() >= 0.03,
            created,
            created,
        )


def generate(count: int) -> None:
    """Vendors, categories and `count` products by COPY, as the superuser: PostgreSQL refuses
    COPY FROM into a table under row-level security for any other role. The search documents
    are written by the migration's statement trigger, once per COPY."""
    print(f"Generating {count:,} products (once; reused while the database holds them)…")
    started = time.monotonic()
    with psycopg.connect(f"{SERVER}/{DATABASE_NAME}") as owner:
        owner.execute(
            "TRUNCATE shop_product, shop_productsearch, shop_searchword, shop_category, "
            "shop_vendor RESTART IDENTITY CASCADE"
        )
        for number in range(1, VENDORS + 1):
            owner.execute(
                "INSERT INTO shop_vendor (name, slug, description, contact_email, "
                "contact_phone, payout_details, status, review_note, created_at) "
                "VALUES (%s, %s, '', '', '', '', %s, '', now())",
                [
                    f"Workshop {number:02d}",
                    f"workshop-{number:02d}",
                    NOT_APPROVED.get(number, "approved"),
                ],
            )
        for name in CATEGORIES:
            owner.execute(
                "INSERT INTO shop_category (name, slug, description) VALUES (%s, %s, '')",
                [name, name.lower()],
            )
        owner.commit()
        batch = 100_000
        columns = (
            "vendor_id, category_id, name, slug, description, price, stock, is_active, "
            "created_at, updated_at"
        )
        for first in range(1, count + 1, batch):
            rows = product_rows(
                min(batch, count - first + 1), categories=len(CATEGORIES), first_id=first
            )
            with owner.cursor().copy(
                f"COPY shop_product ({columns}, image, thumbnails_for) FROM STDIN"  # noqa: S608
            ) as copy:
                for row in rows:
                    copy.write_row((*row, "", ""))
            owner.commit()
            print(
                f"  {first + batch - 1:,} products, {time.monotonic() - started:.0f} s", flush=True
            )
    with admin_connect(DATABASE_NAME) as admin:
        admin.execute(
            "VACUUM (ANALYZE) shop_vendor, shop_category, shop_product, shop_productsearch, "
            "shop_searchword"
        )
    print(f"Generated in {time.monotonic() - started:.0f} s.")


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(requests: int) -> None:
    """Time each page through the whole stack as the app role; plans of the slowest statement."""
    import django

    os.environ.update(environment())
    os.environ["DATABASE_MIGRATE_URL"] = ""
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from project.listings import COUNT_LIMIT
    from shop.models import Category, Product
    from shop.selectors import catalogue
    from shop.views.catalogue import PAGE_SIZE

    category = Category.objects.order_by("id")[3]
    product = Product.objects.filter(is_active=True).order_by("-id").only("slug")[500]
    deepest = -(-COUNT_LIMIT // PAGE_SIZE)
    pages = {
        "home": "/",
        "listing, page 1": "/products/",
        f"listing, page {deepest} (the deepest)": f"/products/?page={deepest}",
        "listing, by price": "/products/?sort=price_asc",
        "a category": category.get_absolute_url(),
        **{label: f"/products/?q={query.replace(' ', '+')}" for label, query in SEARCHES.items()},
        "product page": product.get_absolute_url(),
    }
    client = Client()
    results = []
    for label, url in pages.items():
        for _ in range(3):
            assert client.get(url).status_code == 200, url
        timings, cpu = [], []
        for _ in range(requests):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert response.status_code == 200, url
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        slowest = max(queries.captured_queries, key=lambda query: float(query["time"]))
        # The search's matches are sent as "SET …; SELECT …; RESET …": the SELECT is explained.
        statement = slowest["sql"].removeprefix(f"{catalogue.STABLE_SCANS}; ")
        statement = statement.removesuffix("; RESET synchronize_seqscans")
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")  # noqa: S608
            plan = [row[0] for row in cursor.fetchall()]
        results.append((label, url, timings, cpu, len(queries), slowest["sql"], plan))

    print(
        f"\nCatalogue pages, {Product.objects.count():,} products, single client, anonymous, "
        f"{requests} requests each (ms). cpu: this process's CPU time per request (Python: "
        "middleware, ORM, templates), steadier than wall time on a loaded machine. Slowest "
        "statement: its time and the buffers it touched, under EXPLAIN ANALYZE."
    )
    print(
        f"{'page':<34} {'p50':>7} {'p99':>7} {'cpu p50':>8} {'queries':>8} "
        f"{'slowest':>8} {'buffers':>8}"
    )
    for label, _, timings, cpu, query_count, _, plan in results:
        print(
            f"{label:<34} {statistics.median(timings):7.1f} {percentile(timings, 0.99):7.1f} "
            f"{statistics.median(cpu):8.1f} {query_count:8d} {_execution_ms(plan):8.1f} "
            f"{_buffers(plan):8d}"
        )
    for label, url, _, _, _, statement, plan in results:
        print(f"\n--- {label}: {url}\n{statement}\n")
        print("\n".join(plan))


def _execution_ms(plan: list[str]) -> float:
    line = next(line for line in plan if line.startswith("Execution Time:"))
    return float(line.split()[2])


def _buffers(plan: list[str]) -> int:
    """Shared buffers the whole statement touched (hit + read), from the plan's top node."""
    line = next((line for line in plan if "Buffers: shared" in line), "")
    return sum(
        int(part.split("=")[1]) for part in line.split() if part.startswith(("hit=", "read="))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--regenerate", action="store_true", help="drop and generate again")
    args = parser.parse_args()
    if args.regenerate:
        drop_database()
    prepare_database()
    if product_count() != args.products:
        generate(args.products)
    measure(args.requests)


if __name__ == "__main__":
    main()
