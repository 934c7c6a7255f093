"""Webhooks reach the vendor's system: order events become signed POSTs to each vendor's
endpoints, with only that vendor's lines, once per event and endpoint, retried with backoff
when the receiver fails, and never sent into a private network when that is refused.

The receiver is a real HTTP server in the test (tests.fixtures.webhook_receiver) that checks
the signature as a vendor would. Tasks run inline (the immediate backend); events are
dispatched after each commit, as the test settings do.
"""

# The receiver fixture is imported, then named by each test that uses it.
# ruff: noqa: F811

import ast
import datetime
import importlib
import uuid
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.core.cache import cache
from django.utils import timezone
from django_q.models import Schedule

from project.audit.models import AuditEntry
from project.background.schedules import run_scheduled
from project.events import dispatcher as event_dispatcher
from project.events.models import HandlerReceipt, OutboxEvent
from project.housekeeping import run_purge
from tests import factories
from tests.fixtures import live_orders
from tests.fixtures.webhook_receiver import verify, webhook_receiver  # noqa: F401 - fixture
from webhooks import delivery as delivery_engine
from webhooks import services, transport
from webhooks.models import Delivery, DeliveryState, Endpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True


def owner_of(vendor):
    return factories.VendorMembershipFactory(vendor=vendor).user


def endpoint_for(vendor, receiver, *, events=("order.paid", "order.cancelled")) -> Endpoint:
    endpoint = services.create_endpoint(
        vendor=vendor, url=receiver.url, events=list(events), acting_user=owner_of(vendor)
    )
    receiver.secrets.append(endpoint.secret)
    return endpoint


def two_vendor_order(shopper):
    oak = factories.VendorFactory(name="Oak")
    elm = factories.VendorFactory(name="Elm")
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=oak, price="24.50")
    elm_product = factories.ProductFactory(vendor=elm, name="Elm Stool", price=Decimal("10.00"))
    factories.OrderLineFactory(order=order, product=elm_product, quantity=3)
    return order, oak, elm


def make_due(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
    )


def test_order_paid_reaches_each_vendor_with_only_its_own_lines(shopper, webhook_receiver):
    order, oak, elm = two_vendor_order(shopper)
    oak_endpoint = endpoint_for(oak, webhook_receiver)
    elm_endpoint = endpoint_for(elm, webhook_receiver)

    live_orders.capture(order)

    received = webhook_receiver.wait_for(2)
    assert all(request.verified for request in received)
    by_vendor = {request.json["data"]["vendor_id"]: request for request in received}
    assert set(by_vendor) == {oak.pk, elm.pk}
    oak_request, elm_request = by_vendor[oak.pk], by_vendor[elm.pk]
    assert oak_request.path == "/hooks/bazaar"
    assert oak_request.headers["Bazaar-Event"] == "order.paid"
    assert oak_request.headers["Content-Type"] == "application/json"
    oak_order = oak_request.json["data"]["order"]
    assert oak_order["number"] == order.number
    assert oak_order["status"] == "paid"
    assert [line["product_name"] for line in oak_order["lines"]] == ["Walnut Board"]
    assert oak_order["vendor_subtotal"] == "24.50"
    elm_order = elm_request.json["data"]["order"]
    assert [(line["product_name"], line["quantity"]) for line in elm_order["lines"]] == [
        ("Elm Stool", 3)
    ]
    assert elm_order["lines"][0]["unit_price"] == "10.00"
    assert elm_order["vendor_subtotal"] == "30.00"
    # One event id, two deliveries, each with its own id for the receiver's dedupe.
    assert oak_request.json["id"] == elm_request.json["id"]
    oak_delivery = Delivery.objects.get(endpoint=oak_endpoint)
    assert oak_request.delivery == str(oak_delivery.uuid)
    assert (oak_delivery.state, oak_delivery.attempts, oak_delivery.status_code) == (
        DeliveryState.DELIVERED,
        1,
        200,
    )
    assert oak_delivery.response_excerpt == '{"ok": true}'
    assert Delivery.objects.get(endpoint=elm_endpoint).state == DeliveryState.DELIVERED


def test_an_event_delivered_twice_by_the_outbox_makes_one_delivery(
    shopper, webhook_receiver, settings
):
    settings.EVENTS_DISPATCH_ON_COMMIT = False
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver)
    live_orders.capture(order)
    dispatcher = event_dispatcher.Dispatcher()
    dispatcher.run_until_idle()

    # A full redelivery, as if the dispatcher had died before committing its receipts.
    HandlerReceipt.objects.all().delete()
    OutboxEvent.objects.update(delivered_at=None)
    dispatcher.run_until_idle()

    assert Delivery.objects.count() == 1
    assert len(webhook_receiver.received) == 1


