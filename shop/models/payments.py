from django.conf import settings
from django.db import models

from shop.models.orders import Order, OrderLine
from shop.models.vendors import Vendor


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    CAPTURED = "captured", "Captured"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


class Payment(models.Model):
    """One attempt to charge an order. Only the card's brand and last four digits are kept."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    status = models.CharField(
        max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, db_index=True
    )
    # Sent with every gateway call for this payment, so a retry can never charge twice.
    idempotency_key = models.CharField(max_length=80, unique=True)
    payment_method = models.CharField(max_length=120, help_text="The gateway's card token")
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    gateway_reference = models.CharField(max_length=120, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=200, blank=True)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    # When the gateway call began; a sweeper re-enqueues payments stuck past a deadline.
    processing_started_at = models.DateTimeField(null=True, blank=True)
    # Gateway calls made for this payment (1 normally; more after transient failures).
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set while the processor cannot be reached to learn whether the charge went through:
    # the payment stays processing (never failed, never paid twice) until reconciled.
    outcome_unknown_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0)
                & models.Q(refunded_amount__lte=models.F("amount")),
                name="payment_refund_within_amount",
            )
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} for {self.order} ({self.status})"


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Refunded"
    FAILED = "failed", "Failed"


class Refund(models.Model):
    """Money going back to the shopper: a whole order or chosen lines of one captured payment."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    # Set when a vendor's cancelled lines asked for it; empty for a staff refund.
    vendor = models.ForeignKey(
        Vendor, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    lines = models.ManyToManyField(OrderLine, blank=True, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    status = models.CharField(
        max_length=12, choices=RefundStatus.choices, default=RefundStatus.PENDING, db_index=True
    )
    reason = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=80, unique=True)
    gateway_reference = models.CharField(max_length=120, blank=True)
    failure_message = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_gt_0")
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} of {self.amount} for {self.order} ({self.status})"
