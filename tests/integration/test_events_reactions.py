"""The handler map and the reactions it runs: emails once, however often delivered."""

import pytest
from django.core import mail
from django.db import transaction
from django.utils.module_loading import import_string

from accounts import events as account_events
from project import event_handlers, events
from project.events import dispatcher as event_dispatcher
from project.events.models import HandlerReceipt, OutboxEvent
from shop import events as shop_events
from tests import factories
from tests.fixtures import live_orders

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _dispatch_explicitly(settings):
    """These tests drive the dispatcher themselves: no delivery on commit in this process."""
    settings.EVENTS_DISPATCH_ON_COMMIT = False


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    """Tasks run as they are enqueued, so the emails the handlers ask for are in the outbox."""
    settings.TASKS = {
        "default": {
            "BACKEND": "django.tasks.backends.immediate.ImmediateBackend",
            "QUEUES": ["default", "critical", "emails", "analytics"],
        }
    }


DOMAIN_EVENTS = {
    "OrderPlaced",
    "PaymentCaptured",
    "PaymentFailed",
    "OrderShipped",
    "OrderCancelled",
    "RefundIssued",
    "UserRegistered",
    "VendorApproved",
    "EmailSent",
}


def test_handler_map_lists_every_domain_event_with_importable_handlers():
    assert set(event_handlers.HANDLERS) == DOMAIN_EVENTS
    for name, paths in event_handlers.HANDLERS.items():
        assert events.event_type(name).name == name
        for path in paths:
            assert callable(import_string(path)), path


def test_payment_captured_emails_shopper_and_vendor_once_even_when_redelivered(shopper):
    vendor = factories.VendorFactory(contact_email="orders@oak.example")
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    live_orders.capture(order)
    dispatcher = event_dispatcher.Dispatcher()

    dispatcher.run_until_idle()
    # A full redelivery, as if the dispatcher had died before committing its receipts.
    HandlerReceipt.objects.all().delete()
    OutboxEvent.objects.update(delivered_at=None)
    dispatcher.run_until_idle()

    assert sorted(message.to[0] for message in mail.outbox) == [
        "orders@oak.example",
        "shopper@example.com",
    ]
    assert OutboxEvent.objects.filter(delivered_at__isnull=True).count() == 0


def test_user_registered_sends_the_verification_link():
    user = factories.UserFactory(email="new@example.com", email_verified_at=None)
    with transaction.atomic():
        events.record(
            account_events.UserRegistered(user_id=user.pk, base_url="https://shop.example"),
            aggregate=user,
        )

    event_dispatcher.Dispatcher().run_until_idle()

    assert [message.to for message in mail.outbox] == [["new@example.com"]]
    assert "https://shop.example/accounts/verify/" in mail.outbox[0].body


def test_order_shipped_emails_the_tracking_number(shopper):
    vendor = factories.VendorFactory()
    order = factories.OrderFactory(customer=shopper, status="shipped")
    factories.OrderLineFactory(order=order, product__vendor=vendor, status="shipped")
    shipment = factories.ShipmentFactory(
        order=order, vendor=vendor, carrier="DHL", tracking_number="TRACK42"
    )
    with transaction.atomic():
        events.record(
            shop_events.OrderShipped(
                order_id=order.pk,
                shipment_id=shipment.pk,
                vendor_id=vendor.pk,
                carrier="DHL",
                tracking_number="TRACK42",
                order_status="shipped",
            ),
            aggregate=order,
        )

    event_dispatcher.Dispatcher().run_until_idle()

    assert [message.to for message in mail.outbox] == [["shopper@example.com"]]
    assert "TRACK42" in mail.outbox[0].body


def test_dispatch_on_commit_delivers_in_the_recording_process(shopper, settings):
    settings.EVENTS_DISPATCH_ON_COMMIT = True
    order = factories.OrderFactory(customer=shopper, status="paid")
    factories.OrderLineFactory(order=order)

    with transaction.atomic():
        row = events.record(
            shop_events.OrderCancelled(order_id=order.pk, reason="test", vendor_ids=()),
            aggregate=order,
        )
        row.refresh_from_db()
        assert row.delivered_at is None  # nothing before the commit

    row.refresh_from_db()
    assert row.delivered_at is not None
