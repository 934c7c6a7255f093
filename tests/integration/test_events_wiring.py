"""The services record their domain events with the change, and the reactions (emails) run
through the bus: once per event, however often it is delivered."""

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from backoffice.services import onboarding
from project import events
from project.events import dispatcher as event_dispatcher
from project.events.models import HandlerReceipt, OutboxEvent
from shop.gateways import GatewayError
from shop.models import OrderStatus, Payment, PaymentStatus, Product, StockAdjustment, StockReason
from shop.services import checkout, fulfilment
from shop.services import orders as order_services
from shop.services import payments as payment_services
from shop.services import refunds as refund_services
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor
from tests.integration.payments_support import APPROVE, DECLINE, TRANSIENT, card, place_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"
    # These tests look at the outbox before delivery and then drive the dispatcher.
    settings.EVENTS_DISPATCH_ON_COMMIT = False


class Boom(Exception):
    pass


@pytest.fixture
def oak():
    return factories.VendorFactory(name="Oak", contact_email="orders@oak.example")


@pytest.fixture
def board(oak):
    return factories.ProductFactory(vendor=oak, name="Walnut Board", price=Decimal("24.50"))


def recorded(aggregate) -> list[tuple[str, dict]]:
    """(event type, payload) of the aggregate's events, in sequence order."""
    kind, pk = events.aggregate_key(aggregate)
    rows = OutboxEvent.objects.filter(aggregate_type=kind, aggregate_id=pk).order_by("sequence")
    return [(row.event_type, row.payload) for row in rows]


def types(aggregate) -> list[str]:
    return [name for name, _ in recorded(aggregate)]


def pay(order, number=APPROVE) -> Payment:
    """Start a payment and run the charge (the critical worker's job) right away."""
    payment = payment_services.start_payment(order=order, card_token=card(number))
    return payment_services.process_payment(payment_id=payment.pk)


def deliver_twice() -> None:
    """Deliver everything, then all of it again, as if every receipt had been lost."""
    dispatcher = event_dispatcher.Dispatcher()
    dispatcher.run_until_idle()
    HandlerReceipt.objects.all().delete()
    OutboxEvent.objects.update(delivered_at=None)
    dispatcher.run_until_idle()
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def sent() -> list[tuple[str, str]]:
    return sorted((message.to[0], message.subject) for message in mail.outbox)


# --- each service records one event, with the change ----------------------------------


def test_a_captured_payment_records_payment_captured(shopper, board):
    order = place_order(shopper, (board, 2))

    payment = pay(order)

    assert payment.status == PaymentStatus.CAPTURED
    assert recorded(order)[1:] == [
        (
            "PaymentCaptured",
            {
                "order_id": order.pk,
                "payment_id": payment.pk,
                "amount": "49.00",
                "currency": "EUR",
            },
        )
    ]
    assert types(order) == ["OrderPlaced", "PaymentCaptured"]


def test_the_payment_service_leaves_the_emails_to_the_bus(
    shopper, board, django_capture_on_commit_callbacks
):
    order = place_order(shopper, (board, 1))
    payment = payment_services.start_payment(order=order, card_token=card())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        payment_services.process_payment(payment_id=payment.pk)

    # Only the bus's wake-up is scheduled: no email task is enqueued by the service.
    assert callbacks == [events._wake_local_dispatchers]


def test_a_declined_payment_records_the_cancellation_and_a_final_payment_failed(
    shopper, board, oak
):
    order = place_order(shopper, (board, 2))

    payment = pay(order, DECLINE)

    assert recorded(order)[1:] == [
        (
            "OrderCancelled",
            {"order_id": order.pk, "reason": "Your card was declined.", "vendor_ids": [oak.pk]},
        ),
        (
            "PaymentFailed",
            {
                "order_id": order.pk,
                "payment_id": payment.pk,
                "failure_code": "card_declined",
                "failure_message": "Your card was declined.",
                "final": True,
            },
        ),
    ]


