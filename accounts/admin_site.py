"""The Django admin behind the shop's one sign-in path, and only with a verified second factor.

`/admin/login/` does not sign anyone in: it sends visitors to the shop's sign-in page (so the
password, rate-limit and two-factor rules are the same everywhere), and sends signed-in staff
whose session has not verified a second factor to that step.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from accounts.twofactor import flow


class BazaarAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and flow.is_verified(request)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        next_url = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = ""
        next_url = next_url or reverse("admin:index", current_app=self.name)
        user = request.user
        if not user.is_authenticated:
            target = "accounts:login"
        elif user.is_active and user.is_staff:
            target = "accounts:twofactor_verify"
        else:
            raise PermissionDenied("This account cannot open the administration.")
        return redirect(f"{reverse(target)}?{urlencode({'next': next_url})}")
