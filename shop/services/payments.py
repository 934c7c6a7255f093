"""Charging orders through the configured PaymentGateway, in the background.

Checkout records a pending Payment with its idempotency key and enqueues
`process_order_payment` on commit; the task calls `process_payment`, which charges once and
records the outcome. Only the gateway's token, the card brand and the last four digits reach
this module.

Exactly once: the key is stored with the payment row before any gateway call and every call
for that payment sends it, so a rerun (retry, duplicate delivery, worker killed between the
charge and our commit) is answered by the processor's replay of the first result instead of
a second charge. The payment row is locked (`SELECT ... FOR UPDATE`) across the call, so
concurrent runs for one payment wait and then find it settled.

Never failed while it may have been charged: a transient GatewayError says nothing about
whether the charge went through, so the payment is looked up at the processor by its key
(`retrieve_charge`). Found: applied as usual. Nothing there: retried, and after the task's
last attempt failed with "processing_error" so the order can be paid again. The processor
unreachable: the outcome is unknown; the payment stays processing with
`outcome_unknown_since` set (the order page says so, and no second payment can start) until
`reconcile_payment` learns the outcome: the task's last attempt schedules a lookup, and each
lookup that finds the processor still unreachable schedules the next, waiting as long as the
outcome has been unknown so far (5 s to 5 min), so a short outage keeps the shopper waiting
seconds, not minutes; the sweeper stays the safety net. A payment given up on is looked up
again for PAYMENT_RECONCILE_HOURS: a charge that landed after all pays the order, or is
refunded in full (with an email) when the order no longer awaits payment.
"""

import logging
import uuid
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from project import events
from project.audit import services as audit
from project.background import backend as task_backend
from project.errors import DomainError
from shop import events as shop_events
from shop.gateways import CardToken, ChargeResult, GatewayError, PaymentGateway, get_gateway
from shop.models import Cart, Order, OrderStatus, Payment, PaymentStatus
from shop.services import cart as cart_services
from shop.services import orders as order_services
from shop.services import refunds as refund_services
from shop.tasks import payments as payment_tasks

logger = logging.getLogger(__name__)

IN_FLIGHT = (PaymentStatus.PENDING, PaymentStatus.PROCESSING)
PROCESSING_ERROR_CODE = GatewayError.code
PROCESSING_ERROR_MESSAGE = (
    "The payment processor did not take the payment, and no charge went through. Your order "
    "is saved; please pay again."
)
# Payments given up on that one sweep hands to `reconcile_payment`, oldest check first.
RECONCILE_BATCH = 50
MAX_ATTEMPTS_COUNTED = 32767  # the largest PositiveSmallIntegerField
# The next lookup of an unknown outcome waits as long as the outcome has been unknown so
# far, within these bounds: lookups about 5, 10, 20, 40 s ... after it became unknown, then
# every 5 min. Once the processor is back, a payment waits at most about as long again as
# it was unreachable (never more than the cap). In a longer outage the sweeper, every
# PAYMENT_STUCK_AFTER_SECONDS, comes first, and its lookup takes the chain over.
LOOKUP_DELAY_MIN = timedelta(seconds=5)
LOOKUP_DELAY_MAX = timedelta(minutes=5)


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
        # The customer comes along for the audit entry (not locked: of=self).
        locked = (
            Order.objects.select_for_update(of=("self",))
            .select_related("customer")
            .get(pk=order.pk)
        )
        if locked.status != OrderStatus.PENDING_PAYMENT:
            raise OrderNotPayable(f"Order {locked.number} is not awaiting payment.")
        if locked.payments.filter(status__in=IN_FLIGHT).exists():
            raise PaymentInProgress("A payment for this order is already being processed.")
        return record_payment(order=locked, card_token=card_token)


