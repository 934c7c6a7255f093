"""The order page shows one state of its order, never two halves of different moments.

A capture changes the order and its payment in one commit. Here it really commits, from
another connection, while the page (or the live handler, inside the event dispatcher's
transaction) is in the middle of reading: what is shown is the state before it or after it,
whole, with the matching `data-seq`.
"""

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from project import live
from shop import events as shop_events
from shop import handlers as shop_handlers
from shop.models import Order, OrderStatus
from tests import factories
from tests.fixtures import live_orders

pytestmark = pytest.mark.django_db(transaction=True)

AWAITING = '<span class="pill pill-pending_payment">Awaiting payment</span>'
PROCESSING = '<span class="pill pill-processing">Processing</span>'
PAID = '<span class="pill pill-paid">Paid</span>'
CAPTURED = '<span class="pill pill-captured">Paid</span>'


@pytest.fixture(autouse=True)
def _dispatch_explicitly(settings):
    """No delivery on commit: these tests call the live handler themselves."""
    settings.EVENTS_DISPATCH_ON_COMMIT = False


@pytest.fixture
def order(shopper):
    return live_orders.order_awaiting_payment(customer=shopper, vendor=factories.VendorFactory())


def in_another_thread(work: Callable[[], object]):
    """Run `work` on a database connection of its own, committed when it returns."""

    def run():
        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@contextmanager
def captured_once_the_order_is_read(order: Order) -> Iterator[list[str]]:
    """The processor's capture, applied by the payment service and committed on another
    connection, right after this connection's first statement that reads the order."""
    seen: list[str] = []

    def capture_after(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not seen and 'FROM "shop_order"' in sql:
            seen.append(sql)
            in_another_thread(lambda: live_orders.capture(order))
        return result

    with connection.execute_wrapper(capture_after):
        yield seen


def test_a_capture_committing_while_the_page_reads_leaves_it_whole(order, shopper):
    client = Client()
    client.force_login(shopper)

    with captured_once_the_order_is_read(order) as reads:
        during = client.get(order.get_absolute_url())
    after = client.get(order.get_absolute_url())

    assert reads, "the capture committed in the middle of the page's reads"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    # The moment before the capture, all of it: no "Captured" beside "Awaiting payment".
    assert AWAITING in during.text
    assert PROCESSING in during.text
    assert "Processing your payment…" in during.text
    assert CAPTURED not in during.text
    assert 'id="order-status" class="order-status" data-seq="1"' in during.text
    # The next look shows the moment after, all of it.
    assert PAID in after.text
    assert CAPTURED in after.text
    assert f"Thank you, your order {order.number} is confirmed." in after.text
    assert 'id="order-status" class="order-status" data-seq="2"' in after.text
    assert "Pay now" not in during.text + after.text


def test_the_order_its_latest_payment_and_its_event_number_are_one_statement(order, shopper):
    client = Client()
    client.force_login(shopper)

    with CaptureQueriesContext(connection) as queries:
        client.get(order.get_absolute_url(), headers={"HX-Request": "true"})

    reading_payments = [q["sql"] for q in queries if '"shop_payment"' in q["sql"]]
    assert len(reading_payments) == 1
    (statement,) = reading_payments
    assert 'FROM "shop_order"' in statement
    assert '"events_aggregatesequence"' in statement
    # The timeline's shops and shipments too: a shipment shows with the event that recorded it.
    assert '"shop_shipment"' in statement
    assert '"shop_orderline"' in statement
    assert not [q for q in queries if 'FROM "shop_shipment"' in q["sql"] and q["sql"] != statement]


def received(group: str, publish: Callable[[], None]) -> str:
    """The message that `publish` sends to `group`, as a socket in it would get it."""
    layer = get_channel_layer()

    async def scenario() -> str:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            await sync_to_async(publish)()
            message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            await layer.group_discard(group, channel)
        return message["html"]

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


def test_the_live_handler_pushes_one_state_from_inside_the_dispatchers_transaction(order):
    event = shop_events.OrderPlaced(
        order_id=order.pk,
        customer_id=order.customer_id,
        vendor_ids=(),
        total=order.total,
        currency=order.currency,
    )

    def publish() -> None:
        # As the dispatcher calls it: in its READ COMMITTED transaction, the capture landing
        # between the handler's statements.
        try:
            with transaction.atomic(), captured_once_the_order_is_read(order) as reads:
                shop_handlers.publish_order_status(event)
            assert reads
        finally:
            connections.close_all()

    message = received(live.order_group(order.pk), publish)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert AWAITING in message
    assert PROCESSING in message
    assert CAPTURED not in message
    assert 'data-seq="1"' in message
