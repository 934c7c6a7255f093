"""Charging orders through the configured PaymentGateway, in the background.

Checkout records a pending Payment with its idempotency key and enqueues
`process_order_payment` on commit; the task calls `process_payment`, which charges once and
records the outcome. Only the gateway's token, the card brand and the last four digits reach
this module.

Exactly once: the key is stored with the payment row before any gateway call and every call
for that payment sends it, so a rerun (retry, duplicate delivery, sweeper, worker killed
between the charge and our commit) is answered by the processor's replay of the first result
instead of a second charge. The payment row is locked (`SELECT ... FOR UPDATE`) across the
call, so concurrent runs for one payment wait and then find it settled.
"""

import logging
import uuid
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from project import events
from project.errors import DomainError
from shop import events as shop_events
from shop.gateways import CardToken, ChargeResult, GatewayError, get_gateway
from shop.models import Cart, Order, OrderStatus, Payment, PaymentStatus
from shop.services import cart as cart_services
from shop.services import orders as order_services
from shop.services import refunds as refund_services
from shop.tasks import payments as payment_tasks

logger = logging.getLogger(__name__)

IN_FLIGHT = (PaymentStatus.PENDING, PaymentStatus.PROCESSING)
PROCESSING_ERROR_CODE = GatewayError.code
PROCESSING_ERROR_MESSAGE = (
    "We could not reach the payment processor. Your order is saved; please try again."
)
LATE_CAPTURE_REASON = "Charged after the order stopped awaiting payment"


class OrderNotPayable(DomainError):
    code = "order_not_payable"


class PaymentInProgress(DomainError):
    code = "payment_in_progress"


def start_payment(*, order: Order, card_token: CardToken) -> Payment:
    """Record a pending payment for a pending-payment order and enqueue its charge on commit.

    Locks the order row; one payment at a time per order (a double click or a second tab gets
    PaymentInProgress), so an order is never charged under two keys at once. The idempotency
    key is made here, stored with the row, and never changes.
    """
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.PENDING_PAYMENT:
            raise OrderNotPayable(f"Order {locked.number} is not awaiting payment.")
        if locked.payments.filter(status__in=IN_FLIGHT).exists():
            raise PaymentInProgress("A payment for this order is already being processed.")
        payment = Payment.objects.create(
            order=locked,
            amount=locked.total,
            currency=locked.currency,
            status=PaymentStatus.PENDING,
            # A uuid, not the row id: keys stay unique at the processor even when our
            # database is recreated (development, tests) while its ledger lives on.
            idempotency_key=f"payment-{uuid.uuid4().hex}",
            payment_method=card_token.token,
            card_brand=card_token.brand,
            card_last4=card_token.last4,
        )
        transaction.on_commit(partial(payment_tasks.process_order_payment.enqueue, payment.pk))
    return payment


