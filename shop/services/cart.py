"""Cart writes. Every change locks the cart row, so two tabs cannot interleave their edits."""

from django.conf import settings
from django.db import transaction
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


def _touch(cart: Cart) -> None:
    """Mark the cart as changed now: the UPDATE also locks its row until the transaction ends
    (what _lock does, and the write of updated_at, in one statement)."""
    cart.updated_at = timezone.now()
    Cart.objects.filter(pk=cart.pk).update(updated_at=cart.updated_at)


def get_or_create_cart(*, request: HttpRequest) -> tuple[Cart, bool]:
    """The visitor's cart, created on first write (never on a GET): (cart, created)."""
    if request.user.is_authenticated:
        return Cart.objects.get_or_create(user=request.user)
    cart = cart_selectors.get_cart(request=request)
    if cart is not None:
        return cart, False
    cart = Cart.objects.create()
    request.session[cart_selectors.SESSION_CART_KEY] = cart.pk
    return cart, True


def add_to_cart(*, cart: Cart, product_id: int, quantity: int) -> CartItem:
    """Add `quantity` of a visible product; the cart's total for it stays within 1..stock."""
    if quantity < 1:
        raise InvalidQuantity("Quantity must be at least 1.")
    with transaction.atomic():
        _touch(cart)
        # A line already there brings its (visible) product in the same query.
        item = (
            CartItem.objects.select_related("product__vendor")
            .filter(
                cart=cart,
                product_id=product_id,
                product__is_active=True,
                product__vendor__status=VendorStatus.APPROVED,
            )
            .first()
        )
        product = item.product if item is not None else _visible_product(product_id)
        in_cart = item.quantity if item else 0
        _check_quantity(product=product, quantity=in_cart + quantity, in_cart=in_cart)
        if item is None:
            item = CartItem.objects.create(cart=cart, product=product, quantity=quantity)
        else:
            item.quantity = in_cart + quantity
            item.save(update_fields=["quantity"])
    item.product = product
    return item


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
