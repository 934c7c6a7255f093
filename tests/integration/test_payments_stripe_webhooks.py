import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from shop.models import Order, OrderStatus, Payment, PaymentStatus, Refund, RefundStatus
from shop.services import payments as payment_services
from shop.views import webhooks
from tests import factories
from tests.integration.payments_support import card, place_order

URL = reverse("shop:stripe_webhook")
SECRET = "whsec_test_bazaar"


@pytest.fixture(autouse=True)
def _stripe(settings, tmp_path):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"


def signed(payload: str, *, secret: str = SECRET, timestamp: int | None = None) -> str:
    """Stripe's scheme: t=<unix time>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(kind: str, obj: dict) -> str:
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "type": kind,
            "data": {"object": obj},
        }
    )


def deliver(client, payload: str, signature: str | None = None):
    return client.post(
        URL,
        payload,
        content_type="application/json",
        headers={"Stripe-Signature": signature or signed(payload)},
    )


@pytest.fixture
def in_flight(shopper, django_capture_on_commit_callbacks):
    """A payment whose charge has not been recorded yet (the task did not get to it)."""
    product = factories.ProductFactory(price=Decimal("30.00"), stock=5)
    order = place_order(shopper, (product, 2))
    with django_capture_on_commit_callbacks(execute=False):
        return payment_services.start_payment(order=order, card_token=card())


def intent(payment, **extra):
    return {
        "id": "pi_3Nwebhook",
        "object": "payment_intent",
        "metadata": {"bazaar_idempotency_key": payment.idempotency_key},
        **extra,
    }


def test_payment_intent_succeeded_captures_the_payment(
    client, in_flight, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, event("payment_intent.succeeded", intent(in_flight)))

    assert response.status_code == 200
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.gateway_reference) == ("captured", "pi_3Nwebhook")
    assert Order.objects.get(pk=in_flight.order_id).status == OrderStatus.PAID
    assert any("is confirmed" in message.subject for message in mail.outbox)


def test_payment_intent_payment_failed_cancels_the_order(
    client, in_flight, django_capture_on_commit_callbacks
):
    failed = intent(
        in_flight,
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, event("payment_intent.payment_failed", failed))

    assert response.status_code == 200
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.failure_message) == ("failed", "Your card was declined.")
    assert Order.objects.get(pk=in_flight.order_id).status == OrderStatus.CANCELLED


@pytest.mark.parametrize("case", ["wrong secret", "tampered body", "no signature"])
def test_a_bad_signature_is_refused_and_changes_nothing(client, in_flight, case):
    payload = event("payment_intent.succeeded", intent(in_flight))
    body, signature = {
        "wrong secret": (payload, signed(payload, secret="whsec_someone_else")),
        "tampered body": (payload.replace("pi_3Nwebhook", "pi_evil"), signed(payload)),
        "no signature": (payload, ""),
    }[case]

    response = client.post(
        URL, body, content_type="application/json", headers={"Stripe-Signature": signature}
    )

    assert response.status_code == 400
    assert Payment.objects.get(pk=in_flight.pk).status == PaymentStatus.PENDING
    assert Order.objects.get(pk=in_flight.order_id).status == OrderStatus.PENDING_PAYMENT


def test_a_stale_signature_is_refused(client, in_flight):
    payload = event("payment_intent.succeeded", intent(in_flight))

    response = deliver(client, payload, signed(payload, timestamp=int(time.time()) - 3600))

    assert response.status_code == 400
    assert Payment.objects.get(pk=in_flight.pk).status == PaymentStatus.PENDING


def test_a_replayed_event_is_ignored(client, in_flight, monkeypatch):
    handled = []
    original = webhooks.handle_event
    monkeypatch.setattr(webhooks, "handle_event", lambda e: handled.append(e) or original(e))
    payload = event("payment_intent.succeeded", intent(in_flight))

    first = deliver(client, payload)
    replay = deliver(client, payload)

    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.text == "Already processed."
    assert len(handled) == 1


def test_charge_refunded_records_a_refund_made_at_stripe_once(
    client, in_flight, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, event("payment_intent.succeeded", intent(in_flight)))
    charge = {
        "id": "ch_3Nwebhook",
        "object": "charge",
        "payment_intent": "pi_3Nwebhook",
        "amount": 6000,
        "amount_refunded": 2500,
    }

    for _ in range(2):  # two distinct events saying the same thing
        assert deliver(client, event("charge.refunded", charge)).status_code == 200

    refund = Refund.objects.get()
    assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, Decimal("25.00"))
    assert Payment.objects.get(pk=in_flight.pk).refunded_amount == Decimal("25.00")

    deliver(client, event("charge.refunded", charge | {"amount_refunded": 6000}))

    payment = Payment.objects.get(pk=in_flight.pk)
    assert (payment.status, payment.refunded_amount) == ("refunded", Decimal("60.00"))
    assert Order.objects.get(pk=in_flight.order_id).status == OrderStatus.REFUNDED


def test_unknown_events_and_payments_are_acknowledged_and_ignored(client, db):
    assert deliver(client, event("customer.created", {"id": "cus_1"})).status_code == 200
    unknown = {"id": "pi_unknown", "object": "payment_intent", "metadata": {}}
    assert deliver(client, event("payment_intent.succeeded", unknown)).status_code == 200


def test_webhook_is_post_only_csrf_exempt_and_off_without_a_secret(client, settings, db):
    payload = event("customer.created", {"id": "cus_1"})
    strict = Client(enforce_csrf_checks=True)

    assert client.get(URL).status_code == 405
    assert deliver(strict, payload).status_code == 200
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert deliver(client, event("customer.created", {"id": "cus_2"})).status_code == 404
