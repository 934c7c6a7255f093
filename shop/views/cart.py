"""The cart page and its writes. Full requests redirect back with a message; htmx requests
get the fragments to swap (the lines, the totals and the header badge in one response)."""

from collections.abc import Callable

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from project.errors import DomainError
from project.http import HtmxRequest
from shop.forms import cart as cart_forms
from shop.models import CartItem
from shop.selectors import cart as cart_selectors
from shop.services import cart as cart_services

PAGE = "shop/cart/detail.html"


@require_safe
def cart_detail(request: HttpRequest) -> HttpResponse:
    summary = cart_selectors.get_cart_summary(request=request)
    return render(request, PAGE, {"cart": summary})


@require_POST
def add_to_cart(request: HtmxRequest) -> HttpResponse:
    form = cart_forms.AddToCartForm(request.POST)
    if not form.is_valid():
        return _add_result(request, error=form.first_error())
    try:
        item = _write_creating_cart(
            request,
            lambda cart: cart_services.add_to_cart(
                cart=cart,
                product_id=form.cleaned_data["product_id"],
                quantity=form.cleaned_data["quantity"],
            ),
        )
    except DomainError as exc:
        return _add_result(request, error=exc.message)
    return _add_result(request, item=item, quantity=form.cleaned_data["quantity"])


@require_POST
def update_cart_item(request: HtmxRequest, product_id: int) -> HttpResponse:
    form = cart_forms.QuantityForm(request.POST)
    if not form.is_valid():
        return _cart_changed(request, product_id=product_id, error=form.first_error())
    try:
        item = _write_existing_cart(
            request,
            lambda cart: cart_services.set_quantity(
                cart=cart, product_id=product_id, quantity=form.cleaned_data["quantity"]
            ),
        )
    except DomainError as exc:
        return _cart_changed(request, product_id=product_id, error=exc.message)
    return _cart_changed(
        request, success=f"{item.product.name}: quantity updated to {item.quantity}."
    )


@require_POST
def remove_cart_item(request: HtmxRequest, product_id: int) -> HttpResponse:
    try:
        item = _write_existing_cart(
            request,
            lambda cart: cart_services.remove_item(cart=cart, product_id=product_id),
        )
    except DomainError as exc:
        return _cart_changed(request, product_id=product_id, error=exc.message)
    name = item.product.name if item else "The item"
    return _cart_changed(request, success=f"{name} was removed from your cart.")


def _write_creating_cart(request: HttpRequest, write: Callable[..., CartItem]) -> CartItem:
    """Run a cart write on the visitor's cart, creating it first when there is none; a failed
    write then leaves no cart. An existing cart needs no transaction around the service's own
    (no savepoint)."""
    cart = cart_selectors.get_cart(request=request)
    if cart is not None:
        return write(cart)
    created = False
    try:
        with transaction.atomic():
            cart, created = cart_services.get_or_create_cart(request=request)
            return write(cart)
    except DomainError:
        if created and not request.user.is_authenticated:
            request.session.pop(cart_selectors.SESSION_CART_KEY, None)
        raise


def _write_existing_cart(request: HttpRequest, write: Callable):
    cart = cart_selectors.get_cart(request=request)
    if cart is None:
        raise cart_services.ItemNotInCart("This product is not in your cart.")
    return write(cart)


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("shop:cart")
    return redirect(target)


def _add_result(
    request: HtmxRequest,
    *,
    item: CartItem | None = None,
    quantity: int = 0,
    error: str = "",
) -> HttpResponse:
    if not request.htmx:
        if item is not None:
            messages.success(request, f"Added {quantity} × {item.product.name} to your cart.")
        else:
            messages.error(request, error)
        return _back(request)
    if not error:
        cart_selectors.count_cart_items(request=request, refresh=True)
    context = {"item": item, "quantity": quantity, "error": error}
    return render(request, "shop/cart/add_result.html", context)


def _cart_changed(
    request: HtmxRequest, *, product_id: int | None = None, error: str = "", success: str = ""
) -> HttpResponse:
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, success)
        return _back(request)
    summary = cart_selectors.get_cart_summary(request=request)
    context = {
        "cart": summary,
        "line_error": {"product_id": product_id, "message": error} if error else None,
        "oob": True,
    }
    html = render_to_string(f"{PAGE}#cart-items", context, request)
    html += render_to_string(f"{PAGE}#cart-summary", context, request)
    html += render_to_string("components/cart_badge.html", context, request)
    return HttpResponse(html)
