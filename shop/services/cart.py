"""Cart writes. Every change locks the cart row, so two tabs cannot interleave their edits."""

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import F, OuterRef, Subquery, Sum
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from project.errors import DomainError
from project.housekeeping import delete_in_batches, older_than
from shop.models import Cart, CartItem, Order, Product, VendorStatus
from shop.selectors import cart as cart_selectors


class InvalidQuantity(DomainError):
    code = "invalid_quantity"


class ProductUnavailable(DomainError):
    code = "product_unavailable"


class NotEnoughStock(DomainError):
    code = "not_enough_stock"


class ItemNotInCart(DomainError):
    code = "item_not_in_cart"


def _visible_product(product_id: int) -> Product:
    product = (
        Product.objects.select_related("vendor")
        .filter(pk=product_id, is_active=True, vendor__status=VendorStatus.APPROVED)
        .first()
    )
    if product is None:
        raise ProductUnavailable("This product is not available.")
    return product


def _check_quantity(*, product: Product, quantity: int, in_cart: int = 0) -> None:
    if quantity < 1:
        raise InvalidQuantity("Quantity must be at least 1.")
    if quantity > product.stock:
        if product.stock == 0:
            raise NotEnoughStock(f"{product.name} is out of stock.")
        message = f"Only {product.stock} left in stock."
        if in_cart:
            message += f" You already have {in_cart} in your cart."
        raise NotEnoughStock(message)


def _lock(cart: Cart) -> None:
    Cart.objects.select_for_update().filter(pk=cart.pk).first()


@dataclass(frozen=True)
class AddedToCart:
    product_name: str
    quantity: int  # the line's quantity now
    cart_count: int  # the cart's total quantity now (the header badge)


# The cart's row locked (until the commit) and marked as changed, found by its owner.
_TOUCH_USERS_CART = "UPDATE shop_cart SET updated_at = %s WHERE user_id = %s RETURNING id"
_TOUCH_GUEST_CART = (
    "UPDATE shop_cart SET updated_at = %s WHERE id = %s AND user_id IS NULL RETURNING id"
)
# A line already in the cart raised, only while its product is visible and the new quantity
# within stock. The SUM reads the cart as it was before this statement (a statement does not
# see its own writes), and exactly so: the cart's row was locked first, and every cart write
# locks it.
_RAISE_LINE = """
    UPDATE shop_cartitem AS line SET quantity = line.quantity + %(quantity)s
    FROM shop_product AS product, shop_vendor AS vendor
    WHERE line.cart_id = %(cart_id)s AND line.product_id = %(product_id)s
      AND product.id = line.product_id AND product.is_active
      AND vendor.id = product.vendor_id AND vendor.status = %(approved)s
      AND line.quantity + %(quantity)s <= product.stock
    RETURNING product.name, line.quantity,
      (SELECT SUM(quantity) FROM shop_cartitem WHERE cart_id = %(cart_id)s) + %(quantity)s
"""


def add_to_cart(
    *, owner: cart_selectors.CartOwner, product_id: int, quantity: int
) -> AddedToCart | None:
    """Add `quantity` of a visible product to the owner's cart (a user's is created when
    missing); the cart's total for it stays within 1..stock. Locks the cart's row. None, with
    nothing changed, when a guest's cart no longer exists.

    Adding to a line already there, shopping's hottest write, is two statements of SQL (the
    cart locked and touched; the line raised under the same checks, returning the badge's
    count); a new line or a refusal then takes the ORM path, which says why."""
    if quantity < 1:
        raise InvalidQuantity("Quantity must be at least 1.")
    with transaction.atomic(), connection.cursor() as cursor:
        cart_id = _touch_cart_of(owner, cursor)
        if cart_id is None and owner.user_id is not None:
            Cart.objects.get_or_create(user_id=owner.user_id)
            cart_id = _touch_cart_of(owner, cursor)
        if cart_id is None:
            return None
        raised = None
        # SQLite's RETURNING cannot name the FROM clause's tables: on the embedded default
        # every add takes the ORM path.
        if connection.vendor == "postgresql":
            cursor.execute(
                _RAISE_LINE,
                {
                    "cart_id": cart_id,
                    "product_id": product_id,
                    "quantity": quantity,
                    "approved": VendorStatus.APPROVED.value,
                },
            )
            raised = cursor.fetchone()
        if raised is None:
            return _add_line(cart_id=cart_id, product_id=product_id, quantity=quantity)
    name, line_quantity, cart_count = raised
    return AddedToCart(product_name=name, quantity=line_quantity, cart_count=cart_count)


def add_to_new_guest_cart(*, request: HttpRequest, product_id: int, quantity: int) -> AddedToCart:
    """A guest's first add: their cart is created with it and named in their session; a
    refused add leaves no cart."""
    if quantity < 1:
        raise InvalidQuantity("Quantity must be at least 1.")
    with transaction.atomic():
        cart = Cart.objects.create()  # locked by its INSERT until the commit
        added = _add_line(cart_id=cart.pk, product_id=product_id, quantity=quantity)
    request.session[cart_selectors.SESSION_CART_KEY] = cart.pk
    return added


def _touch_cart_of(owner: cart_selectors.CartOwner, cursor: CursorWrapper) -> int | None:
    now = timezone.now()
    if owner.user_id is not None:
        cursor.execute(_TOUCH_USERS_CART, [now, owner.user_id])
    else:
        cursor.execute(_TOUCH_GUEST_CART, [now, owner.guest_cart_id])
    row = cursor.fetchone()
    return None if row is None else row[0]


