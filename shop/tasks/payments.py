"""Payment work on the `critical` queue. Tasks take ids only (never a card or a token) and
call one service; the services make every rerun safe."""

from django.conf import settings
from django.tasks import TaskContext, task

from project.background.models import TaskRecord
from shop.services import payments as payment_services
from shop.services import refunds as refund_services

# Payments run above emails (10) and analytics.
PAYMENT_PRIORITY = 50
SWEEP_PRIORITY = 40


@task(queue_name="critical", priority=PAYMENT_PRIORITY, takes_context=True)
def process_order_payment(context: TaskContext, payment_id: int) -> str:
    """Charge the payment once and apply the outcome; raises GatewayError to be retried.

    On the task's last attempt the service settles what it can instead of raising: nothing
    charged fails the payment (the order can be paid again); an outcome still unknown gets
    a `reconcile_payment` scheduled.
    """
    payment = payment_services.process_payment(
        payment_id=payment_id, last_attempt=is_last_attempt(context)
    )
    return payment.status if payment is not None else "missing"


@task(queue_name="critical", priority=PAYMENT_PRIORITY)
def reconcile_payment(payment_id: int, scheduled_at_attempts: int | None = None) -> str:
    """Look the payment up at the processor by its key and apply what is found; never charges.

    Still unreachable, it schedules the next lookup (`scheduled_at_attempts` set), with backoff.
    """
    payment = payment_services.reconcile_payment(
        payment_id=payment_id, scheduled_at_attempts=scheduled_at_attempts
    )
    return payment.status if payment is not None else "missing"


@task(queue_name="critical", priority=PAYMENT_PRIORITY)
def process_refund(refund_id: int) -> str:
    """Send the refund once and record the outcome; raises GatewayError to be retried."""
    refund = refund_services.process_refund(refund_id=refund_id)
    return refund.status if refund is not None else "missing"


@task(queue_name="critical", priority=SWEEP_PRIORITY)
def sweep_stuck_payments() -> dict[str, list[int]]:
    """Re-enqueue payments and refunds stuck in flight past PAYMENT_STUCK_AFTER_SECONDS, and
    re-check payments given up on in the last PAYMENT_RECONCILE_HOURS for a late capture.

    Meant to run every minute or so (the worker's schedule, or `manage.py sweep_payments`).
    """
    return {
        "payments": payment_services.sweep_stuck_payments(),
        "refunds": refund_services.sweep_stuck_refunds(),
        "given_up": payment_services.sweep_given_up_payments(),
    }


def enqueue_payment_sweep() -> None:
    """Called every minute by Django-Q2's scheduler (see the background app's schedules)."""
    sweep_stuck_payments.enqueue()


def is_last_attempt(context: TaskContext) -> bool:
    """Whether the backend will not run this task again if this attempt fails.

    The Django-Q2 backend's TaskRecord knows its attempts; a backend without one (Django's
    immediate backend in tests) is taken to allow TASK_MAX_ATTEMPTS.
    """
    max_attempts = (
        TaskRecord.objects.filter(pk=context.task_result.id)
        .values_list("max_attempts", flat=True)
        .first()
    )
    return context.attempt >= (max_attempts or settings.TASK_MAX_ATTEMPTS)
