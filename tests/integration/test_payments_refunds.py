import datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from shop.gateways import GatewayError, simulated
from shop.models import Order, OrderStatus, Payment, PaymentStatus, Refund, RefundStatus
from shop.services import payments as payment_services
from shop.services import refunds as refund_services
from shop.tasks import emails as email_tasks
from shop.tasks import payments as payment_tasks
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor
from tests.integration.payments_support import card, place_order


@pytest.fixture(autouse=True)
def _own_ledger(settings, tmp_path):
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"


@pytest.fixture
def run_commit_hooks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def vendors(db):
    return factories.VendorFactory(name="Oak"), factories.VendorFactory(name="Flax")


@pytest.fixture
def paid_order(shopper, vendors, run_commit_hooks):
    """€58.00: 2 × €24.50 from Oak and 1 × €9.00 from Flax, paid."""
    oak, flax = vendors
    board = factories.ProductFactory(vendor=oak, price=Decimal("24.50"))
    towel = factories.ProductFactory(vendor=flax, price=Decimal("9.00"))
    order = place_order(shopper, (board, 2), (towel, 1))
    with run_commit_hooks():
        payment_services.start_payment(order=order, card_token=card())
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    return order


def _payment(order) -> Payment:
    return Payment.objects.get(order=order, status__in=["captured", "refunded"])


def _gateway_refunds(order):
    return simulated.SimulatedGateway.ledger_refunds(
        charge_reference=_payment(order).gateway_reference
    )


def test_whole_order_refund_returns_everything_and_refunds_the_order(
    paid_order, staff, run_commit_hooks
):
    with run_commit_hooks():
        refund = refund_services.request_refund(
            order=paid_order, acting_user=staff, reason="Customer asked"
        )

    refund.refresh_from_db()
    assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, Decimal("58.00"))
    assert refund.gateway_reference.startswith("re_sim_")
    assert refund.processed_at is not None
    assert refund.requested_by == staff
    payment = _payment(paid_order)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("58.00"))
    assert Order.objects.get(pk=paid_order.pk).status == OrderStatus.REFUNDED
    assert [entry.amount for entry in _gateway_refunds(paid_order)] == [Decimal("58.00")]


def test_line_refunds_take_their_amount_and_the_last_one_refunds_the_order(
    paid_order, vendors, run_commit_hooks
):
    oak, flax = vendors
    oak_lines = list(paid_order.lines.filter(vendor=oak))
    flax_lines = list(paid_order.lines.filter(vendor=flax))

    with run_commit_hooks():
        first = refund_services.request_refund(
            order=paid_order, acting_user=None, reason="Out of stock", lines=oak_lines, vendor=oak
        )

    first.refresh_from_db()
    assert (first.status, first.amount, first.vendor) == (
        RefundStatus.SUCCEEDED,
        Decimal("49.00"),
        oak,
    )
    assert list(first.lines.all()) == oak_lines
    payment = _payment(paid_order)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.CAPTURED, Decimal("49.00"))
    assert Order.objects.get(pk=paid_order.pk).status == OrderStatus.PAID

    with run_commit_hooks():
        refund_services.request_refund(
            order=paid_order, acting_user=None, reason="Damaged", lines=flax_lines, vendor=flax
        )

    payment = _payment(paid_order)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("58.00"))
    assert Order.objects.get(pk=paid_order.pk).status == OrderStatus.REFUNDED
    assert [e.amount for e in _gateway_refunds(paid_order)] == [Decimal("49.00"), Decimal("9.00")]


