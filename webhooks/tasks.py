"""Webhook tasks, on the `default` queue: one attempt of one delivery, and the sweeper that
the scheduler runs every minute."""

from django.tasks import task

from webhooks import delivery


@task(queue_name="default")
def deliver_webhook(delivery_id: int) -> str:
    """One attempt (webhooks.delivery); its own retries are scheduled by the attempt."""
    return delivery.attempt(delivery_id=delivery_id)


def requeue_stalled_deliveries() -> None:
    """Called by Django-Q2's scheduler through `run_scheduled`: enqueue overdue deliveries."""
    delivery.requeue_stalled()
