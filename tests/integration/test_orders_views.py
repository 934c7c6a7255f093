import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shop.models import OrderStatus, Payment, PaymentStatus
from shop.services import payments as payment_services
from tests import factories

LIST_URL = reverse("shop:order_list")
HTMX = {"HX-Request": "true"}


def detail_url(order):
    return reverse("shop:order_detail", args=[order.pk])


def pay_url(order):
    return reverse("shop:order_pay", args=[order.pk])


def card(number="4242424242424242"):
    return {"card_number": number, "expiry": f"12/{(timezone.now().year + 2) % 100}", "cvc": "123"}


@pytest.fixture
def signed_in(client, shopper):
    client.force_login(shopper)
    return client


def test_order_pages_require_login(client, db):
    order = factories.OrderFactory()
    for url in (LIST_URL, detail_url(order)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("accounts:login"))
    assert client.post(pay_url(order), card()).status_code == 302


def test_empty_order_history(signed_in):
    response = signed_in.get(LIST_URL)

    assert response.status_code == 200
    assert "You have not placed any orders yet." in response.text


def test_lists_only_my_orders_with_status_pill(signed_in, shopper):
    mine = factories.OrderFactory(customer=shopper, status=OrderStatus.PAID, total=Decimal("12.00"))
    factories.OrderLineFactory(order=mine)
    factories.OrderLineFactory(order=mine)
    theirs = factories.OrderFactory()

    response = signed_in.get(LIST_URL)

    assert mine.number in response.text
    assert theirs.number not in response.text
    assert '<span class="pill pill-paid">Paid</span>' in response.text
    assert "2 lines" in response.text
    assert "€12.00" in response.text


def test_order_list_paginates_ten_per_page_and_htmx_gets_the_fragment(signed_in, shopper):
    orders = [factories.OrderFactory(customer=shopper) for _ in range(12)]

    first = signed_in.get(LIST_URL)
    second = signed_in.get(LIST_URL, {"page": 2}, headers=HTMX)

    assert first.text.count('class="pill pill-') == 10
    assert orders[-1].number in first.text
    assert "<html" not in second.text
    assert second.text.lstrip().startswith('<section id="order-list"')
    assert second.text.count('class="pill pill-') == 2
    assert orders[0].number in second.text


def test_order_detail_shows_lines_grouped_by_vendor(signed_in, shopper):
    order = factories.OrderFactory(customer=shopper, total=Decimal("40.00"))
    line = factories.OrderLineFactory(
        order=order, product_name="Snapshot Name", unit_price=Decimal("20.00"), quantity=2
    )

    response = signed_in.get(detail_url(order))

    assert response.status_code == 200
    assert f"Order {order.number}" in response.text
    assert f"Sold by {line.vendor.name}" in response.text
    assert "Snapshot Name" in response.text
    assert "€40.00" in response.text
    assert "1 Market Street" in response.text
    assert "Pay now" in response.text


def test_another_shoppers_order_is_a_404(signed_in):
    theirs = factories.OrderFactory()

    assert signed_in.get(detail_url(theirs)).status_code == 404
    assert signed_in.post(pay_url(theirs), card()).status_code == 404
    assert not Payment.objects.exists()


def test_pay_now_is_only_offered_and_accepted_for_pending_orders(signed_in, shopper):
    paid = factories.OrderFactory(customer=shopper, status=OrderStatus.PAID)

    page = signed_in.get(detail_url(paid))
    response = signed_in.post(pay_url(paid), card(), follow=True)

    assert "Pay now" not in page.text
    assert f"Order {paid.number} is not awaiting payment." in response.text
    assert not Payment.objects.exists()


def test_pay_now_rejects_a_bad_card_on_the_order_page(signed_in, shopper):
    order = factories.OrderFactory(customer=shopper)

    response = signed_in.post(pay_url(order), card("1234123412341234"))

    assert response.status_code == 422
    assert "Enter a valid card number." in response.text
    assert "1234123412341234" not in response.text
    assert not Payment.objects.exists()


def test_pay_now_is_post_only_and_csrf_protected(shopper):
    order = factories.OrderFactory(customer=shopper)
    client = Client(enforce_csrf_checks=True)
    client.force_login(shopper)

    assert client.get(pay_url(order)).status_code == 405
    assert client.post(pay_url(order), card()).status_code == 403
    assert not Payment.objects.exists()