def test_whole_order_refund_after_a_line_refund_takes_only_what_is_left(
    paid_order, vendors, django_capture_on_commit_callbacks
):
    oak, _flax = vendors
    with django_capture_on_commit_callbacks(execute=False):
        # Still pending: it counts against what is left before the gateway has answered.
        refund_services.request_refund(
            order=paid_order,
            acting_user=None,
            reason="Out of stock",
            lines=list(paid_order.lines.filter(vendor=oak)),
            vendor=oak,
        )
        rest = refund_services.request_refund(order=paid_order, acting_user=None, reason="All")

    assert rest.amount == Decimal("9.00")
    with pytest.raises(refund_services.NothingToRefund):
        refund_services.request_refund(order=paid_order, acting_user=None, reason="Again")
    assert Refund.objects.count() == 2


def test_a_line_is_refunded_at_most_once_and_only_for_its_order_and_vendor(
    paid_order, vendors, shopper, run_commit_hooks
):
    oak, flax = vendors
    oak_lines = list(paid_order.lines.filter(vendor=oak))
    with run_commit_hooks():
        refund_services.request_refund(
            order=paid_order, acting_user=None, reason="x", lines=oak_lines, vendor=oak
        )

    with pytest.raises(refund_services.RefundLinesInvalid, match="already been refunded"):
        refund_services.request_refund(
            order=paid_order, acting_user=None, reason="x", lines=oak_lines, vendor=oak
        )
    with pytest.raises(refund_services.RefundLinesInvalid, match="not part of this order"):
        refund_services.request_refund(
            order=paid_order,
            acting_user=None,
            reason="x",
            lines=list(paid_order.lines.filter(vendor=flax)),
            vendor=oak,
        )
    other = factories.OrderLineFactory()
    with pytest.raises(refund_services.RefundLinesInvalid):
        refund_services.request_refund(
            order=paid_order, acting_user=None, reason="x", lines=[other]
        )
    assert Refund.objects.count() == 1


def test_an_unpaid_order_has_nothing_to_refund(shopper, vendors):
    order = place_order(shopper, (factories.ProductFactory(vendor=vendors[0]), 1))

    with pytest.raises(refund_services.NothingToRefund):
        refund_services.request_refund(order=order, acting_user=None, reason="x")
    assert not Refund.objects.exists()


