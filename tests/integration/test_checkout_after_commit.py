"""A checkout whose order committed lands on the order page, whatever the database does next.

The failures are real PostgreSQL ones: the database going away right after the order's commit
(every connection terminated, new ones refused), or the session's row locked by another
transaction so that saving the session times out.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.tasks import TaskResultStatus
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from project import events
from project.background.models import TaskRecord
from shop.models import Order, OrderStatus, Payment, PaymentStatus
from shop.services import payments as payment_services
from tests import factories
from tests.fixtures import database

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS_URL = reverse("shop:checkout")
REVIEW_URL = reverse("shop:checkout_review")
CARD = {
    "card_number": "4242 4242 4242 4242",
    "expiry": f"12/{(timezone.now().year + 2) % 100:02d}",
    "cvc": "123",
}


@pytest.fixture(autouse=True)
def _production_shape(settings, tmp_path):
    """Events go to the dispatcher process, as in production; the processor's ledger is ours."""
    settings.EVENTS_DISPATCH_ON_COMMIT = False
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"


@pytest.fixture
def buyer(client, shopper):
    """A signed-in shopper with a kettle in the cart and the shipping address chosen."""
    home = factories.AddressFactory(user=shopper, line1="1 Home Lane")
    product = factories.ProductFactory(name="Kettle", price=Decimal("30.00"), stock=5)
    factories.CartItemFactory(cart__user=shopper, product=product, quantity=1)
    client.force_login(shopper)
    client.post(ADDRESS_URL, {"address": str(home.pk)})
    assert "checkout_address" in client.session
    return client


def connect(dbname: str, **options) -> psycopg.Connection:
    params = connection.settings_dict
    return psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params["PASSWORD"] or None,
        dbname=dbname,
        **options,
    )


@contextmanager
def database_gone_after_the_order_commits() -> Iterator[None]:
    """Right after the order's transaction commits (the event bus wakes this process's
    dispatchers after every commit that recorded an event), the test database refuses new
    connections and every open one is terminated, as in a crash; it comes back on exit."""
    name = connection.settings_dict["NAME"]
    pool = connection.pool  # psycopg's pool, unless DATABASE_POOL is off
    if pool is not None:
        # Each request for a connection waits this long for the database to come back.
        pool_timeout, pool.timeout = pool.timeout, 1.0
    # Refusing connections and terminating them takes the superuser: the tests run as the app role.
    with database.admin_connect("postgres", autocommit=True) as admin:

        def crash() -> None:
            events.remove_wakeup(crash)
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )

        events.add_wakeup(crash)
        try:
            yield
        finally:
            events.remove_wakeup(crash)
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            connection.close()
            if pool is not None:
                pool.timeout = pool_timeout
                connection.close_pool()  # a fresh one, rather than wait out its reconnect backoff


def place_order_as_the_database_dies(buyer, shopper) -> Order:
    """Place order with the database gone right after its commit: the shopper still lands on
    the order's page."""
    with database_gone_after_the_order_commits():
        response = buyer.post(REVIEW_URL, CARD)
    order = Order.objects.get(customer=shopper)
    assert response.status_code == 302
    assert response.url == order.get_absolute_url()
    return order


def test_the_database_crashing_right_after_the_order_commits_still_lands_on_the_order(
    buyer, shopper, caplog, settings
):
    caplog.set_level(logging.WARNING)

    order = place_order_as_the_database_dies(buyer, shopper)

    assert order.status == OrderStatus.PENDING_PAYMENT
    # The payment committed with the order; only its charge was lost (and logged).
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.PENDING
    assert "process_order_payment" in caplog.text
    assert "Could not save the session after placing an order" in caplog.text

    page = buyer.get(order.get_absolute_url())

    assert page.status_code == 200
    assert f"Order {order.number}" in page.text
    assert "Processing your payment" in page.text
    assert "Pay now" not in page.text

    # The sweeper hands the payment on once it has waited PAYMENT_STUCK_AFTER_SECONDS.
    settings.PAYMENT_STUCK_AFTER_SECONDS = 0
    assert payment_services.sweep_stuck_payments() == [payment.pk]


def test_with_the_production_task_backend_the_charge_commits_with_the_order(
    buyer, shopper, caplog, settings
):
    """Bazaar's own backend writes the charge's task in the order's transaction, so the
    database dying right after that commit loses nothing: the charge is already queued."""
    q2_backend = "project.background.backend.DjangoQ2Backend"
    settings.TASKS = {"default": {**settings.TASKS["default"], "BACKEND": q2_backend}}
    caplog.set_level(logging.WARNING)

    order = place_order_as_the_database_dies(buyer, shopper)

    payment = Payment.objects.get(order=order)
    charge = TaskRecord.objects.get(task_path="shop.tasks.payments.process_order_payment")
    assert charge.args == [payment.pk]
    assert charge.queue == "critical"
    assert charge.status == TaskResultStatus.READY
    assert [row.task["args"] for row in OrmQ.objects.filter(key="critical")] == [(charge.id,)]
    assert "process_order_payment" not in caplog.text  # nothing was lost, so nothing logged


def test_a_session_that_cannot_be_saved_after_the_order_commits_still_lands_on_the_order(
    buyer, shopper, caplog
):
    caplog.set_level(logging.WARNING, logger="shop.views.checkout")
    session_key = buyer.session.session_key
    with connect(connection.settings_dict["NAME"]) as locker:
        # Another transaction holds the session's row; ours gives up waiting after 300 ms.
        locker.execute(
            "SELECT 1 FROM django_session WHERE session_key = %s FOR UPDATE", [session_key]
        )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        try:
            response = buyer.post(REVIEW_URL, CARD)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
            locker.rollback()

    order = Order.objects.get(customer=shopper)
    assert response.status_code == 302
    assert response.url == order.get_absolute_url()
    assert "lock timeout" in caplog.text
    assert "Could not save the session after placing an order" in caplog.text
    # Not saved: the address is still remembered (the next checkout starts at step 1 anyway).
    assert "checkout_address" in buyer.session

    page = buyer.get(response.url)

    assert page.status_code == 200
    assert Payment.objects.filter(order=order).count() == 1
    assert f"Order {order.number}" in page.text
