"""Order reads, scoped to the shopper who placed them."""

from django.db.models import Count, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import User
from shop.models import Order, OrderLine, OrderStatus, PaymentStatus
from shop.services import payments as payment_services


def list_orders_for_customer(*, customer: User) -> QuerySet[Order]:
    """The customer's orders, newest first, each with `line_count` and `item_count`."""
    return (
        Order.objects.filter(customer=customer)
        .annotate(line_count=Count("lines"))
        .order_by("-created_at", "-id")
    )


def access_order(*, user: User, pk: int) -> Order:
    """The user's own order with lines (and vendors) and payments; anyone else's is a 404."""
    queryset = Order.objects.filter(customer_id=user.pk).prefetch_related(
        Prefetch(
            "lines",
            queryset=OrderLine.objects.select_related("vendor").order_by("vendor__name", "id"),
        ),
        "payments",
    )
    return get_object_or_404(queryset, pk=pk)


def get_payment_state(*, order: Order) -> dict:
    """What the order page shows about payment: the latest attempt, whether it is still in
    flight, and whether a decline cancelled the order. Uses the order's prefetched payments."""
    payments = list(order.payments.all())
    latest = payments[0] if payments else None
    return {
        "latest_payment": latest,
        "payment_in_flight": latest is not None and latest.status in payment_services.IN_FLIGHT,
        "payment_declined": (
            latest is not None
            and latest.status == PaymentStatus.FAILED
            and order.status == OrderStatus.CANCELLED
        ),
    }
