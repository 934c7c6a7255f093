"""Background-work benchmark: tasks per second per queue, and payment latency.

Runs the production shape on the local PostgreSQL and Redis with real `manage.py run_worker`
processes, one per queue, at their configured worker counts (Q_WORKERS_<QUEUE>):

- throughput: N trivial tasks enqueued on a queue, timed from the first enqueue until the
  last one is recorded SUCCESSFUL (the runner's whole path: lock, mark running, run, record);
  for `emails` also a real templated email (rendered and written by the file backend);
- payment latency: `shop.tasks.payments.process_order_payment` through checkout's
  `start_payment`, enqueue (payment row committed) -> payment captured, p50/p90/p99, with the
  simulated gateway (SIMULATED_GATEWAY_LATENCY_MS, default 0).

    .venv/bin/python bench/tasks_bench.py [--tasks 1000] [--payments 200] [--rate 50]

Uses BENCH_DATABASE_URL (default: database bazaar_bench_tasks on DATABASE_URL's server,
created and migrated if missing, emptied on every run) and BENCH_REDIS_URL (default: db 12
on REDIS_URL's server). `make bench` runs it via scripts/with-test-services.sh.
"""

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Beside the servers scripts/with-test-services.sh found (DATABASE_URL / REDIS_URL), in a
# database and a Redis db of the benchmark's own.
_server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", f"{_server.split('?')[0].rpartition('/')[0]}/bazaar_bench_tasks"
)
_redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", f"{_redis.rpartition('/')[0]}/12")
WORK_DIR = Path(tempfile.mkdtemp(prefix="bazaar-tasks-bench-"))
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "CACHE_KEY_PREFIX": "bazaar-bench-tasks",
    "DJANGO_DEBUG": "0",
    "LOG_LEVEL": "WARNING",
    "TASKS_BACKEND": "project.background.backend.DjangoQ2Backend",
    "BAZAAR_VAR_DIR": str(WORK_DIR),
    "SIMULATED_GATEWAY_LEDGER_PATH": str(WORK_DIR / "ledger.sqlite3"),
    "EVENTS_EMBEDDED_DISPATCHER": "0",
}
os.environ.update(ENV)
sys.path.insert(0, str(BASE_DIR))

from bench.support import ensure_database  # noqa: E402


def start_cluster(queue: str) -> subprocess.Popen:
    log = (WORK_DIR / f"worker-{queue}.log").open("ab")
    heartbeat = WORK_DIR / f"worker-{queue}.alive"
    heartbeat.unlink(missing_ok=True)
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [
            sys.executable,
            str(BASE_DIR / "manage.py"),
            "run_worker",
            queue,
            "--heartbeat-file",
            str(heartbeat),
        ],
        cwd=BASE_DIR,
        env={**ENV, "LOG_LEVEL": "INFO"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not heartbeat.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker {queue} did not start; see {WORK_DIR}")
        time.sleep(0.1)
    return process


def stop_cluster(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def wait_all_done(ids: list[str], *, timeout: float) -> float:
    from project.background.models import TaskRecord

    deadline = time.monotonic() + timeout
    while True:
        left = TaskRecord.objects.filter(pk__in=ids).exclude(status="SUCCESSFUL").count()
        if not left:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} of {len(ids)} tasks unfinished after {timeout}s")
        time.sleep(0.02)


def throughput(queue: str, task, count: int, *args) -> dict:
    from project.background import conf

    workers = conf.queue_options(queue)["workers"]
    process = start_cluster(queue)
    try:
        started = time.monotonic()
        ids = [task.using(queue_name=queue).enqueue(*args).id for _ in range(count)]
        enqueued = time.monotonic()
        finished = wait_all_done(ids, timeout=600)
    finally:
        stop_cluster(process)
    return {
        "queue": queue,
        "task": task.name,
        "workers": workers,
        "tasks": count,
        "enqueue_per_s": count / (enqueued - started),
        "tasks_per_s": count / (finished - started),
    }


def payment_latency(count: int, rate: float) -> dict:
    from django.db.models import F

    from shop.gateways import CardToken
    from shop.models import Payment, PaymentStatus
    from shop.services import payments as payment_services
    from tests import factories

    customer = factories.UserFactory()
    orders = [
        factories.OrderFactory(customer=customer, total=Decimal("42.50")) for _ in range(count)
    ]
    token = CardToken(token="pm_sim_ok_0123456789abcdef", brand="Visa", last4="4242")  # noqa: S106
    process = start_cluster("critical")
    try:
        ids = []
        for order in orders:
            ids.append(payment_services.start_payment(order=order, card_token=token).pk)
            time.sleep(1 / rate)
        deadline = time.monotonic() + 300
        while Payment.objects.filter(pk__in=ids, status=PaymentStatus.CAPTURED).count() < count:
            if time.monotonic() > deadline:
                raise RuntimeError("payments not captured in time")
            time.sleep(0.05)
    finally:
        stop_cluster(process)
    latencies = sorted(
        (row.total_seconds() * 1000)
        for row in Payment.objects.filter(pk__in=ids)
        .annotate(latency=F("updated_at") - F("created_at"))
        .values_list("latency", flat=True)
    )
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "payments": count,
        "rate": rate,
        "p50": quantiles[49],
        "p90": quantiles[89],
        "p99": quantiles[98],
        "max": latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per queue")
    parser.add_argument("--emails", type=int, default=500, help="real emails on `emails`")
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50, help="payments enqueued per second")
    options = parser.parse_args()

    ensure_database(DATABASE_URL)
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection

    from bench import tasks_bench_tasks as bench_tasks

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:  # the audit table refuses TRUNCATE unless asked
        cursor.execute("SET bazaar.audit_allow_truncate = 'on'")
    call_command("flush", interactive=False, verbosity=0)  # a bench database: start empty
    cache.clear()

    print(f"Background tasks benchmark ({os.cpu_count()} CPUs, PostgreSQL, Django-Q2 ORM broker)")
    print(f"work dir {WORK_DIR}\n")
    print(
        f"{'queue':<10} {'task':<16} {'workers':>7} {'tasks':>6} {'enqueue/s':>10} {'tasks/s':>9}"
    )
    rows = [
        throughput(queue, bench_tasks.noop, options.tasks)
        for queue in ("critical", "emails", "analytics")
    ]
    rows.append(throughput("emails", bench_tasks.send_email, options.emails))
    for row in rows:
        print(
            f"{row['queue']:<10} {row['task']:<16} {row['workers']:>7} {row['tasks']:>6} "
            f"{row['enqueue_per_s']:>10.0f} {row['tasks_per_s']:>9.1f}"
        )
    latency = payment_latency(options.payments, options.rate)
    print(
        f"\nPayment latency, enqueue -> captured ({latency['payments']} payments at "
        f"{latency['rate']:.0f}/s, gateway latency {settings.SIMULATED_GATEWAY_LATENCY_MS} ms):"
    )
    print(
        f"  p50 {latency['p50']:.0f} ms   p90 {latency['p90']:.0f} ms   "
        f"p99 {latency['p99']:.0f} ms   max {latency['max']:.0f} ms"
    )


if __name__ == "__main__":
    main()
