"""Order state changes. Every move goes through the state machine in shop.models.orders."""

from django.db import transaction
from django.db.models import F

from accounts.models import User
from project import events, page_cache
from project.audit import services as audit
from project.errors import DomainError
from shop import events as shop_events
from shop.models import Order, OrderLine, OrderStatus, Product, StockAdjustment, StockReason


class IllegalTransition(DomainError):
    code = "illegal_transition"


def transition_order(
    *, order: Order, to: str, reason: str = "", acting_user: User | None = None
) -> Order:
    """Move an order to `to` if the state machine allows it; locks the order row.

    Raises IllegalTransition otherwise, never overwriting silently. Updates `order` in place.
    Records OrderCancelled when the order becomes cancelled, and an audit entry (from/to).
    """
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if not locked.can_transition_to(to):
            raise IllegalTransition(
                f"Order {locked.number} is {locked.get_status_display().lower()} "
                f"and cannot become {OrderStatus(to).label.lower()}."
            )
        before = locked.status
        locked.status = to
        fields = ["status", "updated_at"]
        if to == OrderStatus.CANCELLED:
            locked.cancel_reason = reason[:200]
            fields.append("cancel_reason")
        locked.save(update_fields=fields)
        audit.record(
            "order.status_changed",
            actor=acting_user,
            target=locked,
            changes={"status": [before, to]},
            metadata={"reason": locked.cancel_reason} if to == OrderStatus.CANCELLED else None,
        )
        if to == OrderStatus.CANCELLED:
            vendor_ids = OrderLine.objects.filter(order=locked).values_list("vendor_id", flat=True)
            events.record(
                shop_events.OrderCancelled(
                    order_id=locked.pk,
                    reason=locked.cancel_reason,
                    vendor_ids=tuple(sorted(set(vendor_ids))),
                ),
                aggregate=locked,
            )
    order.status = locked.status
    order.cancel_reason = locked.cancel_reason
    return order


def cancel_order(*, order: Order, reason: str) -> Order:
    """Cancel an order and return its stock to the products (locked in id order).

    Records OrderCancelled and one RETURN stock adjustment per product, for the vendors'
    stock history.
    """
    with transaction.atomic():
        transition_order(order=order, to=OrderStatus.CANCELLED, reason=reason)
        quantities: dict[int, int] = {}
        for product_id, quantity in order.lines.filter(product__isnull=False).values_list(
            "product_id", "quantity"
        ):
            quantities[product_id] = quantities.get(product_id, 0) + quantity
        locked = list(
            Product.objects.select_for_update()
            .filter(pk__in=quantities)
            .order_by("pk")
            .values_list("pk", "vendor_id", "slug", "stock")
        )
        adjustments = []
        for product_id, vendor_id, slug, stock in locked:
            Product.objects.filter(pk=product_id).update(
                stock=F("stock") + quantities[product_id], version=F("version") + 1
            )
            page_cache.stock_changed(slug=slug, before=stock, after=stock + quantities[product_id])
            adjustments.append(
                StockAdjustment(
                    vendor_id=vendor_id,
                    product_id=product_id,
                    change=quantities[product_id],
                    # The row is locked: nothing else moved its stock since it was read.
                    stock_after=stock + quantities[product_id],
                    reason=StockReason.RETURN,
                    note=f"Order {order.number}: cancelled",
                )
            )
        StockAdjustment.objects.bulk_create(adjustments)
    return order