def process_payment(*, payment_id: int) -> Payment | None:
    """Charge a pending payment once and apply the outcome; a settled payment is left alone.

    First commits the attempt (processing, processing_started_at), then, holding the payment
    row lock, calls the gateway with the stored key and records the result in the same
    transaction. Captured: order paid, PaymentCaptured recorded (its handlers email the
    shopper and the vendors). Declined: payment failed, order cancelled with its stock
    returned (OrderCancelled), PaymentFailed(final=True) recorded, items back in the cart. A
    transient GatewayError is raised for the task backend to retry, until
    PAYMENT_RETRY_WINDOW_SECONDS after the payment began: then the payment fails with
    "processing_error", PaymentFailed(final=False) is recorded and the order stays awaiting
    payment, to be paid again.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None or payment.status not in IN_FLIGHT:
            return payment
        payment.status = PaymentStatus.PROCESSING
        payment.processing_started_at = timezone.now()
        payment.save(update_fields=["status", "processing_started_at", "updated_at"])

    gateway = get_gateway()
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != PaymentStatus.PROCESSING:
            return payment
        try:
            result = gateway.charge(
                token=payment.payment_method,
                amount=payment.amount,
                currency=payment.currency,
                idempotency_key=payment.idempotency_key,
            )
        except GatewayError:
            if timezone.now() - payment.created_at < timedelta(
                seconds=settings.PAYMENT_RETRY_WINDOW_SECONDS
            ):
                logger.warning("Transient gateway failure for payment %s; will retry", payment.pk)
                raise
            logger.warning("Giving up on payment %s after transient failures", payment.pk)
            _save_outcome(
                payment,
                status=PaymentStatus.FAILED,
                failure_code=PROCESSING_ERROR_CODE,
                failure_message=PROCESSING_ERROR_MESSAGE,
            )
            events.record(
                shop_events.PaymentFailed(
                    order_id=payment.order_id,
                    payment_id=payment.pk,
                    failure_code=PROCESSING_ERROR_CODE,
                    failure_message=PROCESSING_ERROR_MESSAGE,
                    final=False,
                ),
                aggregate=(Order._meta.label_lower, payment.order_id),
            )
            return payment
        _apply_result(payment, result)
    if payment.status == PaymentStatus.FAILED:
        _refill_cart(payment.order_id)
    return payment


def record_charge_result(*, payment: Payment, result: ChargeResult) -> Payment:
    """Apply a result the processor announced on its own (a webhook), idempotently.

    An in-flight payment is settled as by `process_payment`. A payment we had given up on
    whose charge went through after all is captured (and the order paid, or refunded in full
    if it no longer awaits payment). Anything already settled is left as it is.
    """
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        gave_up = (
            locked.status == PaymentStatus.FAILED and locked.failure_code == PROCESSING_ERROR_CODE
        )
        applies = locked.status in IN_FLIGHT or (gave_up and result.captured)
        if applies:
            _apply_result(locked, result)
    if applies and locked.status == PaymentStatus.FAILED:
        _refill_cart(locked.order_id)
    return locked


def sweep_stuck_payments() -> list[int]:
    """Re-enqueue payments in flight for longer than PAYMENT_STUCK_AFTER_SECONDS.

    Catches a lost enqueue, a worker that died mid-charge and retries that ran out. Rows
    locked by a running charge are skipped; each one swept is stamped so the next sweep
    leaves it alone for another period. Returns the ids enqueued.
    """
    now = timezone.now()
    deadline = now - timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS)
    with transaction.atomic():
        ids = list(
            Payment.objects.select_for_update(skip_locked=True)
            .annotate(touched_at=Coalesce("processing_started_at", "created_at"))
            .filter(status__in=IN_FLIGHT, touched_at__lt=deadline)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Payment.objects.filter(pk__in=ids).update(processing_started_at=now, updated_at=now)
        for payment_id in ids:
            transaction.on_commit(partial(payment_tasks.process_order_payment.enqueue, payment_id))
    if ids:
        logger.info("Re-enqueued %s stuck payments", len(ids))
    return ids


def _apply_result(payment: Payment, result: ChargeResult) -> None:
    """Record a charge result on a locked payment, inside the caller's transaction.

    Records PaymentCaptured when the charge pays the order, PaymentFailed(final=True) when a
    decline cancels it.
    """
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    if result.captured:
        _save_outcome(
            payment,
            status=PaymentStatus.CAPTURED,
            gateway_reference=result.reference,
            failure_code="",
            failure_message="",
        )
        if order.status != OrderStatus.PENDING_PAYMENT:
            # Charged for an order that is paid by another payment or cancelled: give it back.
            refund_services.request_refund(
                order=order, acting_user=None, reason=LATE_CAPTURE_REASON, payment=payment
            )
            return
        order_services.transition_order(order=order, to=OrderStatus.PAID)
        events.record(
            shop_events.PaymentCaptured(
                order_id=order.pk,
                payment_id=payment.pk,
                amount=payment.amount,
                currency=payment.currency,
            ),
            aggregate=order,
        )
        return
    message = result.failure_message or "Your card was declined."
    _save_outcome(
        payment,
        status=PaymentStatus.FAILED,
        gateway_reference=result.reference,
        failure_code=result.failure_code or "declined",
        failure_message=message,
    )
    if order.status == OrderStatus.PENDING_PAYMENT:
        order_services.cancel_order(order=order, reason=message)
        events.record(
            shop_events.PaymentFailed(
                order_id=order.pk,
                payment_id=payment.pk,
                failure_code=payment.failure_code,
                failure_message=message,
                final=True,
            ),
            aggregate=order,
        )


def _save_outcome(payment: Payment, **fields: str) -> None:
    for name, value in fields.items():
        setattr(payment, name, value)
    payment.save(update_fields=[*fields, "updated_at"])


def _refill_cart(order_id: int) -> None:
    """Put a declined order's items back in its shopper's cart (after the decline commits)."""
    order = Order.objects.filter(pk=order_id, status=OrderStatus.CANCELLED).first()
    if order is None:
        return
    cart, _ = Cart.objects.get_or_create(user_id=order.customer_id)
    cart_services.refill_cart_from_order(cart=cart, order=order)
