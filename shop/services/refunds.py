"""Refunds: requested by staff (whole order), by a vendor's cancelled lines, or on their own
for a charge that landed after its order stopped awaiting payment; sent by a task.

Like a charge, a refund is recorded with its idempotency key before the gateway is called,
and every call for it sends that key, so a rerun can never refund twice. A rerun of a refund
that may have reached the processor (a worker killed mid-call, a reply lost, an outage)
first looks the key up (`retrieve_refund`) and sends it again only if the processor has none,
so even a rerun after the processor has forgotten the key (Stripe: 24 hours) cannot refund
twice. A refund is never failed for a transient error: it stays processing and is retried,
by the task and then by the sweeper, until the processor gives an answer.
"""

import logging
import uuid
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import User
from project import events
from project.audit import services as audit
from project.db import scope
from project.errors import DomainError
from shop import events as shop_events
from shop.gateways import GatewayError, PaymentGateway, RefundResult, get_gateway
from shop.models import (
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    Vendor,
)
from shop.services import orders as order_services
from shop.tasks import payments as payment_tasks

logger = logging.getLogger(__name__)

# Refunds that hold money back from a new request: sent, being sent, or done.
COMMITTED = (RefundStatus.PENDING, RefundStatus.PROCESSING, RefundStatus.SUCCEEDED)
IN_FLIGHT = (RefundStatus.PENDING, RefundStatus.PROCESSING)
EXTERNAL_REASON = "Refunded at the payment provider"
# A charge captured after its order was paid by another payment or cancelled: refunded on its
# own, and the shopper told why (shop.tasks.emails.send_refund_notice).
LATE_CAPTURE_REASON = "Charged after the order stopped awaiting payment"


class NothingToRefund(DomainError):
    code = "nothing_to_refund"


class RefundLinesInvalid(DomainError):
    code = "refund_lines_invalid"


def request_refund(
    *,
    order: Order,
    acting_user: User | None,
    reason: str,
    lines: list[OrderLine] | None = None,
    vendor: Vendor | None = None,
    payment: Payment | None = None,
) -> Refund:
    """Record a refund of the chosen lines (or all that is left of the order) and enqueue it.

    Locks the captured payment row, so concurrent requests never promise back more than was
    captured: the whole-order amount is what pending and succeeded refunds have not taken.
    A line is refunded at most once. `process_refund` runs on commit.
    """
    with transaction.atomic():
        payments = Payment.objects.select_for_update().filter(
            order=order, status__in=[PaymentStatus.CAPTURED, PaymentStatus.REFUNDED]
        )
        if payment is not None:
            payments = payments.filter(pk=payment.pk)
        locked = payments.order_by("pk").first()
        if locked is None:
            raise NothingToRefund("This order has no captured payment to refund.")
        # Every vendor's and staff's refunds count, also in a vendor's request (whose
        # row-level security shows only its own refunds).
        with scope.system_scope():
            committed = locked.refunds.filter(status__in=COMMITTED).aggregate(
                total=Sum("amount", default=Decimal("0.00"))
            )["total"]
        remaining = locked.amount - committed
        if lines:
            _check_lines(order=order, lines=lines, vendor=vendor)
            amount = sum((line.line_total for line in lines), Decimal("0.00"))
        else:
            amount = remaining
        if amount <= 0 or amount > remaining:
            raise NothingToRefund("Nothing is left to refund on this order.")
        refund = Refund.objects.create(
            order=order,
            payment=locked,
            vendor=vendor,
            amount=amount,
            currency=locked.currency,
            reason=reason[:200],
            requested_by=acting_user,
            # Stored with the row before any gateway call, so every retry replays the same key.
            idempotency_key=f"refund-{uuid.uuid4().hex}",
        )
        if lines:
            refund.lines.set(lines)
        audit.record(
            "refund.requested",
            actor=acting_user,
            vendor=vendor,
            target=refund,
            changes={"amount": [None, str(amount)]},
            metadata={"order": order.number, "reason": refund.reason},
        )
        transaction.on_commit(partial(payment_tasks.process_refund.enqueue, refund.pk))
    return refund


