from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from backoffice import selectors
from backoffice.decorators import vendor_member_required
from shop.models import Vendor


@require_GET
@vendor_member_required
def dashboard(request: HttpRequest, *, vendor: Vendor) -> HttpResponse:
    summary = selectors.get_dashboard_summary(vendor=vendor)
    return render(request, "backoffice/dashboard.html", {"vendor": vendor, "summary": summary})
