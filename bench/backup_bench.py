"""Backup and restore benchmark: `manage.py backup` and `manage.py restore` timed on the demo
data (`seed_demo`: 500 products with their pictures) and on 100,000 orders.

    .venv/bin/python bench/backup_bench.py [--orders 100000] [--skip-demo]

1. A fresh database (BENCH_DATABASE_URL, default bazaar_bench_backup on DATABASE_URL's
   server, dropped and created on every run) is migrated and seeded with `seed_demo`; it is
   backed up, and restored into a second, empty database (…_restore) with its media going to
   an empty folder: both timed as an operator runs them (each its own `manage.py` process).
2. Shoppers, orders, order lines and payments are bulk-created on top of the demo catalogue
   (1 to 4 lines per order; 70 % paid, 10 % shipped, 10 % awaiting payment, 10 % cancelled;
   dated over the past year), then backup and restore are timed again.

Prints one table and the backup's size. Not part of `make test`; `make bench-backup` runs it.
Needs a role that may create databases (the default superuser URL of the test services).
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
_server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", f"{_server.split('?')[0].rpartition('/')[0]}/bazaar_bench_backup"
)
RESTORE_URL = f"{DATABASE_URL}_restore"
WORK_DIR = Path(tempfile.mkdtemp(prefix="bazaar-backup-bench-"))
SOURCE_VAR, TARGET_VAR, BACKUPS = WORK_DIR / "source", WORK_DIR / "target", WORK_DIR / "backups"


def environment(url: str, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": url,
        "DATABASE_MIGRATE_URL": "",
        "REDIS_URL": "",
        "BAZAAR_VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "0",
    }


def manage(*args: str, url: str = DATABASE_URL, var_dir: Path = SOURCE_VAR) -> float:
    """Run `manage.py` and return how long it took (seconds); its output is shown."""
    started = time.monotonic()
    subprocess.run(  # noqa: S603 - this interpreter and manage.py
        [sys.executable, "manage.py", *args],
        env=environment(url, var_dir),
        cwd=BASE_DIR,
        check=True,
    )
    return time.monotonic() - started


def recreate(url: str) -> None:
    drop(url)
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop(url: str) -> None:
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def backup_and_restore(label: str) -> dict:
    for leftover in BACKUPS.glob("*"):
        shutil.rmtree(leftover)
    shutil.rmtree(TARGET_VAR, ignore_errors=True)
    backup_seconds = manage("backup", "--dir", str(BACKUPS))
    (backup,) = BACKUPS.iterdir()
    recreate(RESTORE_URL)
    restore_seconds = manage(
        "restore", backup.name, "--dir", str(BACKUPS), url=RESTORE_URL, var_dir=TARGET_VAR
    )
    size = sum(path.stat().st_size for path in backup.iterdir())
    with psycopg.connect(DATABASE_URL) as connection:
        orders = connection.execute("SELECT count(*) FROM shop_order").fetchone()[0]
        lines = connection.execute("SELECT count(*) FROM shop_orderline").fetchone()[0]
    return {
        "data": label,
        "orders": orders,
        "lines": lines,
        "backup_s": backup_seconds,
        "restore_s": restore_seconds,
        "size_mb": size / 1e6,
        "dump_mb": (backup / "database.dump").stat().st_size / 1e6,
    }


def generate_orders(count: int) -> None:
    """Bulk-create `count` orders with lines and payments on the demo catalogue."""
    os.environ.update(environment(DATABASE_URL, SOURCE_VAR))
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.db import connection, transaction

    from accounts.models import User
    from shop.models import Order, OrderLine, OrderStatus, Payment, PaymentStatus, Product

    rng = random.Random(2026)  # noqa: S311 - benchmark data, not secrets
    products = list(Product.objects.values_list("id", "vendor_id", "name", "price"))
    started = time.monotonic()
    with transaction.atomic():
        shoppers = User.objects.bulk_create(
            User(email=f"bench-shopper-{n}@example.com", full_name=f"Bench Shopper {n}")
            for n in range(2000)
        )
        statuses = [OrderStatus.PAID] * 7 + [
            OrderStatus.SHIPPED,
            OrderStatus.PENDING_PAYMENT,
            OrderStatus.CANCELLED,
        ]
        batch = 5000
        for first in range(0, count, batch):
            picks = [
                rng.sample(products, rng.randint(1, 4)) for _ in range(min(batch, count - first))
            ]
            quantities = [[rng.randint(1, 3) for _ in pick] for pick in picks]
            orders = Order.objects.bulk_create(
                Order(
                    customer=rng.choice(shoppers),
                    status=rng.choice(statuses),
                    total=sum(
                        (price * qty for (_, _, _, price), qty in zip(pick, qty_list, strict=True)),
                        Decimal("0.00"),
                    ),
                    ship_name="Bench Shopper",
                    ship_line1=f"{rng.randint(1, 200)} Market Street",
                    ship_city="Berlin",
                    ship_postal_code="10115",
                    ship_country="DE",
                )
                for pick, qty_list in zip(picks, quantities, strict=True)
            )
            OrderLine.objects.bulk_create(
                OrderLine(
                    order=order,
                    vendor_id=vendor_id,
                    product_id=product_id,
                    product_name=name,
                    unit_price=price,
                    quantity=qty,
                    line_total=price * qty,
                )
                for order, pick, qty_list in zip(orders, picks, quantities, strict=True)
                for (product_id, vendor_id, name, price), qty in zip(pick, qty_list, strict=True)
            )
            Payment.objects.bulk_create(
                Payment(
                    order=order,
                    amount=order.total,
                    status=PaymentStatus.FAILED
                    if order.status == OrderStatus.CANCELLED
                    else PaymentStatus.CAPTURED,
                    idempotency_key=f"bench-payment-{order.pk}",
                    payment_method=f"tok_bench_{order.pk}",
                    card_brand="visa",
                    card_last4="4242",
                    gateway_reference=f"ch_bench_{order.pk}",
                    attempts=1,
                )
                for order in orders
                if order.status != OrderStatus.PENDING_PAYMENT
            )
            print(f"  {first + len(orders):,} orders", flush=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE shop_order SET created_at = now() - random() * interval '365 days',"
                " updated_at = now()"
            )
    print(f"Generated {count:,} orders in {time.monotonic() - started:.1f} s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--skip-demo", action="store_true", help="Only the orders' run.")
    options = parser.parse_args()
    results = []
    try:
        recreate(DATABASE_URL)
        manage("migrate", "--no-input", "-v0")
        manage("seed_demo")
        if not options.skip_demo:
            results.append(backup_and_restore("seed_demo"))
        generate_orders(options.orders)
        results.append(backup_and_restore(f"seed_demo + {options.orders:,} orders"))
    finally:
        shutil.rmtree(WORK_DIR, ignore_errors=True)
        for url in (DATABASE_URL, RESTORE_URL):
            drop(url)
    print()
    headings = ("orders", "lines", "backup", "restore", "size", "dump")
    print(f"{'data':<28} {headings[0]:>8} {headings[1]:>8}", *(f"{h:>9}" for h in headings[2:]))
    for row in results:
        print(
            f"{row['data']:<28} {row['orders']:>8,} {row['lines']:>8,} {row['backup_s']:>8.1f}s"
            f" {row['restore_s']:>8.1f}s {row['size_mb']:>7.1f}MB {row['dump_mb']:>7.1f}MB"
        )


if __name__ == "__main__":
    main()
