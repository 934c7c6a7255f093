"""Bazaar behind a real PgBouncer in transaction pooling mode (docs/pgbouncer.md).

A shopper's checkout over HTTP, the payment on a real `critical` worker, the confirmation
email on an `emails` worker and the events through the dispatcher all run through it (the
dispatcher LISTENs on its direct connection); and what one client does in a server session
never reaches the next client of that session: not a vendor's row-level-security scope,
not a prepared statement, not a server-side cursor.
"""

import copy
import io
import os
import re
import runpy
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from unittest import mock

import psycopg
import pytest
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connections, transaction
from django.db.utils import load_backend
from psycopg import sql

from project import events
from project.db import scope
from project.events.models import HandlerReceipt, OutboxEvent
from shop.gateways.simulated import SimulatedGateway
from shop.models import Order, OrderLine, OrderStatus, Payment, PaymentStatus, Product
from tests import factories
from tests.fixtures import asgi_server as processes
from tests.fixtures import database
from tests.fixtures import pgbouncer as pgbouncer_fixture
from tests.fixtures.pgbouncer import PgBouncer, pgbouncer  # noqa: F401 - the fixture
from tests.fixtures.workers import Workers

pytestmark = pytest.mark.django_db(transaction=True)

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ADDRESS_RE = re.compile(r'name="address" value="(\d+)"')
ORDER_STATUS_RE = re.compile(r'id="order-status".*?class="pill pill-([a-z_]+)"', re.DOTALL)


def through(bouncer: PgBouncer, *, dbname: str = "") -> dict[str, str]:
    """The variables of a process behind PgBouncer (docs/pgbouncer.md)."""
    return {
        "DATABASE_URL": bouncer.url(dbname=dbname),
        "DATABASE_PGBOUNCER": "true",
        "DATABASE_DIRECT_URL": bouncer.direct_url(),
    }


@dataclass
class WorkersBehindPgBouncer(Workers):
    bouncer_env: dict[str, str] = field(default_factory=dict)

    def env(self, queue: str) -> dict[str, str]:
        return {**super().env(queue), **self.bouncer_env}


@pytest.fixture
def workers(pgbouncer, transactional_db, tmp_path):  # noqa: F811
    workers = WorkersBehindPgBouncer(
        base_dir=tmp_path, mail_dir=tmp_path / "mail", bouncer_env=through(pgbouncer)
    )
    try:
        yield workers
    finally:
        workers.stop_all()


