"""Cart reads: which cart belongs to this visitor, and its lines shaped for the cart page."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import QuerySet, Sum
from django.http import HttpRequest

from shop.models import Cart, CartItem, Product, VendorStatus

SESSION_CART_KEY = "cart_id"
# Memo of the badge count on the request, so the page and its fragments share one query.
_COUNT_ATTR = "_bazaar_cart_count"


def get_session_cart_id(*, request: HttpRequest) -> int | None:
    """The id of the guest cart this browser session holds, if any."""
    value = request.session.get(SESSION_CART_KEY)
    return value if isinstance(value, int) and value > 0 else None


@dataclass(frozen=True)
class CartOwner:
    """Whose cart a request writes to, known without a query: a signed-in user's, or the
    guest cart the session names."""

    user_id: int | None = None
    guest_cart_id: int | None = None


def get_cart_owner(*, request: HttpRequest) -> CartOwner | None:
    """The visitor's cart owner; None for a guest whose session holds no cart."""
    if request.user.is_authenticated:
        return CartOwner(user_id=request.user.pk)
    cart_id = get_session_cart_id(request=request)
    return None if cart_id is None else CartOwner(guest_cart_id=cart_id)


def _items_for(*, request: HttpRequest) -> QuerySet[CartItem] | None:
    """The visitor's cart items as a queryset, or None when they cannot have any."""
    if request.user.is_authenticated:
        return CartItem.objects.filter(cart__user=request.user)
    cart_id = get_session_cart_id(request=request)
    if cart_id is None:
        return None
    return CartItem.objects.filter(cart_id=cart_id, cart__user__isnull=True)


def count_cart_items(*, request: HttpRequest) -> int:
    """Total quantity in the visitor's cart, for the header badge: at most one query."""
    if hasattr(request, _COUNT_ATTR):
        return getattr(request, _COUNT_ATTR)
    items = _items_for(request=request)
    count = 0 if items is None else items.aggregate(total=Sum("quantity"))["total"] or 0
    setattr(request, _COUNT_ATTR, count)
    return count


def remember_cart_count(*, request: HttpRequest, count: int) -> None:
    """The badge's count, as a write that just changed the cart returned it (no query)."""
    setattr(request, _COUNT_ATTR, count)


def get_cart(*, request: HttpRequest) -> Cart | None:
    """The visitor's existing cart, never creating one."""
    if request.user.is_authenticated:
        return Cart.objects.filter(user=request.user).first()
    cart_id = get_session_cart_id(request=request)
    if cart_id is None:
        return None
    return Cart.objects.filter(pk=cart_id, user__isnull=True).first()


@dataclass
class CartLine:
    item: CartItem
    available: bool
    error: str = ""

    @property
    def product(self) -> Product:
        return self.item.product

    @property
    def quantity(self) -> int:
        return self.item.quantity

    @property
    def line_total(self) -> Decimal:
        return self.item.product.price * self.item.quantity


@dataclass
class CartSummary:
    lines: list[CartLine] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.line_total for line in self.lines if line.available), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.subtotal

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def can_check_out(self) -> bool:
        return bool(self.lines) and all(line.available for line in self.lines)


def get_cart_summary(*, request: HttpRequest) -> CartSummary:
    """The visitor's cart lines with product and vendor: one query, whatever the cart's size."""
    items = _items_for(request=request)
    if items is None:
        setattr(request, _COUNT_ATTR, 0)
        return CartSummary()
    summary = summarise(items=items)
    setattr(request, _COUNT_ATTR, summary.count)
    return summary


def summarise(*, items: QuerySet[CartItem]) -> CartSummary:
    lines = []
    for item in items.select_related("product__vendor").order_by("added_at", "id"):
        product = item.product
        if not product.is_active or product.vendor.status != VendorStatus.APPROVED:
            lines.append(CartLine(item, False, "This product is no longer available."))
        elif item.quantity > product.stock:
            message = f"Only {product.stock} left in stock." if product.stock else "Out of stock."
            lines.append(CartLine(item, False, message))
        else:
            lines.append(CartLine(item, True))
    return CartSummary(lines=lines)
