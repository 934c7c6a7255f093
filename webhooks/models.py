"""A vendor's webhook endpoints and the log of every delivery to them."""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from shop.models import Vendor


class EventType(models.TextChoices):
    ORDER_PAID = "order.paid", "Order paid"
    ORDER_CANCELLED = "order.cancelled", "Order cancelled"
    # Sent only on demand ("Send a test event"); never subscribed to.
    PING = "ping", "Test event"


SUBSCRIBABLE = [EventType.ORDER_PAID, EventType.ORDER_CANCELLED]


class Endpoint(models.Model):
    """A URL of the vendor's own system that receives the events it subscribed to, signed with
    its secret (HMAC-SHA256). The secret is shown once, when made or rotated."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types it receives")
    secret = models.CharField(max_length=80)
    # After a rotation the old secret still signs (a second v1=) until this time, so the
    # receiver can switch without losing an event.
    previous_secret = models.CharField(max_length=80, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["vendor", "is_active"], name="webhooks_endpoint_vendor")]

    def __str__(self) -> str:
        return self.url

    @property
    def secret_hint(self) -> str:
        """Enough of the secret to tell which one the receiver has, never enough to sign."""
        return f"{self.secret[:10]}…{self.secret[-4:]}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One event for one endpoint: its payload (fixed when the event happened), every attempt's
    outcome and when the next is due. One per (event, endpoint): a redelivered event finds it."""

    # Sent as the `Bazaar-Delivery` header: the receiver's key to drop a repeat.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(help_text="The domain event's id (a new one for a test event)")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # While SENDING: after this the attempt is presumed dead (its worker was killed).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "endpoint"], name="webhooks_delivery_once_per_event"
            )
        ]
        indexes = [
            models.Index(fields=["vendor", "-created_at"], name="webhooks_delivery_vendor"),
            models.Index(
                fields=["state", "next_attempt_at"],
                condition=models.Q(state__in=["pending", "sending"]),
                name="webhooks_delivery_due",
            ),
            models.Index(fields=["created_at"], name="webhooks_delivery_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.endpoint_id} ({self.state})"