def _add_line(*, cart_id: int, product_id: int, quantity: int) -> AddedToCart:
    """A new line, or why the add is refused, in a cart locked by the caller."""
    product = (
        Product.objects.filter(pk=product_id, is_active=True, vendor__status=VendorStatus.APPROVED)
        .annotate(
            in_cart=Subquery(
                CartItem.objects.filter(cart_id=cart_id, product_id=OuterRef("pk")).values(
                    "quantity"
                )
            )
        )
        .first()
    )
    if product is None:
        raise ProductUnavailable("This product is not available.")
    in_cart = product.in_cart or 0
    _check_quantity(product=product, quantity=in_cart + quantity, in_cart=in_cart)
    if in_cart:  # stock came in between the line's UPDATE and this read
        CartItem.objects.filter(cart_id=cart_id, product=product).update(
            quantity=F("quantity") + quantity
        )
    else:
        CartItem.objects.create(cart_id=cart_id, product=product, quantity=quantity)
    count = CartItem.objects.filter(cart_id=cart_id).aggregate(total=Sum("quantity"))["total"]
    return AddedToCart(product_name=product.name, quantity=in_cart + quantity, cart_count=count)


def set_quantity(*, cart: Cart, product_id: int, quantity: int) -> CartItem:
    """Set a line's quantity to 1..stock of a product already in the cart."""
    if quantity < 1:
        raise InvalidQuantity("Quantity must be at least 1.")
    with transaction.atomic():
        _lock(cart)
        item = CartItem.objects.filter(cart=cart, product_id=product_id).first()
        if item is None:
            raise ItemNotInCart("This product is not in your cart.")
        product = _visible_product(product_id)
        _check_quantity(product=product, quantity=quantity)
        item.quantity = quantity
        item.save(update_fields=["quantity"])
        cart.save(update_fields=["updated_at"])
    item.product = product
    return item


def remove_item(*, cart: Cart, product_id: int) -> CartItem | None:
    """Remove a product from the cart and return the removed line (None if it was not there)."""
    with transaction.atomic():
        _lock(cart)
        item = (
            CartItem.objects.select_related("product")
            .filter(cart=cart, product_id=product_id)
            .first()
        )
        if item is not None:
            item.delete()
            cart.save(update_fields=["updated_at"])
    return item


def merge_guest_cart(*, guest_cart_id: int | None, user: User) -> None:
    """Move a guest cart's items into the user's cart after they sign in (capped at stock).

    Quantities of a product in both carts are summed; unavailable products are dropped.
    The guest cart is deleted. Locks both cart rows.
    """
    if guest_cart_id is None:
        return
    with transaction.atomic():
        guest = Cart.objects.select_for_update().filter(pk=guest_cart_id, user__isnull=True).first()
        if guest is None:
            return
        cart, _ = Cart.objects.get_or_create(user=user)
        _lock(cart)
        existing = {item.product_id: item for item in CartItem.objects.filter(cart=cart)}
        guest_items = CartItem.objects.filter(
            cart=guest, product__is_active=True, product__vendor__status=VendorStatus.APPROVED
        ).select_related("product")
        for guest_item in guest_items:
            stock = guest_item.product.stock
            item = existing.get(guest_item.product_id)
            if item is None:
                quantity = min(guest_item.quantity, stock)
                if quantity >= 1:
                    CartItem.objects.create(
                        cart=cart, product_id=guest_item.product_id, quantity=quantity
                    )
            else:
                quantity = min(item.quantity + guest_item.quantity, max(stock, item.quantity))
                if quantity != item.quantity:
                    item.quantity = quantity
                    item.save(update_fields=["quantity"])
        guest.delete()
        cart.save(update_fields=["updated_at"])


def refill_cart_from_order(*, cart: Cart, order: Order) -> None:
    """Put a cancelled order's products back in the cart (capped at stock), so the shopper
    can try another card without shopping again. Unavailable products are skipped."""
    with transaction.atomic():
        _lock(cart)
        existing = {item.product_id: item for item in CartItem.objects.filter(cart=cart)}
        lines = order.lines.filter(
            product__is_active=True, product__vendor__status=VendorStatus.APPROVED
        ).select_related("product")
        for line in lines:
            product = line.product
            if product is None:  # a deleted product (the filter above already leaves it out)
                continue
            item = existing.get(product.pk)
            in_cart = item.quantity if item else 0
            quantity = min(in_cart + line.quantity, product.stock)
            if item is None and quantity >= 1:
                CartItem.objects.create(cart=cart, product=product, quantity=quantity)
            elif item is not None and quantity > in_cart:
                item.quantity = quantity
                item.save(update_fields=["quantity"])


def purge_abandoned_carts(*, dry_run: bool = False) -> int:
    """Delete guest carts (and their items) untouched for PURGE_CARTS_AFTER_DAYS, in batches.

    A signed-in user's cart is never purged. A guest cart locked right now (being merged into
    a user's cart at sign-in, or edited) is skipped, and one touched since it was picked stays:
    the delete checks its age again."""
    abandoned = Cart.objects.filter(
        user__isnull=True, updated_at__lt=older_than(settings.PURGE_CARTS_AFTER_DAYS)
    )
    return delete_in_batches(abandoned, dry_run=dry_run)