def record_payment(*, order: Order, card_token: CardToken) -> Payment:
    """Record a pending payment of the order's total and enqueue its charge, both in the
    caller's transaction.

    The caller holds the order: locked by `start_payment`, or created in this same
    transaction by checkout's `place_order` (so no other payment can be in flight). The
    charge's task is written in that transaction too (the task broker is this database), so
    a committed payment always has its charge queued.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_payment() must run inside the caller's transaction.")
    payment = Payment.objects.create(
        order=order,
        amount=order.total,
        currency=order.currency,
        status=PaymentStatus.PENDING,
        # A uuid, not the row id: keys stay unique at the processor even when our
        # database is recreated (development, tests) while its ledger lives on.
        idempotency_key=f"payment-{uuid.uuid4().hex}",
        payment_method=card_token.token,
        card_brand=card_token.brand,
        card_last4=card_token.last4,
    )
    audit.record(
        "payment.status_changed",
        actor=order.customer,
        target=payment,
        changes={"status": [None, payment.status]},
        metadata={"order": order.number, "amount": str(payment.amount)},
    )
    task_backend.enqueue_with_transaction(payment_tasks.process_order_payment, payment.pk)
    return payment


def process_payment(*, payment_id: int, last_attempt: bool = False) -> Payment | None:
    """Charge a pending payment once and apply the outcome; a settled payment is left alone.

    First commits the attempt (processing, processing_started_at, one more gateway call in
    `attempts`), then, holding the payment row lock, charges with the stored key and records
    the result in the same transaction. Captured: order paid, PaymentCaptured recorded (its
    handlers email the shopper and the vendors). Declined: payment failed, order cancelled
    with its stock returned (OrderCancelled), PaymentFailed(final=True) recorded, items back
    in the cart. A transient GatewayError is followed by a lookup by key: a charge found is
    applied; nothing found raises GatewayError for the task backend to retry, and on the
    `last_attempt` fails the payment with "processing_error" (PaymentFailed(final=False); the
    order stays awaiting payment, to be paid again); the processor unreachable marks the
    outcome unknown and raises to be retried, or on the last attempt leaves the payment
    processing and schedules its lookup (a `reconcile_payment` task, in this transaction).
    Past PAYMENT_CHARGE_WINDOW_SECONDS after checkout the charge is not sent again: the
    payment is only looked up, as by `reconcile_payment`.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None or payment.status not in IN_FLIGHT:
            return payment
        payment.status = PaymentStatus.PROCESSING
        payment.processing_started_at = timezone.now()
        # Counted and committed before the call, so a worker killed in it still counts it.
        payment.attempts = _one_more(payment.attempts)
        payment.save(update_fields=["status", "processing_started_at", "attempts", "updated_at"])
    if _past_charge_window(payment):
        return reconcile_payment(payment_id=payment_id, call_counted=True)

    gateway = get_gateway()
    retry: GatewayError | None = None
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != PaymentStatus.PROCESSING:
            return payment
        try:
            result = _charge_or_find(gateway, payment)
        except GatewayError as exc:
            _mark_outcome_unknown(payment)
            if not last_attempt:
                logger.warning("Payment %s: outcome unknown; will retry", payment.pk)
                retry = exc
            else:
                _schedule_lookup(payment)
        else:
            if result is not None:
                _apply_result(payment, result)
            elif last_attempt:
                logger.warning("Giving up on payment %s: nothing charged", payment.pk)
                _give_up(payment)
            else:
                _save_progress(payment, outcome_unknown_since=None)
                retry = GatewayError("Nothing was charged yet; the charge will be retried.")
    if retry is not None:
        raise retry
    if payment.status == PaymentStatus.FAILED:
        _refill_cart(payment.order_id)
    return payment


