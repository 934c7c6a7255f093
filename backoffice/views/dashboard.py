"""The vendor's dashboard: orders to fulfil, revenue, a 30-day chart, low stock."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from backoffice.decorators import vendor_member_required
from backoffice.selectors import live as live_selectors
from project.http import AuthenticatedRequest
from shop.models import Vendor


@require_safe
@vendor_member_required
def dashboard(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    context = {
        **live_selectors.dashboard_context(vendor=vendor),
        "backoffice_section": "dashboard",
    }
    return render(request, "backoffice/dashboard/index.html", context)