def test_giving_up_after_transient_failures_records_a_payment_failed_that_is_not_final(
    shopper, board, settings
):
    settings.PAYMENT_RETRY_WINDOW_SECONDS = 900
    order = place_order(shopper, (board, 1))
    payment = payment_services.start_payment(order=order, card_token=card(TRANSIENT))
    Payment.objects.filter(pk=payment.pk).update(
        created_at=timezone.now() - datetime.timedelta(seconds=901)
    )

    payment_services.process_payment(payment_id=payment.pk)

    assert recorded(order)[1:] == [
        (
            "PaymentFailed",
            {
                "order_id": order.pk,
                "payment_id": payment.pk,
                "failure_code": "processing_error",
                "failure_message": payment_services.PROCESSING_ERROR_MESSAGE,
                "final": False,
            },
        )
    ]
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


def test_a_transient_failure_within_the_window_records_nothing(shopper, board, settings):
    settings.PAYMENT_RETRY_WINDOW_SECONDS = 900
    order = place_order(shopper, (board, 1))
    payment = payment_services.start_payment(order=order, card_token=card(TRANSIENT))

    with pytest.raises(GatewayError):
        payment_services.process_payment(payment_id=payment.pk)

    assert types(order) == ["OrderPlaced"]


def test_shipping_records_order_shipped_with_the_order_status(shopper, board, oak, staff):
    flax = factories.VendorFactory(name="Flax")
    towel = factories.ProductFactory(vendor=flax, price=Decimal("9.00"))
    order = place_order(shopper, (board, 1), (towel, 1))
    pay(order)

    first = fulfilment.ship_vendor_lines(
        order=order,
        vendor=oak,
        carrier=" DHL ",
        tracking_number="TRACK1",
        acting_user=staff,
        base_url="https://shop.example",
    )
    second = fulfilment.ship_vendor_lines(
        order=order, vendor=flax, carrier="UPS", tracking_number="TRACK2", acting_user=None
    )

    assert recorded(order)[2:] == [
        (
            "OrderShipped",
            {
                "order_id": order.pk,
                "shipment_id": first.pk,
                "vendor_id": oak.pk,
                "carrier": "DHL",
                "tracking_number": "TRACK1",
                "order_status": "paid",  # Flax's part is still to ship
                "base_url": "https://shop.example",
            },
        ),
        (
            "OrderShipped",
            {
                "order_id": order.pk,
                "shipment_id": second.pk,
                "vendor_id": flax.pk,
                "carrier": "UPS",
                "tracking_number": "TRACK2",
                "order_status": "shipped",
                "base_url": None,
            },
        ),
    ]


def test_cancelling_the_last_open_line_records_order_cancelled(shopper, board, oak):
    order = place_order(shopper, (board, 1))
    pay(order)
    line = order.lines.get()

    fulfilment.cancel_vendor_line(
        order=order, vendor=oak, line_id=line.pk, acting_user=None, reason="Broken in the shop"
    )

    assert recorded(order)[2:] == [
        (
            "OrderCancelled",
            {
                "order_id": order.pk,
                "reason": "Every item was cancelled by the seller.",
                "vendor_ids": [oak.pk],
            },
        )
    ]


def test_a_succeeded_refund_records_refund_issued(shopper, board, staff):
    order = place_order(shopper, (board, 2))
    pay(order)
    refund = refund_services.request_refund(order=order, acting_user=staff, reason="Asked")

    refund_services.process_refund(refund_id=refund.pk)

    assert recorded(order)[2:] == [
        (
            "RefundIssued",
            {
                "order_id": order.pk,
                "refund_id": refund.pk,
                "amount": "49.00",
                "currency": "EUR",
                "vendor_id": None,
            },
        )
    ]
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED


def test_a_refused_refund_records_nothing(shopper, board):
    order = place_order(shopper, (board, 1))
    pay(order)
    Payment.objects.filter(order=order).update(gateway_reference="ch_sim_unknown")
    refund = refund_services.request_refund(order=order, acting_user=None, reason="x")

    refund_services.process_refund(refund_id=refund.pk)

    assert types(order) == ["OrderPlaced", "PaymentCaptured"]


def test_registering_records_user_registered(db):
    user = account_services.register_user(
        email="New@Example.com",
        password="a long passphrase",
        full_name="Nina New",
        base_url="https://shop.example",
    )

    assert recorded(user) == [
        ("UserRegistered", {"user_id": user.pk, "base_url": "https://shop.example"})
    ]
    assert OutboxEvent.objects.get().aggregate_type == "accounts.user"


