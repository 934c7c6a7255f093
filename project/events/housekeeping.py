"""Purging the outbox: delivered events are history once every handler has run."""

from django.conf import settings

from project.events.models import OutboxEvent
from project.housekeeping import delete_in_batches, older_than


def purge_delivered_events(*, dry_run: bool = False) -> int:
    """Delete events delivered more than PURGE_OUTBOX_AFTER_DAYS ago, with their handler
    receipts, in batches. Pending and parked events are never touched (ordering per
    aggregate is kept by AggregateSequence, not by old rows)."""
    delivered = OutboxEvent.objects.filter(
        delivered_at__lt=older_than(settings.PURGE_OUTBOX_AFTER_DAYS)
    )
    return delete_in_batches(delivered, dry_run=dry_run)
