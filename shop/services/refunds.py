"""Refund requests. The critical-queue work adds the gateway side (process_refund)."""

import uuid
from decimal import Decimal

from django.db import transaction

from accounts.models import User
from project.errors import DomainError
from shop.models import Order, OrderLine, Payment, PaymentStatus, Refund, Vendor


class NothingToRefund(DomainError):
    code = "nothing_to_refund"


def request_refund(
    *,
    order: Order,
    acting_user: User | None,
    reason: str,
    lines: list[OrderLine] | None = None,
    vendor: Vendor | None = None,
) -> Refund:
    """Record a refund of the chosen lines (or the whole order) against its captured payment.

    Locks the payment row so concurrent requests cannot refund more than was captured.
    """
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update()
            .filter(order=order, status__in=[PaymentStatus.CAPTURED, PaymentStatus.REFUNDED])
            .first()
        )
        if payment is None:
            raise NothingToRefund("This order has no captured payment to refund.")
        amount = (
            sum((line.line_total for line in lines), Decimal("0.00"))
            if lines
            else payment.amount - payment.refunded_amount
        )
        pending = sum((r.amount for r in payment.refunds.exclude(status="failed")), Decimal("0.00"))
        if amount <= 0 or pending + amount > payment.amount:
            raise NothingToRefund("Nothing is left to refund on this order.")
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            vendor=vendor,
            amount=amount,
            currency=payment.currency,
            reason=reason,
            requested_by=acting_user,
            # Stored with the row before any gateway call, so every retry replays the same key.
            idempotency_key=f"refund-{uuid.uuid4().hex}",
        )
        if lines:
            refund.lines.set(lines)
    return refund
