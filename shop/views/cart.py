"""The cart page and its writes. Full requests redirect back with a message; htmx requests
get the fragments to swap (the lines, the totals and the header badge in one response)."""

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from project.errors import DomainError
from project.http import HtmxRequest
from shop.forms import cart as cart_forms
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
    product_id, quantity = form.cleaned_data["product_id"], form.cleaned_data["quantity"]
    owner = cart_selectors.get_cart_owner(request=request)
    try:
        added = owner and cart_services.add_to_cart(
            owner=owner, product_id=product_id, quantity=quantity
        )
        if not added:  # a guest without a cart (or whose cart was purged)
            added = cart_services.add_to_new_guest_cart(
                request=request, product_id=product_id, quantity=quantity
            )
    except DomainError as exc:
        return _add_result(request, error=exc.message)
    return _add_result(request, added=added, quantity=quantity)


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
    added: cart_services.AddedToCart | None = None,
    quantity: int = 0,
    error: str = "",
) -> HttpResponse:
    """The add's outcome: an htmx fragment with the header badge swapped out of band (its
    count as the add returned it), or a message and a redirect back."""
    if not request.htmx:
        if added is not None:
            messages.success(request, f"Added {quantity} × {added.product_name} to your cart.")
        else:
            messages.error(request, error)
        return _back(request)
    if added is not None:
        cart_selectors.remember_cart_count(request=request, count=added.cart_count)
    context = {"added": added, "quantity": quantity, "error": error}
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
