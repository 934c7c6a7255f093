"""A vendor's orders: the list, one order (its part only), shipping it, cancelling a line.

Writes answer a full request with a redirect and a message, and an htmx request with the
page's `vendor-part` fragment (form errors included, status 200 so htmx swaps it).
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from backoffice.decorators import vendor_member_required
from backoffice.forms import orders as order_forms
from backoffice.selectors import live as live_selectors
from backoffice.selectors import orders as order_selectors
from project.errors import DomainError
from project.http import AuthenticatedRequest, HtmxRequest
from shop.models import LineStatus, OrderStatus, Vendor, VendorStatus
from shop.services import fulfilment

LIST_PAGE = "backoffice/orders/list.html"
DETAIL_PAGE = "backoffice/orders/detail.html"
ORDERS_PER_PAGE = 25


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/")


@require_safe
@vendor_member_required
def order_list(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    form = order_forms.OrderFilterForm(request.GET)
    form.is_valid()
    filters = form.filters()
    count_version = live_selectors.clock_version()
    orders = order_selectors.list_vendor_orders(vendor=vendor, **filters)
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "vendor": vendor,
        "form": form,
        "page_obj": page,
        "backoffice_section": "orders",
        "order_count": page.paginator.count,
        "count_version": count_version,
        # Live counts are of the whole list: a filtered count is refreshed by a resync instead.
        "order_count_live": not any(filters.values()),
    }
    template = f"{LIST_PAGE}#order-results" if request.htmx else LIST_PAGE
    return render(request, template, context)


@require_safe
@vendor_member_required
def order_detail(request: AuthenticatedRequest, order_pk: int, *, vendor: Vendor) -> HttpResponse:
    order = order_selectors.access_vendor_order(vendor=vendor, pk=order_pk)
    return _render_detail(request, order=order, vendor=vendor)


@require_POST
@vendor_member_required
def order_ship(request: AuthenticatedRequest, order_pk: int, *, vendor: Vendor) -> HttpResponse:
    order = order_selectors.access_vendor_order(vendor=vendor, pk=order_pk)
    form = order_forms.ShipForm(request.POST)
    if form.is_valid():
        try:
            shipment = fulfilment.ship_vendor_lines(
                order=order,
                vendor=vendor,
                acting_user=request.user,
                base_url=_base_url(request),
                **form.cleaned_data,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            message = (
                f"Marked shipped with {shipment.carrier}, tracking number "
                f"{shipment.tracking_number}. The shopper has been emailed."
            )
            return _written(request, order_pk=order_pk, vendor=vendor, message=message)
    return _render_detail(request, order=order, vendor=vendor, ship_form=form, invalid=True)


@require_POST
@vendor_member_required
def order_line_cancel(
    request: AuthenticatedRequest, order_pk: int, line_pk: int, *, vendor: Vendor
) -> HttpResponse:
    order = order_selectors.access_vendor_order(vendor=vendor, pk=order_pk)
    line = order_selectors.access_vendor_line(order=order, line_pk=line_pk)
    form = order_forms.CancelLineForm(request.POST)
    if form.is_valid():
        try:
            fulfilment.cancel_vendor_line(
                order=order,
                vendor=vendor,
                line_id=line.pk,
                acting_user=request.user,
                reason=form.cleaned_data["reason"],
                base_url=_base_url(request),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            message = f"Cancelled {line.product_name}; its stock is back and a refund is requested."
            return _written(request, order_pk=order_pk, vendor=vendor, message=message)
    return _render_detail(
        request, order=order, vendor=vendor, cancel_form=form, cancel_line=line, invalid=True
    )


def _written(request: HtmxRequest, *, order_pk: int, vendor: Vendor, message: str) -> HttpResponse:
    if not request.htmx:
        messages.success(request, message)
        return redirect("backoffice:order_detail", order_pk=order_pk)
    order = order_selectors.access_vendor_order(vendor=vendor, pk=order_pk)
    return _render_detail(request, order=order, vendor=vendor, status_message=message)


def _render_detail(
    request: HtmxRequest,
    *,
    order: order_selectors.VendorOrder,
    vendor: Vendor,
    ship_form: order_forms.ShipForm | None = None,
    cancel_form: order_forms.CancelLineForm | None = None,
    cancel_line=None,
    status_message: str = "",
    invalid: bool = False,
) -> HttpResponse:
    lines = order.vendor_lines
    pending = [line for line in lines if line.status == LineStatus.PENDING]
    can_fulfil = order.status == OrderStatus.PAID and bool(pending)
    context = {
        "vendor": vendor,
        "backoffice_section": "orders",
        "order": order,
        "lines": lines,
        "shipments": order.vendor_shipments,
        "subtotal": sum(line.line_total for line in lines if line.status != LineStatus.CANCELLED),
        "can_fulfil": can_fulfil and vendor.status != VendorStatus.SUSPENDED,
        "ship_form": ship_form or order_forms.ShipForm(),
        "cancel_form": cancel_form,
        "cancel_line": cancel_line,
        "status_message": status_message,
    }
    if request.htmx:
        # htmx swaps only 2xx answers: form errors come back as 200 inside the fragment.
        return render(request, f"{DETAIL_PAGE}#vendor-part", context)
    return render(request, DETAIL_PAGE, context, status=422 if invalid else 200)
