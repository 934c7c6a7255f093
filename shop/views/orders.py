"""A shopper's orders: the list, one order (also where a payment's progress shows) and paying
again."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST, require_safe

from project import ratelimit
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.forms import checkout as checkout_forms
from shop.gateways import get_gateway
from shop.models import OrderStatus
from shop.selectors import orders as order_selectors
from shop.services import payments as payment_services

ORDERS_PER_PAGE = 10
ORDER_PAGE = "shop/orders/detail.html"
# Everything on the order page that changes after checkout: status, payment, message, actions.
LIVE_FRAGMENT = "order-status"


@require_safe
@login_required
def order_list(request: AuthenticatedRequest) -> HttpResponse:
    orders = order_selectors.list_orders_for_customer(customer=request.user)
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    template = "shop/orders/list.html#order-list" if request.htmx else "shop/orders/list.html"
    return render(request, template, {"page_obj": page})


@require_safe
@login_required
def order_detail(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    # htmx (the poll, the resync after a reconnect) wants only the live fragment: no lines.
    state = order_selectors.access_order_state(
        user=request.user, pk=pk, with_lines=not request.htmx
    )
    template = f"{ORDER_PAGE}#{LIVE_FRAGMENT}" if request.htmx else ORDER_PAGE
    return render(request, template, _detail_context(state))


@sensitive_post_parameters("card_number", "cvc")
@require_POST
@login_required
def retry_payment(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    order = order_selectors.access_order(user=request.user, pk=pk)
    if order.status != OrderStatus.PENDING_PAYMENT:
        messages.info(request, f"Order {order.number} is not awaiting payment.")
        return redirect(order)
    form = checkout_forms.CardForm(request.POST)
    try:
        # Counted before the card goes to the processor: no card testing through "Pay now".
        ratelimit.hit("pay_user", str(request.user.pk))
    except ratelimit.RateLimited as exc:
        messages.error(request, exc.message)
        state = order_selectors.access_order_state(user=request.user, pk=pk, with_lines=True)
        page = render(request, ORDER_PAGE, _detail_context(state))
        return ratelimit.refuse(page, exc)
    token = form.tokenize(gateway=get_gateway()) if form.is_valid() else None
    if token is None:
        state = order_selectors.access_order_state(user=request.user, pk=pk, with_lines=True)
        return render(request, ORDER_PAGE, _detail_context(state, card_form=form), status=422)
    try:
        payment_services.start_payment(order=order, card_token=token)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect(order)


def _detail_context(
    state: order_selectors.OrderState, card_form: checkout_forms.CardForm | None = None
) -> dict:
    return {
        "order": state.order,
        "state": state,
        "card_form": card_form or checkout_forms.CardForm(),
    }