def test_refund_reruns_and_transient_failures_refund_once(
    paid_order, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_services.request_refund(order=paid_order, acting_user=None, reason="x")
    settings.SIMULATED_GATEWAY_FAILURE_RATE = 1.0
    with pytest.raises(GatewayError):
        payment_tasks.process_refund.call(refund.pk)
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.PROCESSING
    settings.SIMULATED_GATEWAY_FAILURE_RATE = 0.0

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            payment_tasks.process_refund.enqueue(refund.pk)

    assert len(_gateway_refunds(paid_order)) == 1
    assert _payment(paid_order).refunded_amount == Decimal("58.00")
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED


def test_worker_killed_after_the_refund_before_our_commit_refunds_once(
    paid_order, django_capture_on_commit_callbacks, monkeypatch
):
    with django_capture_on_commit_callbacks(execute=False):
        refund = refund_services.request_refund(order=paid_order, acting_user=None, reason="x")
    original = refund_services._apply_result

    def killed(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(refund_services, "_apply_result", killed)
    with pytest.raises(SystemExit):
        refund_services.process_refund(refund_id=refund.pk)
    assert len(_gateway_refunds(paid_order)) == 1
    assert _payment(paid_order).refunded_amount == Decimal("0.00")
    monkeypatch.setattr(refund_services, "_apply_result", original)
    Refund.objects.filter(pk=refund.pk).update(
        processing_started_at=timezone.now() - datetime.timedelta(hours=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert payment_tasks.sweep_stuck_payments.enqueue().return_value == {
            "payments": [],
            "refunds": [refund.pk],
            "given_up": [],
        }

    assert len(_gateway_refunds(paid_order)) == 1
    assert _payment(paid_order).refunded_amount == Decimal("58.00")
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED


def test_a_refund_the_gateway_refuses_is_failed_with_its_message(paid_order, run_commit_hooks):
    Payment.objects.filter(order=paid_order).update(gateway_reference="ch_sim_unknown")

    with run_commit_hooks():
        refund = refund_services.request_refund(order=paid_order, acting_user=None, reason="x")

    refund.refresh_from_db()
    assert (refund.status, refund.failure_message) == (
        RefundStatus.FAILED,
        "No such captured charge.",
    )
    assert _payment(paid_order).refunded_amount == Decimal("0.00")
    assert Order.objects.get(pk=paid_order.pk).status == OrderStatus.PAID


def test_refunded_amount_can_never_exceed_the_payment(paid_order):
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(order=paid_order).update(refunded_amount=Decimal("58.01"))


def test_admin_refund_action_refunds_each_selected_order(
    client, staff, paid_order, run_commit_hooks
):
    unpaid = factories.OrderFactory()
    sign_in_with_second_factor(client, staff)

    with run_commit_hooks():
        response = client.post(
            reverse("admin:shop_order_changelist"),
            {"action": "refund_whole_order", "_selected_action": [paid_order.pk, unpaid.pk]},
            follow=True,
        )

    assert f"{paid_order.number}: refund of 58.00 EUR requested." in response.text
    assert f"{unpaid.number}: This order has no captured payment to refund." in response.text
    assert Order.objects.get(pk=paid_order.pk).status == OrderStatus.REFUNDED
    assert Order.objects.get(pk=unpaid.pk).status == OrderStatus.PENDING_PAYMENT
    refund = Refund.objects.get()
    assert (refund.requested_by, refund.reason) == (staff, "Refunded by staff")


def test_refund_admin_is_read_only(client, staff, paid_order, run_commit_hooks):
    with run_commit_hooks():
        refund = refund_services.request_refund(order=paid_order, acting_user=staff, reason="x")
    sign_in_with_second_factor(client, staff)

    listing = client.get(reverse("admin:shop_refund_changelist"))
    page = client.get(reverse("admin:shop_refund_change", args=[refund.pk]))
    client.post(reverse("admin:shop_refund_change", args=[refund.pk]), {"amount": "1.00"})

    assert listing.status_code == 200
    assert page.status_code == 200
    assert 'name="amount"' not in page.text
    assert client.get(reverse("admin:shop_refund_add")).status_code == 403
    assert Refund.objects.get(pk=refund.pk).amount == Decimal("58.00")
    order_page = client.get(reverse("admin:shop_order_change", args=[paid_order.pk]))
    assert "58.00" in order_page.text


def test_a_staff_refund_of_the_whole_order_emails_the_shopper_once(
    client, staff, shopper, paid_order, run_commit_hooks
):
    sign_in_with_second_factor(client, staff)
    mail.outbox.clear()

    with run_commit_hooks():
        client.post(
            reverse("admin:shop_order_changelist"),
            {"action": "refund_whole_order", "_selected_action": [paid_order.pk]},
        )
    refund = Refund.objects.get()
    # A redelivered event (or a second enqueue) sends nothing more.
    assert email_tasks.send_refund_notice.call(refund.pk) is False

    [email] = mail.outbox
    assert email.to == [shopper.email]
    assert email.subject == f"Your order {paid_order.number} was refunded"
    assert "We have refunded your order" in email.body
    assert "€58.00 is on its way back to your Visa ending 4242" in email.body
    order_url = f"{settings.SITE_URL}{paid_order.get_absolute_url()}"
    assert f"See your order: {order_url}" in email.body
    html = email.alternatives[0].content
    assert "<strong>€58.00</strong>" in html
    assert f'href="{order_url}"' in html


def test_a_vendor_line_refund_sends_no_second_email(shopper, paid_order, run_commit_hooks):
    oak_line = paid_order.lines.get(vendor__name="Oak")
    mail.outbox.clear()

    with run_commit_hooks():
        refund = refund_services.request_refund(
            order=paid_order,
            acting_user=None,
            reason="Out of stock",
            lines=[oak_line],
            vendor=oak_line.vendor,
        )

    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED
    assert mail.outbox == []
