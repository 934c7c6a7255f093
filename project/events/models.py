"""The outbox: events committed with the change that caused them, and what handled them."""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AggregateSequence(models.Model):
    """The last sequence number given to an aggregate's events.

    Recording an event upserts this row, which keeps it locked until the transaction ends:
    two transactions recording for one aggregate take numbers one after the other, and the
    numbers commit in the order they were taken.
    """

    aggregate_type = models.CharField(max_length=60)
    aggregate_id = models.CharField(max_length=64)
    last_sequence = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id"], name="events_aggregate_sequence_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.aggregate_type}:{self.aggregate_id} at {self.last_sequence}"


class OutboxEventQuerySet(models.QuerySet):
    def pending(self) -> "OutboxEventQuerySet":
        return self.filter(delivered_at__isnull=True, parked_at__isnull=True)

    def parked(self) -> "OutboxEventQuerySet":
        return self.filter(delivered_at__isnull=True, parked_at__isnull=False)


class OutboxEvent(models.Model):
    """One domain event, written in the transaction of the change it describes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=100, db_index=True)
    aggregate_type = models.CharField(max_length=60)
    aggregate_id = models.CharField(max_length=64)
    sequence = models.PositiveBigIntegerField(help_text="Position among its aggregate's events")
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    parked_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when retries ran out; replay to try again"
    )
    last_error = models.TextField(blank=True)

    objects = OutboxEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "aggregate_type", "aggregate_id", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "sequence"],
                name="events_outbox_aggregate_sequence",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "created_at"],
                condition=models.Q(delivered_at__isnull=True, parked_at__isnull=True),
                name="events_outbox_pending",
            ),
            models.Index(
                fields=["aggregate_type", "aggregate_id", "sequence"],
                condition=models.Q(delivered_at__isnull=True),
                name="events_outbox_undelivered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.sequence} of {self.aggregate_type}:{self.aggregate_id}"

    @property
    def state(self) -> str:
        if self.delivered_at:
            return "delivered"
        if self.parked_at:
            return "parked"
        return "retrying" if self.attempts else "pending"


class HandlerReceipt(models.Model):
    """A handler finished an event. A redelivered event skips the handlers listed here."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="receipts")
    handler = models.CharField(max_length=200)
    handled_by = models.CharField(
        max_length=100, blank=True, help_text="host:pid of the dispatcher"
    )
    handled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["handled_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "handler"], name="events_receipt_once")
        ]

    def __str__(self) -> str:
        return f"{self.handler} handled {self.event_id}"