def process_refund(*, refund_id: int) -> Refund | None:
    """Send a pending refund to the gateway once and record the outcome; done ones are skipped.

    Commits the attempt first, then holds the refund row lock across the gateway calls (with
    the stored key) and records the result in the same transaction. A refund already
    processing (an earlier run may have reached the processor) is looked up by its key
    first and sent again only if the processor has none; a transient GatewayError on the
    send is followed by a lookup too. Succeeded: the payment's refunded_amount grows (a check
    constraint keeps it within the amount); fully refunded, the payment and the order become
    refunded; RefundIssued is recorded. Refused: failed with the processor's message. While
    the processor cannot answer, GatewayError is raised for the task backend to retry; the
    sweeper keeps retrying after that, since money owed back is never given up on silently
    (staff see it processing in the admin).
    """
    with transaction.atomic():
        refund = Refund.objects.select_for_update().filter(pk=refund_id).first()
        if refund is None or refund.status not in IN_FLIGHT:
            return refund
        sent_before = refund.status == RefundStatus.PROCESSING
        refund.status = RefundStatus.PROCESSING
        refund.processing_started_at = timezone.now()
        refund.save(update_fields=["status", "processing_started_at", "updated_at"])

    gateway = get_gateway()
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
        if refund.status != RefundStatus.PROCESSING:
            return refund
        try:
            result = _send_or_find(gateway, refund, look_first=sent_before)
        except GatewayError:
            logger.warning("Transient gateway failure for refund %s; will retry", refund.pk)
            raise
        _apply_result(refund, result)
    return refund


def _send_or_find(gateway: PaymentGateway, refund: Refund, *, look_first: bool) -> RefundResult:
    """The refund's result at the processor, sending it only if the processor has none.

    Raises GatewayError while the processor cannot answer, or has nothing yet after a
    transient failure of the send (the next run looks it up again, then sends again).
    """
    reference = refund.payment.gateway_reference
    if look_first:
        found = gateway.retrieve_refund(
            charge_reference=reference, idempotency_key=refund.idempotency_key
        )
        if found is not None:
            return found
    try:
        return gateway.refund(
            charge_reference=reference,
            amount=refund.amount,
            currency=refund.currency,
            idempotency_key=refund.idempotency_key,
        )
    except GatewayError:
        found = gateway.retrieve_refund(
            charge_reference=reference, idempotency_key=refund.idempotency_key
        )
        if found is None:
            raise
        return found


def record_external_refund(*, payment: Payment, refunded_total: Decimal, reference: str) -> None:
    """Account for money the provider says was refunded beyond our own refunds (a refund made
    in its dashboard). Idempotent: refunds of ours, even those still being sent, count first.
    """
    with transaction.atomic():
        Order.objects.select_for_update().filter(pk=payment.order_id).first()
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        committed = locked.refunds.filter(status__in=COMMITTED).aggregate(
            total=Sum("amount", default=Decimal("0.00"))
        )["total"]
        extra = min(refunded_total, locked.amount) - committed
        if extra <= 0:
            return
        refund = Refund.objects.create(
            order_id=locked.order_id,
            payment=locked,
            amount=extra,
            currency=locked.currency,
            reason=EXTERNAL_REASON,
            status=RefundStatus.PROCESSING,
            idempotency_key=f"external-{uuid.uuid4().hex}",
        )
        _apply_result(refund, RefundResult(status="succeeded", reference=reference), payment=locked)