class Browser:
    """A shopper's browser over real HTTP: a cookie jar, forms with their CSRF token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response:
        response = self.session.get(self.base_url + path, timeout=20)
        assert response.status_code == 200, (path, response.status_code)
        return response

    def submit(self, page: requests.Response, action: str, data: dict) -> requests.Response:
        token = CSRF_RE.search(page.text).group(1)
        response = self.session.post(
            self.base_url + action, {"csrfmiddlewaretoken": token, **data}, timeout=20
        )
        assert response.status_code == 200, (action, response.status_code, response.text[:500])
        return response

    def path(self, response: requests.Response) -> str:
        return response.url.removeprefix(self.base_url)


def test_checkout_worker_payment_and_event_delivery_all_run_through_pgbouncer(
    pgbouncer,  # noqa: F811
    workers,
    tmp_path,
    settings,
):
    product = factories.ProductFactory(price=Decimal("19.99"), stock=5)
    shopper = factories.UserFactory()
    factories.AddressFactory(user=shopper)
    ledger = tmp_path / "gateway-ledger.sqlite3"
    settings.SIMULATED_GATEWAY_LEDGER_PATH = ledger
    env = {
        **through(pgbouncer),
        # Checkout and the handlers hand their tasks to the Django-Q2 workers, as in production.
        "DJANGO_SETTINGS_MODULE": "tests.fixtures.worker_settings",
        "BAZAAR_TEST_MAIL_DIR": str(workers.mail_dir),
        "SIMULATED_GATEWAY_LEDGER_PATH": str(ledger),
    }
    # A 30 s poll, longer than the waits below: a NOTIFY on its LISTEN has to wake it.
    dispatcher = processes.start_dispatcher(tmp_path / "dispatcher.log", "--poll", "30", **env)
    web = processes.AsgiServer(log=tmp_path / "uvicorn.log", env=env)
    try:
        started = time.monotonic()
        workers.start(
            "critical", "emails", Q_WORKERS_EMAILS="1", SIMULATED_GATEWAY_LEDGER_PATH=str(ledger)
        )
        web.start()
        ready = time.monotonic()

        browser = Browser(web.url)
        login = browser.get("/accounts/login/")
        browser.submit(
            login, "/accounts/login/", {"email": shopper.email, "password": factories.PASSWORD}
        )
        product_page = browser.get(f"/p/{product.slug}/")
        browser.submit(product_page, "/cart/add/", {"product_id": product.pk, "quantity": 2})
        address_page = browser.get("/checkout/")
        review = browser.submit(
            address_page, "/checkout/", {"address": ADDRESS_RE.search(address_page.text)[1]}
        )
        checkout_started = time.monotonic()
        placed = browser.submit(
            review,
            "/checkout/review/",
            {"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"},
        )
        checkout_seconds = time.monotonic() - checkout_started
        order = Order.objects.get(customer=shopper)
        assert browser.path(placed) == f"/orders/{order.pk}/"

        paid_page = workers.wait_for(
            lambda: (
                (page := browser.get(f"/orders/{order.pk}/"))
                and ORDER_STATUS_RE.search(page.text)[1] == "paid"
                and page
            ),
            timeout=20,
            interval=0.2,
        )
        [confirmation] = workers.wait_for(
            lambda: [m for m in workers.emails() if shopper.email in m["To"]], timeout=15
        )
        paid_seconds = time.monotonic() - checkout_started
        clients = pgbouncer.console("SHOW CLIENTS")
        listening = _listening_sessions(pgbouncer)
    finally:
        web.stop()
        processes.stop(dispatcher)

    assert order.number in paid_page.text
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.CAPTURED
    assert [(c.amount, c.status) for c in _charges(payment)] == [(Decimal("39.98"), "captured")]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert Product.objects.get(pk=product.pk).stock == 3
    assert confirmation["Subject"] == f"Your order {order.number} is confirmed"
    # Every event of the order was delivered by the dispatcher, to each of its handlers.
    delivered = OutboxEvent.objects.filter(aggregate_id=str(order.pk))
    assert sorted(delivered.values_list("event_type", flat=True)) == [
        "OrderPlaced",
        "PaymentCaptured",
    ]
    assert not delivered.filter(delivered_at__isnull=True).exists()
    assert HandlerReceipt.objects.filter(
        event__in=delivered, handler="shop.handlers.send_order_emails"
    ).exists()
    # The web, worker and dispatcher processes were PgBouncer's clients; the one LISTEN is
    # on PostgreSQL itself, from the dispatcher's direct connection.
    assert len({(c["addr"], c["port"]) for c in clients if c["database"] == pgbouncer.dbname}) >= 3
    assert listening == 1
    print(
        f"\nbehind PgBouncer: processes up in {ready - started:.1f} s, 'Place order' answered "
        f"in {checkout_seconds * 1000:.0f} ms, paid and confirmed {paid_seconds:.1f} s later"
    )


def _charges(payment: Payment) -> list:
    return SimulatedGateway.ledger_charges(idempotency_key=payment.idempotency_key)


def _listening_sessions(bouncer: PgBouncer) -> int:
    with database.admin_connect(bouncer.dbname) as admin:
        return admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query = %s",
            [bouncer.dbname, f"LISTEN {events.NOTIFY_CHANNEL}"],
        ).fetchone()[0]


@pytest.mark.django_db  # nothing committed: no flush afterwards
def test_behind_pgbouncer_the_settings_require_a_direct_url():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": "postgres://bazaar_app@127.0.0.1:6432/bazaar",
            "DATABASE_PGBOUNCER": "true",
        },
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode != 0
    assert "DATABASE_DIRECT_URL must name PostgreSQL itself" in result.stderr


# --- What one client leaves in a server session ------------------------------------------


def app_database_settings(**variables: str) -> dict:
    """DATABASES["default"] exactly as project/settings.py makes it from these variables."""
    with mock.patch.dict(os.environ, variables):
        namespace = runpy.run_path(str(settings.BASE_DIR / "project" / "settings.py"))
    return namespace["DATABASES"]["default"]


@contextmanager
def app_connections(bouncer: PgBouncer, *aliases: str, dbname: str) -> Iterator[list]:
    """Django connections configured as a process behind PgBouncer configures them (one
    client connection each: no psycopg pool), under `aliases` for `.using()`."""
    configured = app_database_settings(**through(bouncer, dbname=dbname), DATABASE_POOL="false")
    filled = connections.configure_settings(
        {"default": copy.deepcopy(configured)}
        | {alias: copy.deepcopy(configured) for alias in aliases}
    )
    backend = load_backend(configured["ENGINE"])
    for alias in aliases:
        connections[alias] = backend.DatabaseWrapper(filled[alias], alias)
    try:
        yield [connections[alias] for alias in aliases]
    finally:
        for alias in aliases:
            connections[alias].close()
            del connections[alias]


def _backend_pid(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db  # nothing committed: no flush afterwards
def test_the_single_pool_hands_one_server_session_from_client_to_client(pgbouncer):  # noqa: F811
    # The premise of the tests below: a session setting made by one client is seen by the
    # next, which is why the app makes none behind PgBouncer.
    with (
        pgbouncer.connect(dbname=pgbouncer.single, autocommit=True) as first,
        pgbouncer.connect(dbname=pgbouncer.single, autocommit=True) as second,
    ):
        first_pid = first.execute("SELECT pg_backend_pid()").fetchone()[0]
        first.execute("SELECT set_config('application_name', 'left-behind', false)")
        try:
            seen = second.execute(
                "SELECT pg_backend_pid(), current_setting('application_name')"
            ).fetchone()
        finally:
            second.execute("RESET application_name")

    assert seen == (first_pid, "left-behind")


def test_a_vendor_scope_ends_with_its_transaction_on_a_shared_server_session(
    pgbouncer,  # noqa: F811
):
    mine, other = factories.VendorFactory(), factories.VendorFactory()
    for vendor in (mine, other):
        factories.OrderLineFactory(product=factories.ProductFactory(vendor=vendor))

    with app_connections(pgbouncer, "backoffice", "worker", dbname=pgbouncer.single):
        with (
            transaction.atomic(using="backoffice"),
            scope.vendor_scope(mine.pk, using="backoffice"),
        ):
            vendor_pid = _backend_pid("backoffice")
            vendor_sees = list(OrderLine.objects.using("backoffice").values_list("vendor_id"))
        # The next transaction on that server session is another client's.
        worker_pid = _backend_pid("worker")
        worker_scope = scope.current(using="worker")
        worker_sees = OrderLine.objects.using("worker").count()
        with transaction.atomic(using="worker"):
            in_a_transaction = scope.current(using="worker")

    assert vendor_sees == [(mine.pk,)]
    assert worker_pid == vendor_pid
    assert (worker_scope, in_a_transaction, worker_sees) == (scope.SYSTEM, scope.SYSTEM, 2)


def test_repeated_queries_of_two_clients_on_one_server_session_need_no_prepared_statement(
    pgbouncer,  # noqa: F811
):
    factories.ProductFactory(price=Decimal("5.00"))

    with app_connections(pgbouncer, "first", "second", dbname=pgbouncer.single):
        counts = [
            Product.objects.using(alias).filter(price__gt=n).count()
            for n in range(40)
            for alias in ("first", "second")
        ]
    # psycopg's own default (prepare a query after its 5th run) breaks on that session.
    with (
        pgbouncer.connect(dbname=pgbouncer.single, autocommit=True, prepare_threshold=5) as one,
        pgbouncer.connect(dbname=pgbouncer.single, autocommit=True, prepare_threshold=5) as two,
        pytest.raises(psycopg.errors.DuplicatePreparedStatement),
    ):
        _take_turns(one, two, query="SELECT count(*) FROM shop_product WHERE price > %s", times=10)

    assert counts == [1] * 10 + [0] * 70


def _take_turns(*clients: psycopg.Connection, query: str, times: int) -> None:
    for n in range(times):
        for client in clients:
            client.execute(query, [n])


def test_an_iterator_reads_on_while_another_client_holds_its_server_connection(
    pgbouncer,  # noqa: F811
):
    product = factories.ProductFactory()
    factories.OrderLineFactory.create_batch(5, product=product)

    with app_connections(pgbouncer, "export", "checkout", dbname=pgbouncer.dbname):
        lines = OrderLine.objects.using("export").order_by("pk").iterator(chunk_size=1)
        first = next(lines)
        # Another client takes the server connection the export's query ran on (PgBouncer
        # hands out the most recently used) and keeps it in a transaction.
        with transaction.atomic(using="checkout"):
            OrderLine.objects.using("checkout").select_for_update().count()
            rest = list(lines)

    assert [line.pk for line in [first, *rest]] == sorted(
        OrderLine.objects.values_list("pk", flat=True)
    )


@pytest.mark.django_db  # nothing committed: no flush afterwards
def test_without_the_roles_system_default_a_process_behind_pgbouncer_refuses_to_query(
    pgbouncer,  # noqa: F811
):
    pgbouncer_fixture.system_scope_by_default(pgbouncer.dbname, on=False)
    pgbouncer.console(f"RECONNECT {pgbouncer.single}")  # new server sessions from now on
    try:
        with (
            app_connections(pgbouncer, "unconfigured", dbname=pgbouncer.single),
            pytest.raises(ImproperlyConfigured, match="setup_database_roles"),
        ):
            OrderLine.objects.using("unconfigured").count()
    finally:
        pgbouncer_fixture.system_scope_by_default(pgbouncer.dbname, on=True)
        pgbouncer.console(f"RECONNECT {pgbouncer.single}")


@pytest.mark.django_db  # nothing committed: no flush afterwards
def test_setup_database_roles_behind_pgbouncer_starts_the_app_roles_sessions_in_system(settings):
    scratch = f"{settings.DATABASES['default']['NAME']}_pgbouncer_roles"
    with database.admin_connect("postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    host = database._ADMIN["HOST"] or "127.0.0.1"
    port = database._ADMIN["PORT"] or 5432
    app, owner = database.APP, database.OWNER
    settings.DATABASE_URL = f"postgres://{app.name}:{app.password}@{host}:{port}/{scratch}"
    settings.DATABASE_MIGRATE_URL = (
        f"postgres://{owner.name}:{owner.password}@{host}:{port}/{scratch}"
    )
    settings.DATABASE_PGBOUNCER = True
    output = io.StringIO()
    try:
        call_command(
            "setup_database_roles",
            admin_url=f"postgres://{database._ADMIN['USER']}@{host}:{port}/postgres",
            stdout=output,
        )
        with psycopg.connect(settings.DATABASE_URL, autocommit=True) as connection:
            starts_in = connection.execute(
                "SELECT current_setting(%s, true)", [scope.SETTING]
            ).fetchone()
    finally:
        with database.admin_connect("postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
            )

    assert f"Sessions of {app.name} on {scratch} start in the 'system' scope." in output.getvalue()
    assert starts_in == (scope.SYSTEM,)
