"""The shop's API keys (owners only): list, make one (its secret shown once), revoke."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api.selectors import keys as key_selectors
from api.services import keys as key_services
from backoffice.decorators import vendor_member_required
from backoffice.forms import api_keys as key_forms
from backoffice.selectors import team as team_selectors
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.models import Vendor

PAGE = "backoffice/api_keys/list.html"
# The new key's secret, kept in the session from the POST to the page it redirects to, and
# taken out of it there: a reload no longer shows it.
NEW_KEY_IN_SESSION = "backoffice_new_api_key"


@require_http_methods(["GET", "HEAD", "POST"])
@vendor_member_required
def api_key_list(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    _require_owner(request, vendor)
    form = key_forms.ApiKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            new = key_services.create_key(
                vendor=vendor, acting_user=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            request.session[NEW_KEY_IN_SESSION] = {"id": new.key.pk, "secret": new.secret}
            messages.success(request, f"API key “{new.key.name}” created.")
            return redirect("backoffice:api_key_list")
    context = {
        "vendor": vendor,
        "backoffice_section": "api_keys",
        "keys": key_selectors.list_keys(vendor=vendor),
        "new_key": request.session.pop(NEW_KEY_IN_SESSION, None),
        "form": form,
    }
    return render(request, PAGE, context, status=422 if form.errors else 200)


@require_POST
@vendor_member_required
def api_key_revoke(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    key = key_selectors.access_key(vendor=vendor, pk=pk)
    _require_owner(request, vendor)
    try:
        key_services.revoke_key(vendor=vendor, key_id=key.pk, acting_user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"API key “{key.name}” revoked; integrations using it are refused."
        )
    return redirect("backoffice:api_key_list")


def _require_owner(request: AuthenticatedRequest, vendor: Vendor) -> None:
    if not team_selectors.is_owner(vendor=vendor, user=request.user):
        raise PermissionDenied("Only the shop's owners can manage its API keys.")