def reconcile_payment(
    *, payment_id: int, call_counted: bool = False, scheduled_at_attempts: int | None = None
) -> Payment | None:
    """Learn a payment's outcome from the processor by its key, and apply it; never charges.

    For a payment processing (outcome unknown, or a run that died) and for one given up on
    ("processing_error"). Locks the payment row across the lookup. Found for a payment in
    flight: applied as by `process_payment`. Found captured for one given up on: captured,
    and the order paid, or refunded in full (an automatic refund, with an email) if the
    order no longer awaits payment. Nothing there: a payment in flight is given up on
    (failed "processing_error", PaymentFailed(final=False): the order can be paid again); one
    given up on stays so. The processor unreachable: a payment in flight stays processing
    with `outcome_unknown_since` set, and the next lookup is scheduled (in this transaction).
    `call_counted`: the caller committed this call in `attempts` already.
    `scheduled_at_attempts`: this is such a scheduled lookup, and the payment had made that
    many gateway calls then; if it has made more since, a later run has looked it up (and
    scheduled its own next lookup, if any), so this one does nothing: one chain per payment.
    """
    gateway = get_gateway()
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None:
            return None
        in_flight = payment.status == PaymentStatus.PROCESSING
        if scheduled_at_attempts is not None and not (
            in_flight and payment.attempts == scheduled_at_attempts
        ):
            return payment
        if not (in_flight or _gave_up(payment)):
            return payment
        if not call_counted:
            payment.attempts = _one_more(payment.attempts)
        try:
            found = gateway.retrieve_charge(idempotency_key=payment.idempotency_key)
        except GatewayError:
            if in_flight:
                _mark_outcome_unknown(payment)
                _schedule_lookup(payment)
            else:
                _save_progress(payment)
            return payment
        if found is None:
            if in_flight:
                logger.warning("Giving up on payment %s: nothing charged", payment.pk)
                _give_up(payment)
            else:
                _save_progress(payment)
        elif in_flight or found.captured:
            if not in_flight:
                logger.warning("Payment %s given up on was captured after all", payment.pk)
            _apply_result(payment, found)
        else:
            _save_progress(payment)
    if in_flight and payment.status == PaymentStatus.FAILED:
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
        applies = locked.status in IN_FLIGHT or (_gave_up(locked) and result.captured)
        if applies:
            _apply_result(locked, result)
    if applies and locked.status == PaymentStatus.FAILED:
        _refill_cart(locked.order_id)
    return locked


def sweep_stuck_payments() -> list[int]:
    """Hand on payments in flight for longer than PAYMENT_STUCK_AFTER_SECONDS.

    Catches a lost enqueue and a payment never tried (charged by `process_order_payment`),
    and a worker that died mid-charge, retries that ran out or an outcome still unknown
    (looked up by `reconcile_payment`, never charged again). Rows locked by a running charge
    are skipped; each one swept is stamped so the next sweep leaves it alone for another
    period. Returns the ids handed on.
    """
    now = timezone.now()
    deadline = now - timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS)
    with transaction.atomic():
        rows = list(
            Payment.objects.select_for_update(skip_locked=True)
            .annotate(touched_at=Coalesce("processing_started_at", "created_at"))
            .filter(status__in=IN_FLIGHT, touched_at__lt=deadline)
            .order_by("pk")
            .values_list("pk", "attempts")
        )
        ids = [payment_id for payment_id, _ in rows]
        Payment.objects.filter(pk__in=ids).update(processing_started_at=now, updated_at=now)
        for payment_id, attempts in rows:
            task = (
                payment_tasks.reconcile_payment if attempts else payment_tasks.process_order_payment
            )
            transaction.on_commit(partial(task.enqueue, payment_id))
    if ids:
        logger.info("Re-enqueued %s stuck payments", len(ids))
    return ids


