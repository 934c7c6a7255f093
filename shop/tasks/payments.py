"""Payment work on the `critical` queue. Tasks take ids only (never a card or a token) and
call one service; the services make every rerun safe."""

from django.tasks import task

from shop.services import payments as payment_services
from shop.services import refunds as refund_services

# Payments run above emails (10) and analytics.
PAYMENT_PRIORITY = 50
SWEEP_PRIORITY = 40


@task(queue_name="critical", priority=PAYMENT_PRIORITY)
def process_order_payment(payment_id: int) -> str:
    """Charge the payment once and apply the outcome; raises GatewayError to be retried."""
    payment = payment_services.process_payment(payment_id=payment_id)
    return payment.status if payment is not None else "missing"


@task(queue_name="critical", priority=PAYMENT_PRIORITY)
def process_refund(refund_id: int) -> str:
    """Send the refund once and record the outcome; raises GatewayError to be retried."""
    refund = refund_services.process_refund(refund_id=refund_id)
    return refund.status if refund is not None else "missing"


@task(queue_name="critical", priority=SWEEP_PRIORITY)
def sweep_stuck_payments() -> dict[str, list[int]]:
    """Re-enqueue payments and refunds stuck in flight past PAYMENT_STUCK_AFTER_SECONDS.

    Meant to run every minute or so (the worker's schedule, or `manage.py sweep_payments`).
    """
    return {
        "payments": payment_services.sweep_stuck_payments(),
        "refunds": refund_services.sweep_stuck_refunds(),
    }


def enqueue_payment_sweep() -> None:
    """Called every minute by Django-Q2's scheduler (see the background app's schedules)."""
    sweep_stuck_payments.enqueue()
