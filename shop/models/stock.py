from django.conf import settings
from django.db import models

from shop.models.catalogue import Product
from shop.models.vendors import Vendor


class StockReason(models.TextChoices):
    RECEIVED = "received", "Received"
    DAMAGED = "damaged", "Damaged"
    CORRECTION = "correction", "Correction"
    SALE = "sale", "Sale"
    RETURN = "return", "Returned to stock"


class StockAdjustment(models.Model):
    """One change to a product's stock, with why and by whom: the stock history."""

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="stock_adjustments")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stock_adjustments")
    change = models.IntegerField(help_text="Positive adds stock, negative removes it")
    stock_after = models.PositiveIntegerField()
    reason = models.CharField(max_length=12, choices=StockReason.choices)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(change=0), name="stock_adjustment_nonzero")
        ]

    def __str__(self) -> str:
        return f"{self.change:+d} {self.product} ({self.reason})"