def sweep_given_up_payments() -> list[int]:
    """Hand payments given up on in the last PAYMENT_RECONCILE_HOURS to `reconcile_payment`.

    Each at most every PAYMENT_RECONCILE_EVERY_SECONDS (its `updated_at` is stamped when
    handed on) and at most RECONCILE_BATCH per sweep, least recently checked first, so an
    outage's worth of them is worked through at a modest rate. Returns the ids handed on.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Payment.objects.select_for_update(skip_locked=True)
            .filter(
                status=PaymentStatus.FAILED,
                failure_code=PROCESSING_ERROR_CODE,
                created_at__gte=now - timedelta(hours=settings.PAYMENT_RECONCILE_HOURS),
                updated_at__lte=now - timedelta(seconds=settings.PAYMENT_RECONCILE_EVERY_SECONDS),
            )
            .order_by("updated_at", "pk")
            .values_list("pk", flat=True)[:RECONCILE_BATCH]
        )
        Payment.objects.filter(pk__in=ids).update(updated_at=now)
        for payment_id in ids:
            transaction.on_commit(partial(payment_tasks.reconcile_payment.enqueue, payment_id))
    return ids


def _charge_or_find(gateway: PaymentGateway, payment: Payment) -> ChargeResult | None:
    """Charge with the payment's key; after a transient error, look the key up.

    The charge's result, or None when the processor answered that it has no charge under
    the key. Raises GatewayError when it could not be asked: the outcome is unknown. The
    charge call was counted by the caller; the lookup is counted here.
    """
    try:
        return gateway.charge(
            token=payment.payment_method,
            amount=payment.amount,
            currency=payment.currency,
            idempotency_key=payment.idempotency_key,
        )
    except GatewayError:
        logger.warning("Transient gateway failure for payment %s; looking it up", payment.pk)
    payment.attempts = _one_more(payment.attempts)
    return gateway.retrieve_charge(idempotency_key=payment.idempotency_key)


def _schedule_lookup(payment: Payment) -> None:
    """Enqueue the next `reconcile_payment` of a locked payment whose outcome is unknown.

    Due after as long as the outcome has been unknown so far, within LOOKUP_DELAY_MIN and
    LOOKUP_DELAY_MAX. Enqueued in the caller's transaction (our backend writes the task with
    it), so the lookup exists exactly when the state that asks for it committed. A backend
    that cannot defer a task (the immediate one) gets none: the sweeper looks the payment up.
    """
    task = payment_tasks.reconcile_payment
    if not task.get_backend().supports_defer:
        logger.warning("Payment %s: outcome unknown; left to the sweeper", payment.pk)
        return
    now = timezone.now()
    unknown_for = now - (payment.outcome_unknown_since or now)
    delay = min(max(unknown_for, LOOKUP_DELAY_MIN), LOOKUP_DELAY_MAX)
    logger.warning(
        "Payment %s: outcome unknown for %.0f s; next lookup in %.0f s",
        payment.pk,
        unknown_for.total_seconds(),
        delay.total_seconds(),
    )
    task.using(run_after=now + delay).enqueue(
        payment_id=payment.pk, scheduled_at_attempts=payment.attempts
    )


def _gave_up(payment: Payment) -> bool:
    return payment.status == PaymentStatus.FAILED and payment.failure_code == PROCESSING_ERROR_CODE


def _past_charge_window(payment: Payment) -> bool:
    age = timezone.now() - payment.created_at
    return age >= timedelta(seconds=settings.PAYMENT_CHARGE_WINDOW_SECONDS)


def _one_more(attempts: int) -> int:
    return min(attempts + 1, MAX_ATTEMPTS_COUNTED)


def _mark_outcome_unknown(payment: Payment) -> None:
    """The processor could not say whether it charged: keep the payment in flight."""
    _save_progress(payment, outcome_unknown_since=payment.outcome_unknown_since or timezone.now())


def _save_progress(payment: Payment, **fields: Any) -> None:
    """Save the gateway calls counted (and `fields`) on a locked payment; touches updated_at."""
    for name, value in fields.items():
        setattr(payment, name, value)
    payment.save(update_fields=["attempts", *fields, "updated_at"])


def _give_up(payment: Payment) -> None:
    """The processor has no charge under the key: fail the payment; the order stays payable.

    Records PaymentFailed(final=False), inside the caller's transaction.
    """
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
                order=order,
                acting_user=None,
                reason=refund_services.LATE_CAPTURE_REASON,
                payment=payment,
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
    """Settle a locked payment: the outcome is known, so it is no longer unknown."""
    before = payment.status
    _save_progress(payment, outcome_unknown_since=None, **fields)
    audit.record(
        "payment.status_changed",
        target=payment,
        changes={"status": [before, payment.status]},
        metadata={"failure_code": payment.failure_code} if payment.failure_code else None,
    )


def _refill_cart(order_id: int) -> None:
    """Put a declined order's items back in its shopper's cart (after the decline commits)."""
    order = Order.objects.filter(pk=order_id, status=OrderStatus.CANCELLED).first()
    if order is None:
        return
    cart, _ = Cart.objects.get_or_create(user_id=order.customer_id)
    cart_services.refill_cart_from_order(cart=cart, order=order)
