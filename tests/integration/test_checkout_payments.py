import logging
from decimal import Decimal

import pytest
from django.utils import timezone

from shop.gateways import GatewayError, get_gateway
from shop.gateways import simulated as simulated_gateway
from shop.models import Order, OrderStatus, Payment, PaymentStatus, Product
from shop.services import checkout as checkout_services
from shop.services import orders as order_services
from shop.services import payments as payment_services
from tests import factories

APPROVE = "4242424242424242"
DECLINE = "4000000000000002"
NO_FUNDS = "4000000000009995"
TRANSIENT = "4000000000000119"


def card(number):
    return get_gateway().tokenize_card(
        number=number, exp_month=12, exp_year=timezone.now().year + 2, cvc="123"
    )


@pytest.fixture
def product(db):
    return factories.ProductFactory(name="Kettle", price=Decimal("30.00"), stock=5)


@pytest.fixture
def order(shopper, product):
    cart = factories.CartFactory(user=shopper)
    factories.CartItemFactory(cart=cart, product=product, quantity=2)
    return checkout_services.place_order(
        customer=shopper, cart=cart, address=factories.AddressFactory(user=shopper)
    )


def test_captured_payment_marks_the_order_paid(order, product):
    payment = payment_services.pay_order(order=order, card_token=card(APPROVE))

    assert payment.status == PaymentStatus.CAPTURED
    assert payment.amount == Decimal("60.00")
    assert payment.idempotency_key == f"payment-{payment.pk}"
    assert (payment.card_brand, payment.card_last4) == ("Visa", "4242")
    assert payment.gateway_reference.startswith("ch_sim_")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert Product.objects.get(pk=product.pk).stock == 3


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        (DECLINE, "card_declined", "Your card was declined."),
        (NO_FUNDS, "insufficient_funds", "Your card has insufficient funds."),
    ],
)
def test_declined_payment_cancels_the_order_and_returns_stock(
    order, product, number, code, message
):
    payment = payment_services.pay_order(order=order, card_token=card(number))

    assert payment.status == PaymentStatus.FAILED
    assert (payment.failure_code, payment.failure_message) == (code, message)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == message
    assert Product.objects.get(pk=product.pk).stock == 5


def test_transient_failure_retries_then_leaves_the_order_pending(order, product, monkeypatch):
    calls = []
    original = simulated_gateway.SimulatedGateway.charge

    def spy(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        return original(self, **kwargs)

    monkeypatch.setattr(simulated_gateway.SimulatedGateway, "charge", spy)

    payment = payment_services.pay_order(order=order, card_token=card(TRANSIENT))

    assert calls == [payment.idempotency_key] * 3
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "processing_error"
    assert payment.failure_message == (
        "We could not reach the payment processor. Your order is saved; please try again."
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert Product.objects.get(pk=product.pk).stock == 3

    retry = payment_services.pay_order(order=order, card_token=card(APPROVE))

    assert retry.status == PaymentStatus.CAPTURED
    assert retry.idempotency_key != payment.idempotency_key
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


def test_a_transient_failure_that_clears_is_captured_on_retry(order, monkeypatch):
    original = simulated_gateway.SimulatedGateway.charge
    failures = iter([True, False])

    def flaky(self, **kwargs):
        if next(failures):
            raise GatewayError("blip")
        return original(self, **kwargs)

    monkeypatch.setattr(simulated_gateway.SimulatedGateway, "charge", flaky)

    payment = payment_services.pay_order(order=order, card_token=card(APPROVE))

    assert payment.status == PaymentStatus.CAPTURED
    assert Payment.objects.filter(order=order).count() == 1


def test_paid_or_cancelled_orders_cannot_be_paid_again(order):
    payment_services.pay_order(order=order, card_token=card(APPROVE))

    with pytest.raises(payment_services.OrderNotPayable):
        payment_services.pay_order(order=order, card_token=card(APPROVE))
    assert Payment.objects.filter(order=order).count() == 1


def test_a_payment_in_progress_blocks_a_second_charge(order):
    in_flight = Payment.objects.create(
        order=order,
        amount=order.total,
        status=PaymentStatus.PROCESSING,
        idempotency_key="in-flight",
        payment_method="pm_sim_ok_x",
    )

    with pytest.raises(payment_services.PaymentInProgress):
        payment_services.pay_order(order=order, card_token=card(APPROVE))
    assert list(Payment.objects.filter(order=order)) == [in_flight]


def test_illegal_transition_is_an_error(order):
    order_services.transition_order(order=order, to=OrderStatus.CANCELLED, reason="Changed mind")

    with pytest.raises(order_services.IllegalTransition):
        order_services.transition_order(order=order, to=OrderStatus.PAID)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


def test_card_number_is_never_stored_or_logged(order, caplog):
    caplog.set_level(logging.DEBUG)

    for number in (TRANSIENT, APPROVE):
        payment_services.pay_order(order=order, card_token=card(number))

    for row in Payment.objects.filter(order=order).values():
        text = " ".join(str(value) for value in row.values())
        assert TRANSIENT not in text
        assert APPROVE not in text
    assert TRANSIENT not in caplog.text
    assert APPROVE not in caplog.text
