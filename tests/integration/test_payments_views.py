import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from shop.models import Order, OrderStatus, Payment, PaymentStatus
from shop.services import payments as payment_services
from shop.tasks import payments as payment_tasks
from tests import factories
from tests.integration.payments_support import TRANSIENT, card, place_order

POLL = {"HX-Request": "true", "HX-Target": "order-status"}


@pytest.fixture(autouse=True)
def _own_ledger(settings, tmp_path):
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"


@pytest.fixture
def signed_in(client, shopper):
    client.force_login(shopper)
    return client


@pytest.fixture
def order(shopper):
    return place_order(shopper, (factories.ProductFactory(price=Decimal("30.00"), stock=5), 2))


@pytest.fixture
def processing(order, django_capture_on_commit_callbacks):
    """The order's payment, enqueued but not yet picked up by a worker."""
    with django_capture_on_commit_callbacks(execute=False):
        return payment_services.start_payment(order=order, card_token=card())


def expiry():
    return f"12/{(timezone.now().year + 2) % 100:02d}"


def test_processing_page_polls_politely_and_works_without_javascript(signed_in, processing):
    response = signed_in.get(processing.order.get_absolute_url())

    assert "Processing your payment…" in response.text
    assert 'hx-trigger="every 2s"' in response.text
    assert "refresh the page</a>" in response.text
    assert 'http-equiv="refresh"' not in response.text
    assert "Pay now" not in response.text


def test_the_poll_gets_the_whole_status_fragment_until_and_when_the_payment_settles(
    signed_in, processing, django_capture_on_commit_callbacks
):
    url = processing.order.get_absolute_url()

    waiting = signed_in.get(url, headers=POLL)

    assert waiting.status_code == 200
    assert waiting.text.lstrip().startswith('<div id="order-status"')
    assert "<html" not in waiting.text
    assert "Processing your payment…" in waiting.text
    assert '<span class="pill pill-pending_payment">Awaiting payment</span>' in waiting.text
    assert '<span class="pill pill-pending">Processing</span>' in waiting.text
    assert 'hx-trigger="every 2s"' in waiting.text

    with django_capture_on_commit_callbacks(execute=True):
        payment_tasks.process_order_payment.enqueue(processing.pk)
    settled = signed_in.get(url, headers=POLL)

    # Settled: one swap of the fragment brings the status, the payment and the actions along.
    assert settled.status_code == 200
    assert "HX-Refresh" not in settled.headers
    assert settled.text.lstrip().startswith('<div id="order-status"')
    assert f"Thank you, your order {processing.order.number} is confirmed." in settled.text
    assert '<span class="pill pill-paid">Paid</span>' in settled.text
    assert '<span class="pill pill-captured">Paid</span>' in settled.text
    assert "hx-trigger" not in settled.text
    assert "Pay now" not in settled.text


def test_pay_now_is_refused_while_a_payment_is_in_flight(signed_in, processing):
    url = reverse("shop:order_pay", args=[processing.order_id])

    response = signed_in.post(
        url, {"card_number": "4242424242424242", "expiry": expiry(), "cvc": "123"}, follow=True
    )

    assert "A payment for this order is already being processed." in response.text
    assert Payment.objects.filter(order_id=processing.order_id).count() == 1


def test_a_payment_given_up_on_offers_pay_now_again(
    signed_in, order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        payment = payment_services.start_payment(order=order, card_token=card(TRANSIENT))
    Payment.objects.filter(pk=payment.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        payment_tasks.process_order_payment.enqueue(payment.pk)

    page = signed_in.get(order.get_absolute_url())

    assert "no charge went through. Your order is saved; please pay again." in page.text
    assert "Pay now" in page.text

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            reverse("shop:order_pay", args=[order.pk]),
            {"card_number": "4242 4242 4242 4242", "expiry": expiry(), "cvc": "123"},
        )

    assert response.url == order.get_absolute_url()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert list(Payment.objects.filter(order=order).values_list("status", "failure_code")) == [
        (PaymentStatus.CAPTURED, ""),
        (PaymentStatus.FAILED, "processing_error"),
    ]


def test_order_page_with_a_payment_in_flight_stays_within_its_query_budget(
    signed_in, processing, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4) as queries:
        signed_in.get(processing.order.get_absolute_url(), headers=POLL)

    print(f"order-status poll: {len(queries)} queries")
