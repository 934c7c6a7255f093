"""Checkout: 1. shipping address, 2. review and pay, 3. the order page (shop.views.orders),
where the shopper watches the payment, charged in the background, succeed or fail."""

import logging

from django.contrib import messages
from django.contrib.sessions.backends.base import UpdateError
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.decorators import verified_email_required
from accounts.models import Address
from project import ratelimit
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.forms import checkout as checkout_forms
from shop.gateways import get_gateway
from shop.selectors import cart as cart_selectors
from shop.services import checkout as checkout_services

logger = logging.getLogger(__name__)

SESSION_ADDRESS_KEY = "checkout_address"
ADDRESS_FIELDS = ["full_name", "line1", "line2", "city", "postal_code", "country", "phone"]


@require_http_methods(["GET", "HEAD", "POST"])
@verified_email_required
def checkout_address(request: AuthenticatedRequest) -> HttpResponse:
    cart = cart_selectors.get_cart_summary(request=request)
    if cart.is_empty:
        messages.info(request, "Your cart is empty.")
        return redirect("shop:cart")
    data = request.POST if request.method == "POST" else None
    addresses = list(account_selectors.list_addresses(user=request.user))
    form = checkout_forms.AddressChoiceForm(
        data, addresses=addresses, initial={"address": _initial_choice(request, addresses)}
    )
    wants_new = data is not None and data.get("address") == checkout_forms.NEW_ADDRESS
    new_form = checkout_forms.NewAddressForm(data if wants_new else None, prefix="new")
    if data is not None and form.is_valid():
        chosen = form.chosen_address()
        if chosen is not None:
            request.session[SESSION_ADDRESS_KEY] = {"address_id": chosen.pk}
            return redirect("shop:checkout_review")
        if new_form.is_valid():
            fields = {name: new_form.cleaned_data[name] for name in ADDRESS_FIELDS}
            if new_form.cleaned_data["save_to_book"]:
                saved = account_services.add_address(user=request.user, **fields)
                request.session[SESSION_ADDRESS_KEY] = {"address_id": saved.pk}
            else:
                request.session[SESSION_ADDRESS_KEY] = {"address": fields}
            return redirect("shop:checkout_review")
    context = {
        "cart": cart,
        "form": form,
        "new_form": new_form,
        "new_address_open": wants_new or not addresses,
        "step": "address",
    }
    return render(request, "shop/checkout/address.html", context)


@sensitive_post_parameters("card_number", "cvc")
@require_http_methods(["GET", "HEAD", "POST"])
@verified_email_required
def checkout_review(request: AuthenticatedRequest) -> HttpResponse:
    address = _session_address(request)
    if address is None:
        messages.info(request, "Choose a shipping address.")
        return redirect("shop:checkout")
    form = checkout_forms.CardForm(request.POST if request.method == "POST" else None)
    refused = None
    if form.is_bound and form.is_valid():
        # Counted before the card goes to the processor: no card testing through checkout.
        try:
            ratelimit.hit("checkout_user", str(request.user.pk))
        except ratelimit.RateLimited as exc:
            form.add_error(None, exc.message)
            refused = exc
    if form.is_bound and form.is_valid():
        token = form.tokenize(gateway=get_gateway())
        if token is not None:
            # No cart summary read first: place_order checks the cart under its lock anyway.
            try:
                order = checkout_services.place_order(
                    customer=request.user,
                    cart=cart_selectors.get_cart(request=request),
                    address=address,
                    card_token=token,
                    reviewed_total=form.cleaned_data["reviewed_total"],
                )
            except DomainError as exc:
                messages.error(request, exc.message)
                return redirect("shop:cart")
            # The order and its payment have committed: from here on nothing may turn this
            # into an error page.
            _forget_address(request)
            return redirect(order)
    cart = cart_selectors.get_cart_summary(request=request)
    if cart.is_empty or not cart.can_check_out:
        messages.info(request, "Your cart is empty." if cart.is_empty else "Check your cart.")
        return redirect("shop:cart")
    context = {"cart": cart, "address": address, "form": form, "step": "review"}
    page = render(request, "shop/checkout/review.html", context, status=422 if form.errors else 200)
    return ratelimit.refuse(page, refused) if refused else page


def _forget_address(request: HttpRequest) -> None:
    """Drop the address chosen for the order just placed and save the session here rather
    than in SessionMiddleware, which would turn a failed write (the database gone after the
    commit) into an error page for a placed order. Failed, the address is only remembered:
    the next checkout starts from the address step anyway (the cart is empty now)."""
    request.session.pop(SESSION_ADDRESS_KEY, None)
    try:
        request.session.save()
    except (DatabaseError, UpdateError):
        logger.warning("Could not save the session after placing an order", exc_info=True)
    # Saved, or given up on for this response: the middleware must not try again.
    request.session.modified = False


def _initial_choice(request: AuthenticatedRequest, addresses: list[Address]) -> str:
    ids = {address.pk for address in addresses}
    remembered = request.session.get(SESSION_ADDRESS_KEY) or {}
    for candidate in (remembered.get("address_id"), request.user.default_address_id):
        if candidate in ids:
            return str(candidate)
    return str(addresses[0].pk) if addresses else checkout_forms.NEW_ADDRESS


def _session_address(request: AuthenticatedRequest) -> Address | None:
    """The address chosen in step 1: a saved one (still the user's) or an unsaved new one."""
    remembered = request.session.get(SESSION_ADDRESS_KEY) or {}
    if "address_id" in remembered:
        return Address.objects.filter(pk=remembered["address_id"], user=request.user).first()
    if "address" in remembered:
        fields = {name: remembered["address"].get(name, "") for name in ADDRESS_FIELDS}
        return Address(user=request.user, **fields)
    return None
