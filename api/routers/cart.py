"""The shopper's cart: the same cart the shop shows them when signed in, changed through the
same services (each change locks the cart row; quantities stay within 1..stock). A cart line is
named by its product's id: `PATCH /cart/items/{product_id}`."""

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Router

from accounts.models import User
from api import auth
from api.errors import ApiError, problems
from api.idempotency import idempotent
from api.schemas.shop import CartItemIn, CartOut, QuantityIn
from shop.selectors import cart as cart_selectors
from shop.selectors.cart import CartSummary
from shop.services import cart as cart_services

router = Router(tags=["cart"])

# Domain errors of the cart services (409, problem+json with their code): invalid-quantity,
# product-unavailable, not-enough-stock.
CART_PROBLEMS = problems(401, 403, 409, 422)


def as_shopper(request: HttpRequest, user: User) -> HttpRequest:
    """The request as the shop's own cart code reads it: signed in as `user` (so the cart is
    the user's cart, never a session's guest cart)."""
    request.user = user
    return request


def cart_out(summary: CartSummary) -> dict:
    return {
        "lines": [
            {
                "product_id": line.product.pk,
                "name": line.product.name,
                "slug": line.product.slug,
                "unit_price": line.product.price,
                "quantity": line.quantity,
                "line_total": line.line_total,
                "available": line.available,
                "problem": line.error,
            }
            for line in summary.lines
        ],
        "count": summary.count,
        "total": summary.total,
        "can_check_out": summary.can_check_out,
    }


def _summary(request: HttpRequest) -> dict:
    return cart_out(cart_selectors.get_cart_summary(request=request))


def _add(request: HttpRequest, payload: CartItemIn) -> dict:
    cart_services.add_to_cart(
        owner=cart_selectors.CartOwner(user_id=request.user.pk),
        product_id=payload.product_id,
        quantity=payload.quantity,
    )
    return _summary(request)


NOT_IN_CART = ApiError(404, "This product is not in your cart.", code="item-not-in-cart")


def _set(request: HttpRequest, product_id: int, quantity: int) -> dict:
    cart = cart_selectors.get_cart(request=request)
    if cart is None:
        raise NOT_IN_CART
    try:
        cart_services.set_quantity(cart=cart, product_id=product_id, quantity=quantity)
    except cart_services.ItemNotInCart:
        raise NOT_IN_CART from None
    return _summary(request)


def _remove(request: HttpRequest, product_id: int) -> dict:
    cart = cart_selectors.get_cart(request=request)
    removed = cart_services.remove_item(cart=cart, product_id=product_id) if cart else None
    if removed is None:
        raise NOT_IN_CART
    return _summary(request)


@router.get("", summary="The shopper's cart", response={200: CartOut, **problems(401, 403)})
async def get_cart(request: HttpRequest) -> dict:
    """Every line with its price now, and whether it can be ordered as it is (`available`,
    `problem`): a product withdrawn or out of stock since it was added stays listed."""
    user = await auth.shopper(request)
    return await sync_to_async(_summary)(as_shopper(request, user))


@router.post(
    "/items", summary="Add a product to the cart", response={200: CartOut, **CART_PROBLEMS}
)
@idempotent
async def add_item(request: HttpRequest, payload: CartItemIn) -> dict:
    """Adds `quantity` (default 1) to what the cart holds of the product; the total for it
    must stay within the stock (409 not-enough-stock, 409 product-unavailable)."""
    user = await auth.shopper(request, write=True)
    return await sync_to_async(_add)(as_shopper(request, user), payload)


@router.patch(
    "/items/{product_id}",
    summary="Change a line's quantity",
    response={200: CartOut, **problems(401, 403, 404, 409, 422)},
)
@idempotent
async def set_item_quantity(request: HttpRequest, product_id: int, payload: QuantityIn) -> dict:
    user = await auth.shopper(request, write=True)
    return await sync_to_async(_set)(as_shopper(request, user), product_id, payload.quantity)


@router.delete(
    "/items/{product_id}",
    summary="Remove a line",
    response={200: CartOut, **problems(401, 403, 404)},
)
async def remove_item(request: HttpRequest, product_id: int) -> dict:
    user = await auth.shopper(request, write=True)
    return await sync_to_async(_remove)(as_shopper(request, user), product_id)