def sweep_stuck_refunds() -> list[int]:
    """Re-enqueue refunds in flight for longer than PAYMENT_STUCK_AFTER_SECONDS."""
    now = timezone.now()
    deadline = now - timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS)
    with transaction.atomic():
        ids = [
            refund.pk
            for refund in Refund.objects.select_for_update(skip_locked=True)
            .filter(status__in=IN_FLIGHT)
            .order_by("pk")
            .only("pk", "processing_started_at", "created_at")
            if (refund.processing_started_at or refund.created_at) < deadline
        ]
        Refund.objects.filter(pk__in=ids).update(processing_started_at=now, updated_at=now)
        for refund_id in ids:
            transaction.on_commit(partial(payment_tasks.process_refund.enqueue, refund_id))
    return ids


def _apply_result(refund: Refund, result: RefundResult, payment: Payment | None = None) -> None:
    """Record a gateway result on a locked refund, inside the caller's transaction.

    A success records RefundIssued (aggregate: the order), as the last step.
    """
    refund.processed_at = timezone.now()
    before = refund.status
    if not result.succeeded:
        refund.status = RefundStatus.FAILED
        refund.failure_message = (result.failure_message or "The refund was refused.")[:200]
        refund.save(update_fields=["status", "failure_message", "processed_at", "updated_at"])
        _audit_refund(refund, before=before)
        return
    refund.status = RefundStatus.SUCCEEDED
    refund.gateway_reference = result.reference
    refund.save(update_fields=["status", "gateway_reference", "processed_at", "updated_at"])
    _audit_refund(refund, before=before)
    # The order before the payment, as the services that refund a cancelled line lock them.
    order = Order.objects.select_for_update().get(pk=refund.order_id)
    payment = payment or Payment.objects.select_for_update().get(pk=refund.payment_id)
    Payment.objects.filter(pk=payment.pk).update(
        refunded_amount=F("refunded_amount") + refund.amount, updated_at=timezone.now()
    )
    payment.refresh_from_db(fields=["refunded_amount", "status", "amount"])
    if payment.refunded_amount >= payment.amount:
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.REFUNDED)
        audit.record(
            "payment.status_changed",
            target=payment,
            changes={"status": [payment.status, PaymentStatus.REFUNDED]},
        )
        # A second, late charge refunded in full leaves an order paid by its first one as it is.
        paid_otherwise = order.payments.filter(status=PaymentStatus.CAPTURED).exists()
        if order.can_transition_to(OrderStatus.REFUNDED) and not paid_otherwise:
            order_services.transition_order(order=order, to=OrderStatus.REFUNDED)
    events.record(
        shop_events.RefundIssued(
            order_id=order.pk,
            refund_id=refund.pk,
            amount=refund.amount,
            currency=refund.currency,
            vendor_id=refund.vendor_id,
        ),
        aggregate=order,
    )


def is_staff_refund(refund: Refund) -> bool:
    """A refund staff asked for of what was left of an order (the admin's "Refund whole
    order"): no vendor, no chosen lines, a person who asked, and not the payment provider's."""
    return (
        refund.vendor_id is None
        and refund.requested_by_id is not None
        and refund.reason != EXTERNAL_REASON
        and not refund.lines.exists()
    )


def _check_lines(*, order: Order, lines: list[OrderLine], vendor: Vendor | None) -> None:
    ids = {line.pk for line in lines}
    if any(line.order_id != order.pk for line in lines) or (
        vendor is not None and any(line.vendor_id != vendor.pk for line in lines)
    ):
        raise RefundLinesInvalid("Those lines are not part of this order.")
    with scope.system_scope():  # a staff refund of the line counts too
        already = Refund.objects.filter(
            order=order, status__in=COMMITTED, lines__pk__in=ids
        ).exists()
    if already:
        raise RefundLinesInvalid("A line you chose has already been refunded.")


def _audit_refund(refund: Refund, *, before: str) -> None:
    audit.record(
        "refund.status_changed",
        vendor=refund.vendor_id,
        target=refund,
        changes={"status": [before, refund.status]},
        metadata={"failure": refund.failure_message} if refund.failure_message else None,
    )
