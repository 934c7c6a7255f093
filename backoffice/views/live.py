"""Fragments the live backoffice re-fetches when its websocket (re)connects."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from backoffice.decorators import vendor_member_required
from backoffice.selectors import live as live_selectors
from project.http import AuthenticatedRequest
from shop.models import Vendor


@vendor_member_required
@require_safe
def orders_badge(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    context = live_selectors.orders_badge_context(vendor=vendor)
    return render(request, "backoffice/base.html#orders-badge", context)