def test_approving_a_vendor_records_vendor_approved(staff):
    vendor = factories.VendorFactory(status="pending")

    onboarding.approve_vendor(vendor=vendor, acting_user=staff)

    assert recorded(vendor) == [
        ("VendorApproved", {"vendor_id": vendor.pk, "approved_by_id": staff.pk})
    ]


def test_other_vendor_decisions_record_no_event(staff):
    vendor = factories.VendorFactory(status="pending")

    onboarding.reject_vendor(vendor=vendor, acting_user=staff, note="Not a fit")

    assert OutboxEvent.objects.count() == 0


# --- nothing is recorded when the service fails or its transaction rolls back ----------


def _paid(shopper, board):
    order = place_order(shopper, (board, 1))
    pay(order)
    return order


ROLLED_BACK = {
    "capture": lambda ctx: pay(ctx["order"]),
    "decline": lambda ctx: pay(ctx["order"], DECLINE),
    "cancel": lambda ctx: order_services.cancel_order(order=ctx["order"], reason="x"),
    "ship": lambda ctx: fulfilment.ship_vendor_lines(
        order=ctx["paid"], vendor=ctx["oak"], carrier="DHL", tracking_number="T", acting_user=None
    ),
    "refund": lambda ctx: refund_services.process_refund(
        refund_id=refund_services.request_refund(order=ctx["paid"], acting_user=None, reason="x").pk
    ),
    "register": lambda ctx: account_services.register_user(
        email="roll@example.com", password="a long passphrase", full_name="Roll"
    ),
    "approve": lambda ctx: onboarding.approve_vendor(
        vendor=factories.VendorFactory(status="pending"), acting_user=None
    ),
}


@pytest.mark.parametrize("service", ROLLED_BACK)
def test_a_rolled_back_service_records_nothing(service, shopper, board, oak):
    ctx = {"order": place_order(shopper, (board, 1)), "paid": _paid(shopper, board), "oak": oak}
    before = set(OutboxEvent.objects.values_list("pk", flat=True))

    def run_then_fail():
        with transaction.atomic():
            ROLLED_BACK[service](ctx)
            assert set(OutboxEvent.objects.values_list("pk", flat=True)) != before
            raise Boom

    with pytest.raises(Boom):
        run_then_fail()

    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == before


def test_refused_service_calls_record_nothing(shopper, board, oak, staff):
    paid = _paid(shopper, board)
    vendor = factories.VendorFactory(status="approved")
    account_services.register_user(email="taken@example.com", password="x" * 12, full_name="T")
    before = OutboxEvent.objects.count()

    with pytest.raises(order_services.IllegalTransition):
        order_services.transition_order(order=paid, to=OrderStatus.PENDING_PAYMENT)
    with pytest.raises(fulfilment.NothingToShip):
        fulfilment.ship_vendor_lines(
            order=paid,
            vendor=factories.VendorFactory(),
            carrier="D",
            tracking_number="T",
            acting_user=None,
        )
    with pytest.raises(onboarding.IllegalVendorTransition):
        onboarding.approve_vendor(vendor=vendor, acting_user=staff)
    with pytest.raises(account_services.EmailAlreadyRegistered):
        account_services.register_user(email="TAKEN@example.com", password="x" * 12, full_name="T")

    assert OutboxEvent.objects.count() == before


# --- the reactions: each email once, however often the event is delivered -------------


def test_paying_and_shipping_email_each_party_once_when_every_event_is_delivered_twice(
    shopper, board, oak
):
    order = place_order(shopper, (board, 1))
    pay(order)
    fulfilment.ship_vendor_lines(
        order=order, vendor=oak, carrier="DHL", tracking_number="TRACK42", acting_user=None
    )

    deliver_twice()

    assert sent() == sorted(
        [
            ("orders@oak.example", f"New order {order.number} for Oak"),
            ("shopper@example.com", f"Your order {order.number} is confirmed"),
            ("shopper@example.com", f"Your order {order.number} is on its way"),
        ]
    )
    shipped = next(m for m in mail.outbox if "on its way" in m.subject)
    assert "TRACK42" in shipped.body


def test_a_declined_payment_emails_the_shopper_once_when_delivered_twice(shopper, board):
    order = place_order(shopper, (board, 1))
    pay(order, DECLINE)

    deliver_twice()

    assert sent() == [("shopper@example.com", f"Payment failed for order {order.number}")]
    assert "The order was cancelled and you have not been charged." in mail.outbox[0].body


