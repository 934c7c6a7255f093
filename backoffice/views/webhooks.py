"""A shop's webhooks (owners): its endpoints (add, secret shown once, rotate, disable,
delete, send a test event) and the delivery log (status, retry now)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from backoffice.decorators import vendor_member_required
from backoffice.forms import webhooks as webhook_forms
from backoffice.selectors import team as team_selectors
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.models import Vendor
from webhooks import selectors, services
from webhooks.models import DeliveryState

PAGE_SIZE = 25
# The secret of an endpoint just added or rotated, shown on the next page once, then gone.
SHOW_ONCE = "webhooks:show-once"


def _require_owner(request: AuthenticatedRequest, vendor: Vendor) -> None:
    if not team_selectors.is_owner(vendor=vendor, user=request.user):
        raise PermissionDenied("Only the shop's owners can manage its webhooks.")


def _show_secret_once(request: AuthenticatedRequest, endpoint_id: int, secret: str) -> None:
    request.session[SHOW_ONCE] = {"endpoint": endpoint_id, "secret": secret}


@require_http_methods(["GET", "HEAD", "POST"])
@vendor_member_required
def webhook_list(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    _require_owner(request, vendor)
    form = webhook_forms.EndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.create_endpoint(
                vendor=vendor, acting_user=request.user, **form.cleaned_data
            )
        except services.InvalidEndpoint as exc:
            form.add_error(exc.field, exc.message)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            _show_secret_once(request, endpoint.pk, endpoint.secret)
            messages.success(request, f"Endpoint {endpoint.url} added.")
            return redirect("backoffice:webhook_list")
    context = {
        "vendor": vendor,
        "backoffice_section": "webhooks",
        "endpoints": selectors.list_endpoints(vendor=vendor),
        "new_secret": request.session.pop(SHOW_ONCE, None),
        "form": form,
    }
    return render(
        request, "backoffice/webhooks/list.html", context, status=422 if form.errors else 200
    )


@require_POST
@vendor_member_required
def webhook_rotate(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    endpoint = selectors.access_endpoint(vendor=vendor, pk=pk)
    _require_owner(request, vendor)
    rotated = services.rotate_secret(
        vendor=vendor, endpoint_id=endpoint.pk, acting_user=request.user
    )
    _show_secret_once(request, rotated.pk, rotated.secret)
    messages.success(request, "New secret made. The old one keeps signing for 24 hours.")
    return redirect("backoffice:webhook_list")


@require_POST
@vendor_member_required
def webhook_toggle(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    endpoint = selectors.access_endpoint(vendor=vendor, pk=pk)
    _require_owner(request, vendor)
    changed = services.set_endpoint_active(
        vendor=vendor,
        endpoint_id=endpoint.pk,
        active=not endpoint.is_active,
        acting_user=request.user,
    )
    state = "enabled" if changed.is_active else "disabled"
    messages.success(request, f"Endpoint {changed.url} {state}.")
    return redirect("backoffice:webhook_list")


@require_POST
@vendor_member_required
def webhook_delete(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    endpoint = selectors.access_endpoint(vendor=vendor, pk=pk)
    _require_owner(request, vendor)
    services.delete_endpoint(vendor=vendor, endpoint_id=endpoint.pk, acting_user=request.user)
    messages.success(request, f"Endpoint {endpoint.url} deleted, with its delivery log.")
    return redirect("backoffice:webhook_list")


@require_POST
@vendor_member_required
def webhook_test(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    endpoint = selectors.access_endpoint(vendor=vendor, pk=pk)
    _require_owner(request, vendor)
    try:
        services.send_test_event(vendor=vendor, endpoint_id=endpoint.pk, acting_user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("backoffice:webhook_list")
    messages.success(request, f"Test event queued for {endpoint.url}.")
    return redirect(f"{_deliveries_url()}?endpoint={endpoint.pk}")


@require_safe
@vendor_member_required
def webhook_deliveries(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    _require_owner(request, vendor)
    endpoint_id = request.GET.get("endpoint", "")
    state = request.GET.get("state", "")
    deliveries = selectors.list_deliveries(
        vendor=vendor,
        endpoint_id=int(endpoint_id) if endpoint_id.isdigit() else None,
        state=state,
    )
    context = {
        "vendor": vendor,
        "backoffice_section": "webhooks",
        "endpoints": selectors.list_endpoints(vendor=vendor).only("id", "url"),
        "endpoint_filter": endpoint_id,
        "states": DeliveryState.choices,
        "state": state,
        "page_obj": Paginator(deliveries, PAGE_SIZE).get_page(request.GET.get("page")),
    }
    return render(request, "backoffice/webhooks/deliveries.html", context)


@require_POST
@vendor_member_required
def webhook_retry(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    delivery = selectors.access_delivery(vendor=vendor, pk=pk)
    _require_owner(request, vendor)
    try:
        services.retry_delivery(vendor=vendor, delivery_id=delivery.pk, acting_user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Delivery queued to be sent again now.")
    return redirect(_deliveries_url())


def _deliveries_url() -> str:
    return reverse("backoffice:webhook_deliveries")
