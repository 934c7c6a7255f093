"""Order emails on the `emails` queue. Tasks take ids, re-read the database, skip stale work
and send each email at most once per order (and payment, or vendor), however often they run."""

from django.db.models import Prefetch
from django.tasks import task
from django.urls import reverse

from project import emails
from shop.models import Order, OrderLine, OrderStatus, PaymentStatus, Refund, RefundStatus, Vendor
from shop.services import refunds as refund_services

# Critical work (payments) runs above emails, analytics below.
EMAIL_PRIORITY = 10


def _send_once(guard: str, **message) -> bool:
    """Send unless an email with this guard went out already (or may have: see
    project.background.emails); a send that failed may be retried.

    The guard names the business fact (this order's confirmation, this payment's failure),
    not the task run, so even two separate enqueues of the same email send it once.
    """
    return emails.send_templated_email(idempotency_key=f"shop:{guard}", **message) > 0


def _order_key(order: Order) -> str:
    # The id and its creation time: unique even across a database recreated under a
    # long-lived cache (development, tests), where ids start again from 1.
    return f"{order.pk}-{order.created_at.timestamp():.6f}"


def _order(order_id: int) -> Order | None:
    # With each line's product: the emails show its card thumbnail.
    lines = OrderLine.objects.select_related("vendor", "product").order_by("vendor__name", "id")
    return (
        Order.objects.select_related("customer")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .filter(pk=order_id)
        .first()
    )


@task(queue_name="emails", priority=EMAIL_PRIORITY)
def send_order_confirmation(order_id: int) -> bool:
    """Tell the shopper their order is paid: lines, total, address and a link to the order."""
    order = _order(order_id)
    if order is None or order.status == OrderStatus.PENDING_PAYMENT:
        return False
    return _send_once(
        f"order-confirmation:{_order_key(order)}",
        to=order.customer.email,
        template="order_confirmation",
        subject=f"Your order {order.number} is confirmed",
        context={
            "name": order.customer.full_name,
            "order": order,
            "lines": list(order.lines.all()),
            "order_url": emails.absolute_url(order.get_absolute_url()),
        },
    )


@task(queue_name="emails", priority=EMAIL_PRIORITY)
def send_payment_failed(order_id: int) -> bool:
    """Tell the shopper their latest payment failed, why, and what became of the order."""
    order = _order(order_id)
    if order is None:
        return False
    payment = order.payments.filter(status=PaymentStatus.FAILED).order_by("-pk").first()
    if payment is None:
        return False
    return _send_once(
        f"payment-failed:{payment.idempotency_key}",
        to=order.customer.email,
        template="payment_failed",
        subject=f"Payment failed for order {order.number}",
        context={
            "name": order.customer.full_name,
            "order": order,
            "reason": payment.failure_message,
            "cancelled": order.status == OrderStatus.CANCELLED,
            "order_url": emails.absolute_url(order.get_absolute_url()),
            "cart_url": emails.absolute_url(reverse("shop:cart")),
        },
    )


@task(queue_name="emails", priority=EMAIL_PRIORITY)
def send_refund_notice(refund_id: int) -> bool:
    """Tell the shopper about a refund they did not ask for: a charge we had reported as failed
    that went through after all and was refunded in full, or a refund staff made of the whole
    order. A vendor's cancelled lines are told about by the vendor's own email (the
    line-cancelled email), a refund at the payment provider by the provider."""
    refund = (
        Refund.objects.select_related("order__customer", "payment")
        .filter(pk=refund_id, status=RefundStatus.SUCCEEDED)
        .first()
    )
    if refund is None:
        return False
    order = refund.order
    context = {
        "name": order.customer.full_name,
        "order": order,
        "refund": refund,
        "payment": refund.payment,
        "order_url": emails.absolute_url(order.get_absolute_url()),
    }
    if refund.reason == refund_services.LATE_CAPTURE_REASON:
        return _send_once(
            f"late-capture-refund:{refund.idempotency_key}",
            to=order.customer.email,
            template="late_capture_refunded",
            subject=f"We refunded a payment for order {order.number}",
            context={
                **context,
                "order_paid": order.payments.filter(status=PaymentStatus.CAPTURED).exists(),
            },
        )
    if refund_services.is_staff_refund(refund):
        return _send_once(
            f"staff-refund:{refund.idempotency_key}",
            to=order.customer.email,
            template="order_refunded",
            subject=f"Your order {order.number} was refunded",
            context=context,
        )
    return False


@task(queue_name="emails", priority=EMAIL_PRIORITY)
def send_vendor_new_order(order_id: int, vendor_id: int) -> bool:
    """Tell a vendor a paid order has lines for them to ship: only their lines, never others'."""
    order = _order(order_id)
    vendor = Vendor.objects.filter(pk=vendor_id).first()
    if order is None or vendor is None or order.status == OrderStatus.PENDING_PAYMENT:
        return False
    lines = [line for line in order.lines.all() if line.vendor_id == vendor.pk]
    if not lines or not vendor.contact_email:
        return False
    return _send_once(
        f"vendor-new-order:{_order_key(order)}:{vendor.pk}",
        to=vendor.contact_email,
        template="vendor_new_order",
        subject=f"New order {order.number} for {vendor.name}",
        context={
            "name": vendor.name,
            "order": order,
            "lines": lines,
            "vendor_total": sum(line.line_total for line in lines),
            "order_url": emails.absolute_url(
                reverse("backoffice:order_detail", kwargs={"order_pk": order.pk})
            ),
        },
    )