def test_pay_now_captures(signed_in, shopper, django_capture_on_commit_callbacks):
    order = factories.OrderFactory(customer=shopper)
    factories.OrderLineFactory(order=order)

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(pay_url(order), card())
    page = signed_in.get(response.url)

    assert response.url == detail_url(order)
    assert f"Thank you, your order {order.number} is confirmed." in page.text
    assert Payment.objects.get(order=order).status == PaymentStatus.CAPTURED


@pytest.mark.parametrize("size", [10, 500])
def test_order_list_query_budget_does_not_grow(
    signed_in, shopper, size, django_assert_max_num_queries
):
    for _ in range(size):
        factories.OrderLineFactory(order__customer=shopper)

    with django_assert_max_num_queries(6) as queries:
        response = signed_in.get(LIST_URL)

    assert response.text.count('class="pill pill-') == 10
    print(f"order list with {size} orders: {len(queries)} queries")


@pytest.mark.parametrize("size", [10, 500])
def test_order_detail_query_budget_does_not_grow(
    signed_in, shopper, size, django_assert_max_num_queries
):
    order = factories.OrderFactory(customer=shopper)
    vendors = [factories.VendorFactory() for _ in range(3)]
    for index in range(size):
        factories.OrderLineFactory(order=order, product__vendor=vendors[index % 3])

    with django_assert_max_num_queries(6) as queries:
        response = signed_in.get(detail_url(order))

    assert response.status_code == 200
    print(f"order detail with {size} lines: {len(queries)} queries")


def visible_text(html: str) -> str:
    """What a reader sees of a fragment: its text, tags gone, whitespace collapsed."""
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    return re.sub(r" ([.,;:])", r"\1", text)


DECLINED = "Your card was declined."


@pytest.mark.parametrize(
    ("order_status", "payment", "says", "pill", "step", "pay_now"),
    [
        (
            OrderStatus.PENDING_PAYMENT,
            {"status": PaymentStatus.PENDING, "attempts": 0},
            "Processing your payment…",
            "Processing",
            "Now: Processing your payment",
            False,
        ),
        (
            OrderStatus.PENDING_PAYMENT,
            {"status": PaymentStatus.PROCESSING, "attempts": 1},
            "Processing your payment…",
            "Processing",
            "Now: Processing your payment",
            False,
        ),
        (
            OrderStatus.PENDING_PAYMENT,
            {"status": PaymentStatus.PROCESSING, "attempts": 2},
            "We are retrying your payment — the processor did not answer. "
            "You will not be charged twice.",
            "Retrying",
            "Now: Retrying your payment",
            False,
        ),
        (
            OrderStatus.PENDING_PAYMENT,
            {"status": PaymentStatus.PROCESSING, "attempts": 3, "outcome_unknown_since": True},
            "We are confirming your payment with the processor. You will not be charged twice; "
            "if no charge went through, this page will let you pay again.",
            "Confirming",
            "Now: Confirming your payment",
            False,
        ),
        (
            OrderStatus.PAID,
            {"status": PaymentStatus.CAPTURED, "attempts": 1},
            "Thank you, your order {number} is confirmed.",
            "Paid",
            "Done: Payment received Visa ending 4242",
            False,
        ),
        (
            OrderStatus.CANCELLED,
            {"status": PaymentStatus.FAILED, "failure_message": DECLINED},
            f"{DECLINED} Order {{number}} was cancelled and you have not been charged. "
            "Your items are back in your cart.",
            "Declined",
            "Stopped: Payment declined Visa ending 4242",
            False,
        ),
        (
            OrderStatus.PENDING_PAYMENT,
            {
                "status": PaymentStatus.FAILED,
                "failure_code": payment_services.PROCESSING_ERROR_CODE,
                "failure_message": payment_services.PROCESSING_ERROR_MESSAGE,
            },
            payment_services.PROCESSING_ERROR_MESSAGE,
            "Failed",
            "Now: Awaiting payment Visa ending 4242",
            True,
        ),
    ],
    ids=["pending", "processing", "retrying", "outcome-unknown", "paid", "declined", "gave-up"],
)
def test_the_status_fragment_says_where_the_payment_stands(
    signed_in, shopper, order_status, payment, says, pill, step, pay_now
):
    order = factories.OrderFactory(customer=shopper, status=order_status)
    if payment.pop("outcome_unknown_since", False):
        payment["outcome_unknown_since"] = timezone.now()
    factories.CapturedPaymentFactory(order=order, **payment)

    fragment = signed_in.get(detail_url(order), headers=HTMX)
    text = visible_text(fragment.text)

    assert fragment.text.lstrip().startswith('<div id="order-status"')
    # One status, a timeline agreeing with it, and a payment box in the same words.
    headline = f'<span class="pill pill-{order.status}">{order.get_status_display()}</span>'
    assert f'<p class="order-headline">{headline}</p>' in fragment.text
    assert "Done: Order placed" in text
    assert step in text
    assert f"Payment {pill}" in text
    assert "Card Visa ending 4242" in text
    assert says.format(number=order.number) in text
    assert ("Pay now" in text) is pay_now
    assert ('<form method="post"' in fragment.text) is pay_now


