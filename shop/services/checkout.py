"""Turning a cart into an order."""

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F

from accounts.models import Address, User
from project import events
from project.errors import DomainError
from shop import events as shop_events
from shop.models import (
    Cart,
    CartItem,
    Order,
    OrderLine,
    Product,
    StockAdjustment,
    StockReason,
    VendorStatus,
)
from shop.services.cart import NotEnoughStock, ProductUnavailable

__all__ = ["EmptyCart", "NotEnoughStock", "ProductUnavailable", "place_order"]

CENT = Decimal("0.01")


class EmptyCart(DomainError):
    code = "empty_cart"


def place_order(*, customer: User, cart: Cart | None, address: Address) -> Order:
    """Create a pending-payment order from the cart and empty it, in one transaction.

    Locks the cart row, then the product rows in id order (so concurrent checkouts never
    deadlock), checks visibility and stock, decrements stock (a SALE stock adjustment per
    line), snapshots names, prices, vendors and the address; records OrderPlaced. Raises
    EmptyCart (also for no cart at all), ProductUnavailable or NotEnoughStock and then changes
    nothing.
    """
    if cart is None:
        raise EmptyCart("Your cart is empty.")
    with transaction.atomic():
        Cart.objects.select_for_update().filter(pk=cart.pk).first()
        items = list(CartItem.objects.filter(cart=cart).order_by("product_id"))
        if not items:
            raise EmptyCart("Your cart is empty.")
        products = {
            product.pk: product
            for product in Product.objects.select_for_update(of=("self",))
            .select_related("vendor")
            .filter(pk__in=[item.product_id for item in items])
            .order_by("pk")
        }
        for item in items:
            product = products.get(item.product_id)
            if (
                product is None
                or not product.is_active
                or product.vendor.status != VendorStatus.APPROVED
            ):
                name = product.name if product else "A product in your cart"
                raise ProductUnavailable(f"{name} is no longer available.")
            if item.quantity > product.stock:
                raise NotEnoughStock(
                    f"Not enough stock for {product.name}: only {product.stock} left."
                )

        lines = []
        sales = []
        for item in items:
            product = products[item.product_id]
            Product.objects.filter(pk=product.pk).update(stock=F("stock") - item.quantity)
            # The row is locked, so its stock as read minus what this order took is exact.
            product.stock -= item.quantity
            sales.append(
                StockAdjustment(
                    vendor=product.vendor,
                    product=product,
                    change=-item.quantity,
                    stock_after=product.stock,
                    reason=StockReason.SALE,
                )
            )
            lines.append(
                OrderLine(
                    vendor=product.vendor,
                    product=product,
                    product_name=product.name,
                    unit_price=product.price,
                    quantity=item.quantity,
                    line_total=(product.price * item.quantity).quantize(CENT),
                )
            )
        order = Order.objects.create(
            customer=customer,
            total=sum((line.line_total for line in lines), Decimal("0.00")),
            currency=settings.PAYMENT_CURRENCY,
            ship_name=address.full_name,
            ship_line1=address.line1,
            ship_line2=address.line2,
            ship_city=address.city,
            ship_postal_code=address.postal_code,
            ship_country=address.country,
            ship_phone=address.phone,
        )
        for line in lines:
            line.order = order
        OrderLine.objects.bulk_create(lines)
        for sale in sales:
            sale.note = f"Order {order.number}"
        StockAdjustment.objects.bulk_create(sales)
        CartItem.objects.filter(cart=cart).delete()
        events.record(
            shop_events.OrderPlaced(
                order_id=order.pk,
                customer_id=customer.pk,
                vendor_ids=tuple(sorted({line.vendor_id for line in lines})),
                total=order.total,
                currency=order.currency,
            ),
            aggregate=order,
        )
    return order