def test_registering_emails_the_verification_link_once_when_delivered_twice(db):
    account_services.register_user(
        email="nina@example.com",
        password="a long passphrase",
        full_name="Nina",
        base_url="https://shop.example",
    )

    deliver_twice()

    assert sent() == [("nina@example.com", "Verify your email address")]
    assert "https://shop.example/accounts/verify/" in mail.outbox[0].body


def test_approving_emails_the_applicant_once_when_delivered_twice(shopper, staff):
    vendor = factories.VendorFactory(status="pending", name="Oak & Iron", applied_by=shopper)
    factories.VendorMembershipFactory(vendor=vendor, user=shopper)

    onboarding.approve_vendor(vendor=vendor, acting_user=staff)
    deliver_twice()

    assert sent() == [("shopper@example.com", "Your shop Oak & Iron is approved")]


def test_with_delivery_on_commit_the_email_arrives_after_the_commit(
    settings, shopper, staff, django_capture_on_commit_callbacks
):
    settings.EVENTS_DISPATCH_ON_COMMIT = True
    vendor = factories.VendorFactory(status="pending", name="Oak & Iron", applied_by=shopper)

    with django_capture_on_commit_callbacks(execute=True):
        onboarding.approve_vendor(vendor=vendor, acting_user=staff)
        assert mail.outbox == []

    assert sent() == [("shopper@example.com", "Your shop Oak & Iron is approved")]


# --- stock history: sales and returns ---------------------------------------------------


def test_checkout_records_a_sale_per_line_with_the_stock_left(shopper, oak):
    board = factories.ProductFactory(vendor=oak, name="Board", stock=5)
    towel = factories.ProductFactory(vendor=oak, name="Towel", stock=2)

    order = place_order(shopper, (board, 2), (towel, 2))

    sales = StockAdjustment.objects.filter(reason=StockReason.SALE).order_by("product_id")
    assert [(a.product_id, a.vendor_id, a.change, a.stock_after, a.note) for a in sales] == [
        (board.pk, oak.pk, -2, 3, f"Order {order.number}"),
        (towel.pk, oak.pk, -2, 0, f"Order {order.number}"),
    ]
    assert [Product.objects.get(pk=p.pk).stock for p in (board, towel)] == [3, 0]


def test_a_declined_order_returns_its_stock_into_the_history(shopper, oak):
    board = factories.ProductFactory(vendor=oak, name="Board", stock=5)
    order = place_order(shopper, (board, 2))

    pay(order, DECLINE)

    history = StockAdjustment.objects.filter(product=board).order_by("id")
    assert [(a.reason, a.change, a.stock_after) for a in history] == [
        (StockReason.SALE, -2, 3),
        (StockReason.RETURN, 2, 5),
    ]
    assert history.last().note == f"Order {order.number}: cancelled"
    assert Product.objects.get(pk=board.pk).stock == 5


def test_the_vendor_stock_page_shows_sales_and_returns(client, shopper):
    member = factories.VendorMembershipFactory()
    board = factories.ProductFactory(vendor=member.vendor, name="Board", stock=5)
    order = place_order(shopper, (board, 2))
    pay(order, DECLINE)
    sign_in_with_second_factor(client, member.user)

    response = client.get(reverse("backoffice:stock_detail", args=[board.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    why = '<td data-label="Why">'
    returned = f'{why}Returned to stock <span class="muted">— Order {order.number}: cancelled'
    sold = f'{why}Sale <span class="muted">— Order {order.number}</span>'
    assert returned in page
    assert sold in page
    assert page.index(returned) < page.index(sold)  # newest first
    assert '<td data-label="Who">System</td>' in page


@pytest.mark.parametrize("size", [1, 3])
def test_checkout_records_its_stock_history_in_one_query(
    shopper, oak, size, django_assert_num_queries
):
    products = [factories.ProductFactory(vendor=oak, stock=5) for _ in range(size)]
    cart = factories.CartFactory(user=shopper)
    for product in products:
        factories.CartItemFactory(cart=cart, product=product, quantity=1)
    address = factories.AddressFactory(user=shopper)

    # The same whatever the number of products: their lock, one stock UPDATE for all of
    # them, one bulk INSERT of the sales (the event and its NOTIFY are one statement).
    with django_assert_num_queries(12):
        checkout.place_order(customer=shopper, cart=cart, address=address)