def test_an_unknown_outcome_polls_slowly_and_other_payments_in_flight_every_2s(signed_in, shopper):
    unknown = factories.OrderFactory(customer=shopper)
    factories.CapturedPaymentFactory(
        order=unknown, status=PaymentStatus.PROCESSING, outcome_unknown_since=timezone.now()
    )
    processing = factories.OrderFactory(customer=shopper)
    factories.CapturedPaymentFactory(order=processing, status=PaymentStatus.PROCESSING)

    slow = signed_in.get(detail_url(unknown), headers=HTMX)
    fast = signed_in.get(detail_url(processing), headers=HTMX)

    assert 'hx-trigger="every 10s"' in slow.text
    assert 'hx-trigger="every 2s"' in fast.text
    # Retries and unknown outcomes are no events: the poll runs even with the live socket open.
    assert "data-poll-while-live" in slow.text
    assert "data-poll-while-live" in fast.text


def test_a_shipped_order_shows_its_tracking_in_the_status_fragment(signed_in, shopper):
    order = factories.OrderFactory(customer=shopper, status=OrderStatus.SHIPPED)
    factories.CapturedPaymentFactory(order=order)
    shipment = factories.ShipmentFactory(order=order, carrier="DHL", tracking_number="JJD001")

    fragment = signed_in.get(detail_url(order), headers=HTMX)
    text = visible_text(fragment.text)

    assert '<span class="pill pill-shipped">Shipped</span></p>' in fragment.text
    assert f"Done: Shipped by {shipment.vendor.name} DHL, tracking number JJD001" in text
    assert "Thank you" not in text
    assert "hx-trigger" not in fragment.text


def test_a_refunded_order_says_how_much_came_back(signed_in, shopper):
    order = factories.OrderFactory(
        customer=shopper, status=OrderStatus.REFUNDED, total=Decimal("30.00")
    )
    factories.CapturedPaymentFactory(
        order=order, status=PaymentStatus.REFUNDED, refunded_amount=Decimal("30.00")
    )

    fragment = signed_in.get(detail_url(order), headers=HTMX)
    text = visible_text(fragment.text)

    assert '<span class="pill pill-refunded">Refunded</span></p>' in fragment.text
    assert "Stopped: Refunded" in text
    assert "€30.00 has been refunded to your card." in text
    assert "Pay now" not in text


def test_an_order_the_sellers_cancelled_says_why_once_in_its_timeline(signed_in, shopper):
    order = factories.OrderFactory(
        customer=shopper,
        status=OrderStatus.CANCELLED,
        cancel_reason="Every item was cancelled by the seller.",
    )
    factories.CapturedPaymentFactory(
        order=order, status=PaymentStatus.REFUNDED, refunded_amount=order.total
    )

    fragment = signed_in.get(detail_url(order), headers=HTMX)
    text = visible_text(fragment.text)

    assert '<span class="pill pill-cancelled">Cancelled</span></p>' in fragment.text
    assert "Done: Payment received Visa ending 4242" in text
    assert "Stopped: Cancelled Every item was cancelled by the seller." in text
    assert text.count("Every item was cancelled by the seller.") == 1
    assert "Payment Refunded" in text
