from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django_countries import countries

from shop.models.catalogue import Product
from shop.models.vendors import Vendor


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Awaiting payment"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


# The order state machine: the only moves a service may make.
ORDER_TRANSITIONS: dict[str, set[str]] = {
    OrderStatus.PENDING_PAYMENT: {OrderStatus.PAID, OrderStatus.CANCELLED},
    OrderStatus.PAID: {OrderStatus.SHIPPED, OrderStatus.CANCELLED, OrderStatus.REFUNDED},
    OrderStatus.SHIPPED: {OrderStatus.COMPLETED, OrderStatus.REFUNDED},
    OrderStatus.COMPLETED: {OrderStatus.REFUNDED},
    OrderStatus.CANCELLED: set(),
    OrderStatus.REFUNDED: set(),
}


class Order(models.Model):
    """A shopper's order. It may span vendors; each line records its vendor."""

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(
        max_length=20,
        choices=OrderStatus.choices,
        default=OrderStatus.PENDING_PAYMENT,
        db_index=True,
    )
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    # Shipping address snapshot: later edits to the address book never rewrite an order.
    ship_name = models.CharField(max_length=150)
    ship_line1 = models.CharField(max_length=200)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100)
    ship_postal_code = models.CharField(max_length=20)
    ship_country = models.CharField(max_length=2)
    ship_phone = models.CharField(max_length=32, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(total__gte=Decimal("0.00")), name="order_total_gte_0"
            )
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("shop:order_detail", kwargs={"pk": self.pk})

    @property
    def number(self) -> str:
        return f"BZ-{self.pk:06d}" if self.pk else "BZ-new"

    def can_transition_to(self, status: str) -> bool:
        return status in ORDER_TRANSITIONS.get(self.status, set())

    @property
    def shipping_lines(self) -> list[str]:
        return [
            line
            for line in (
                self.ship_name,
                self.ship_line1,
                self.ship_line2,
                f"{self.ship_postal_code} {self.ship_city}",
                countries.name(self.ship_country) or self.ship_country,
            )
            if line
        ]


class LineStatus(models.TextChoices):
    PENDING = "pending", "To ship"
    SHIPPED = "shipped", "Shipped"
    CANCELLED = "cancelled", "Cancelled"


class Shipment(models.Model):
    """One vendor's part of an order, handed to a carrier."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="shipments")
    carrier = models.CharField(max_length=60)
    tracking_number = models.CharField(max_length=80)
    shipped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    shipped_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["shipped_at", "id"]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"


class OrderLine(models.Model):
    """One product on an order, with its price and vendor snapshotted at checkout."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="order_lines")
    product = models.ForeignKey(
        Product, null=True, on_delete=models.SET_NULL, related_name="order_lines"
    )
    product_name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(
        max_length=12, choices=LineStatus.choices, default=LineStatus.PENDING, db_index=True
    )
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="lines"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="order_line_qty_gte_1")
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_name}"
