"""Turning a cart into an order."""

from decimal import Decimal

from django.conf import settings
from django.db import transaction

from accounts.models import Address, User
from project import events, page_cache
from project.errors import DomainError
from shop import events as shop_events
from shop.gateways import CardToken
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
from shop.services import payments as payment_services
from shop.services.cart import NotEnoughStock, ProductUnavailable
from shop.templatetags.money import money

__all__ = ["EmptyCart", "NotEnoughStock", "PricesChanged", "ProductUnavailable", "place_order"]

CENT = Decimal("0.01")


class EmptyCart(DomainError):
    code = "empty_cart"


class PricesChanged(DomainError):
    code = "prices_changed"

    def __init__(self, total: Decimal) -> None:
        super().__init__(
            f"Prices in your cart changed since you reviewed your order: the total is now "
            f"{money(total)}. Nothing was ordered or charged; check your cart and order again."
        )


def place_order(
    *,
    customer: User,
    cart: Cart | None,
    address: Address,
    card_token: CardToken | None = None,
    reviewed_total: Decimal | None = None,
) -> Order:
    """Create a pending-payment order from the cart and empty it, in one transaction; with a
    `card_token`, its payment too (pending, its charge enqueued when the order commits).

    Locks the cart row first (a second submit of the same cart waits, then finds it empty),
    snapshots names, prices, vendors and the address into the order and records OrderPlaced;
    only then locks the product rows, in id order (concurrent checkouts never deadlock), to
    check and decrement their stock (a SALE stock adjustment per line), so a popular product
    stays locked for a few statements, not the whole checkout. Raises EmptyCart (also for no
    cart at all), ProductUnavailable, NotEnoughStock, or PricesChanged when `reviewed_total`
    (what the shopper agreed to) is not the total at the prices under the lock, and then
    changes nothing.
    """
    if cart is None:
        raise EmptyCart("Your cart is empty.")
    with transaction.atomic():
        Cart.objects.select_for_update().filter(pk=cart.pk).first()
        # Read after the cart's lock: a checkout that held it has emptied the cart by now.
        items = list(
            CartItem.objects.filter(cart=cart).select_related("product__vendor").order_by("pk")
        )
        if not items:
            raise EmptyCart("Your cart is empty.")
        for item in items:
            _check_available(item.product, item.quantity)
        lines = [
            OrderLine(
                vendor_id=item.product.vendor_id,
                product=item.product,
                product_name=item.product.name,
                unit_price=item.product.price,
                quantity=item.quantity,
                line_total=(item.product.price * item.quantity).quantize(CENT),
            )
            for item in items
        ]
        total = sum((line.line_total for line in lines), Decimal("0.00"))
        if reviewed_total is not None and total != reviewed_total:
            raise PricesChanged(total)
        order = Order.objects.create(
            customer=customer,
            total=total,
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
        if card_token is not None:
            payment_services.record_payment(order=order, card_token=card_token)
        _take_stock(items, note=f"Order {order.number}")
        CartItem.objects.filter(cart=cart).delete()
    return order


def _check_available(product: Product, quantity: int) -> None:
    if not product.is_active or product.vendor.status != VendorStatus.APPROVED:
        raise ProductUnavailable(f"{product.name} is no longer available.")
    if quantity > product.stock:
        if product.stock == 0:
            raise NotEnoughStock(f"Sorry, {product.name} has sold out.")
        raise NotEnoughStock(f"Not enough stock for {product.name}: only {product.stock} left.")


def _take_stock(items: list[CartItem], *, note: str) -> None:
    """Lock the items' product rows in id order, check them again (they may have sold out, been
    withdrawn or repriced since the unlocked read) and decrement their stock: one UPDATE, one INSERT
    of stock adjustments, whatever the number of lines. The locks last until the commit."""
    wanted = {item.product_id: item.quantity for item in items}
    products = list(
        Product.objects.select_for_update(of=("self",))
        .select_related("vendor")
        .filter(pk__in=wanted)
        .order_by("pk")
    )
    if len(products) != len(wanted):
        raise ProductUnavailable("A product in your cart is no longer available.")
    # The lines were priced from the unlocked read: a price changed since is refused too.
    priced_at = {item.product_id: item.product.price for item in items}
    if any(product.price != priced_at[product.pk] for product in products):
        raise PricesChanged(
            sum(((p.price * wanted[p.pk]).quantize(CENT) for p in products), Decimal("0.00"))
        )
    for product in products:
        _check_available(product, wanted[product.pk])
        # The row is locked, so its stock as read minus what this order takes is exact.
        product.stock -= wanted[product.pk]
        product.version += 1  # the API's ETag: a vendor's stale stock write is refused
        page_cache.stock_changed(
            slug=product.slug, before=product.stock + wanted[product.pk], after=product.stock
        )
    Product.objects.bulk_update(products, ["stock", "version"])
    StockAdjustment.objects.bulk_create(
        StockAdjustment(
            vendor_id=product.vendor_id,
            product=product,
            change=-wanted[product.pk],
            stock_after=product.stock,
            reason=StockReason.SALE,
            note=note,
        )
        for product in products
    )
