"""Charging orders through the configured PaymentGateway.

Only the gateway's token, the card brand and the last four digits reach this module.
"""

import logging
import uuid

from django.db import transaction

from project.errors import DomainError
from shop.gateways import CardToken, ChargeResult, GatewayError, get_gateway
from shop.models import Order, OrderStatus, Payment, PaymentStatus
from shop.services import orders as order_services

logger = logging.getLogger(__name__)

# One charge plus this many retries when the processor fails transiently.
TRANSIENT_RETRIES = 2
PROCESSING_ERROR_CODE = GatewayError.code
PROCESSING_ERROR_MESSAGE = (
    "We could not reach the payment processor. Your order is saved; please try again."
)


class OrderNotPayable(DomainError):
    code = "order_not_payable"


class PaymentInProgress(DomainError):
    code = "payment_in_progress"


def pay_order(*, order: Order, card_token: CardToken) -> Payment:
    """Charge a pending-payment order once and apply the outcome.

    Captured: payment captured, order paid. Declined: payment failed with the reason, order
    cancelled with its stock returned. Transient failure (after retries with the same
    idempotency key): payment failed with "processing_error", order left pending payment.
    The gateway is called outside any transaction; the payment and order rows are locked
    while their state changes.
    """
    payment = _start_payment(order=order, card_token=card_token)
    gateway = get_gateway()
    result: ChargeResult | None = None
    for attempt in range(1 + TRANSIENT_RETRIES):
        try:
            result = gateway.charge(
                token=card_token.token,
                amount=payment.amount,
                currency=payment.currency,
                idempotency_key=payment.idempotency_key,
            )
            break
        except GatewayError:
            logger.warning(
                "Transient gateway failure for payment %s (attempt %s)", payment.pk, attempt + 1
            )
    return _finish_payment(payment=payment, order=order, result=result)


def _start_payment(*, order: Order, card_token: CardToken) -> Payment:
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status != OrderStatus.PENDING_PAYMENT:
            raise OrderNotPayable(f"Order {locked.number} is not awaiting payment.")
        # A payment still processing (a double click, a second tab) must finish first, or the
        # order could be charged twice under two idempotency keys.
        if locked.payments.filter(status=PaymentStatus.PROCESSING).exists():
            raise PaymentInProgress("A payment for this order is already being processed.")
        payment = Payment.objects.create(
            order=locked,
            amount=locked.total,
            currency=locked.currency,
            status=PaymentStatus.PROCESSING,
            idempotency_key=f"pending-{uuid.uuid4()}",
            payment_method=card_token.token,
            card_brand=card_token.brand,
            card_last4=card_token.last4,
        )
        payment.idempotency_key = f"payment-{payment.pk}"
        payment.save(update_fields=["idempotency_key"])
    return payment


def _finish_payment(*, payment: Payment, order: Order, result: ChargeResult | None) -> Payment:
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if result is None:
            locked.status = PaymentStatus.FAILED
            locked.failure_code = PROCESSING_ERROR_CODE
            locked.failure_message = PROCESSING_ERROR_MESSAGE
        elif result.captured:
            locked.status = PaymentStatus.CAPTURED
            locked.gateway_reference = result.reference
            order_services.transition_order(order=order, to=OrderStatus.PAID)
        else:
            locked.status = PaymentStatus.FAILED
            locked.gateway_reference = result.reference
            locked.failure_code = result.failure_code or "declined"
            locked.failure_message = result.failure_message or "Your card was declined."
            order_services.cancel_order(order=order, reason=locked.failure_message)
        locked.save(
            update_fields=[
                "status",
                "gateway_reference",
                "failure_code",
                "failure_message",
                "updated_at",
            ]
        )
    return locked