def test_only_subscribed_active_endpoints_receive(shopper, webhook_receiver):
    order, oak, elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver, events=["order.cancelled"])
    disabled = endpoint_for(elm, webhook_receiver)
    services.set_endpoint_active(
        vendor=elm, endpoint_id=disabled.pk, active=False, acting_user=owner_of(elm)
    )

    live_orders.capture(order)

    assert Delivery.objects.count() == 0
    assert webhook_receiver.received == []


def test_a_cancelled_order_is_announced_with_its_reason(shopper, webhook_receiver):
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver, events=["order.cancelled"])

    live_orders.decline(order)

    [request] = webhook_receiver.wait_for(1)
    assert request.verified
    assert request.headers["Bazaar-Event"] == "order.cancelled"
    data = request.json["data"]["order"]
    assert data["status"] == "cancelled"
    assert data["cancel_reason"]
    assert [line["product_name"] for line in data["lines"]] == ["Walnut Board"]


def test_a_failing_receiver_is_retried_with_backoff_then_delivered(shopper, webhook_receiver):
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver)
    webhook_receiver.answer(500)

    before = timezone.now()
    live_orders.capture(order)

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.status_code) == (
        DeliveryState.PENDING,
        1,
        500,
    )
    assert delivery.response_excerpt == '{"ok": false}'
    assert delivery.error == "The endpoint answered 500."
    # The first retry is due about a minute later (60 s +/- 20 %).
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 47 <= wait <= 73
    # Not due yet: an early task changes nothing.
    assert delivery_engine.attempt(delivery_id=delivery.pk) == "skipped"
    make_due(delivery)

    assert delivery_engine.attempt(delivery_id=delivery.pk) == "delivered"

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.status_code, delivery.error) == (
        DeliveryState.DELIVERED,
        2,
        200,
        "",
    )
    first, second = webhook_receiver.received
    assert first.delivery == second.delivery == str(delivery.uuid)
    assert first.body == second.body


def test_a_hanging_receiver_times_out_and_a_down_one_is_refused(shopper, webhook_receiver):
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver)
    webhook_receiver.hang()

    live_orders.capture(order)

    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.status_code) == (
        DeliveryState.PENDING,
        1,
        None,
    )
    assert delivery.error == "No answer within the timeout."
    webhook_receiver.stop()
    make_due(delivery)

    assert delivery_engine.attempt(delivery_id=delivery.pk) == "retrying"

    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.error == "Connection refused."


def test_the_last_attempt_fails_the_delivery(shopper, webhook_receiver, settings):
    settings.WEBHOOKS_MAX_ATTEMPTS = 3
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver)
    webhook_receiver.status = 503
    live_orders.capture(order)
    delivery = Delivery.objects.get()
    waits = []
    for _ in range(2):
        delivery.refresh_from_db()
        waits.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())
        make_due(delivery)
        delivery_engine.attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryState.FAILED,
        3,
        None,
    )
    assert len(webhook_receiver.received) == 3
    # Exponential: about 1 min, then about 4 min.
    assert 47 <= waits[0] <= 73
    assert 190 <= waits[1] <= 290
    assert delivery_engine.attempt(delivery_id=delivery.pk) == "skipped"


def test_retry_now_gives_a_failed_delivery_one_more_attempt(shopper, webhook_receiver, settings):
    settings.WEBHOOKS_MAX_ATTEMPTS = 1
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver)
    webhook_receiver.answer(500)
    live_orders.capture(order)
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    owner = owner_of(oak)

    retried = services.retry_delivery(vendor=oak, delivery_id=delivery.pk, acting_user=owner)

    assert (retried.state, retried.attempts, retried.status_code) == (
        DeliveryState.DELIVERED,
        2,
        200,
    )
    entry = AuditEntry.objects.get(action="webhook.delivery_retried")
    assert (entry.actor_id, entry.vendor_id, entry.metadata["was"]) == (
        owner.pk,
        oak.pk,
        "failed",
    )


def test_a_worker_that_died_mid_attempt_is_taken_over_after_its_lease(shopper, webhook_receiver):
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver)
    webhook_receiver.answer(500)
    live_orders.capture(order)
    delivery = Delivery.objects.get()
    # As a killed worker leaves it: SENDING, its lease running.
    Delivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.SENDING,
        lease_expires_at=timezone.now() + datetime.timedelta(seconds=30),
    )
    assert delivery_engine.attempt(delivery_id=delivery.pk) == "skipped"
    assert delivery_engine.requeue_stalled() == 0

    Delivery.objects.filter(pk=delivery.pk).update(
        lease_expires_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    # The sweeper enqueues it (run inline here) and the attempt takes it over.
    assert delivery_engine.requeue_stalled() == 1

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 2)
    assert len(webhook_receiver.received) == 2


def test_rotation_signs_with_both_secrets_for_a_day(shopper, webhook_receiver):
    order, oak, _elm = two_vendor_order(shopper)
    endpoint = endpoint_for(oak, webhook_receiver)
    old_secret = endpoint.secret
    rotated = services.rotate_secret(vendor=oak, endpoint_id=endpoint.pk, acting_user=owner_of(oak))
    assert rotated.secret != old_secret
    assert rotated.secret.startswith("whsec_")
    webhook_receiver.secrets[:] = [old_secret]  # the vendor has not switched yet

    live_orders.capture(order)

    [request] = webhook_receiver.wait_for(1)
    assert request.verified
    header = request.headers["Bazaar-Signature"]
    assert header.count("v1=") == 2
    assert verify(header=header, body=request.body, secrets=[rotated.secret])
    assert not verify(header=header, body=request.body, secrets=["whsec_wrong"])
    # The audit log says it was rotated, never with the secret.
    entry = AuditEntry.objects.get(action="webhook.secret_rotated")
    assert old_secret not in str(entry.changes)
    assert rotated.secret not in str(entry.changes)


def test_a_private_address_is_refused_when_not_allowed(shopper, webhook_receiver, settings):
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver)
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False

    live_orders.capture(order)

    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.error == "The URL must name a public host."
    assert webhook_receiver.received == []


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://localhost/hook",
        "https://user:pw@example.com/hook",
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https://example.com:99999/hook",
        "https://example.com:https/hook",
    ],
)
def test_unsafe_urls_are_refused_in_production(settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEBHOOKS_REQUIRE_HTTPS = True
    with pytest.raises(transport.UnsafeDestination):
        transport.check_url(url)


def test_a_name_resolving_to_a_private_address_is_refused(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(transport.UnsafeDestination, match="private address"):
        transport.resolve("localhost", 443)
    assert transport.is_public_address("93.184.215.14")


def test_old_finished_deliveries_are_purged_and_pending_ones_stay(shopper, webhook_receiver):
    oak = factories.VendorFactory()
    endpoint = endpoint_for(oak, webhook_receiver)
    long_ago = timezone.now() - datetime.timedelta(days=31)
    rows = {
        state: Delivery.objects.create(
            vendor=oak,
            endpoint=endpoint,
            event_id=uuid.uuid4(),
            event_type="order.paid",
            payload={},
            state=state,
        )
        for state in DeliveryState.values
    }
    Delivery.objects.update(created_at=long_ago)
    recent = services.send_test_event(
        vendor=oak, endpoint_id=endpoint.pk, acting_user=owner_of(oak)
    )

    assert run_purge(name="webhooks") == 2

    left = set(Delivery.objects.values_list("pk", flat=True))
    assert left == {
        rows[DeliveryState.PENDING].pk,
        rows[DeliveryState.SENDING].pk,
        recent.pk,
    }


def test_the_scheduler_runs_the_stalled_delivery_sweep_every_minute(shopper, webhook_receiver):
    order, oak, _elm = two_vendor_order(shopper)
    endpoint_for(oak, webhook_receiver)
    webhook_receiver.answer(500)
    live_orders.capture(order)
    delivery = Delivery.objects.get()
    # Its retry's task never came (a backend that cannot defer one, a lost task).
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - datetime.timedelta(minutes=3)
    )
    schedules = importlib.import_module("webhooks.migrations.0003_schedules")
    schedules.create_schedules(django_apps, None)  # flushed by earlier transactional tests
    schedule = Schedule.objects.get(name="webhooks-requeue-stalled")
    assert (schedule.func, schedule.minutes) == (
        "project.background.schedules.run_scheduled",
        1,
    )
    cache.delete("background:schedule:webhooks-requeue-stalled")

    assert run_scheduled(*ast.literal_eval(schedule.args)) == "ran"

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 2)
