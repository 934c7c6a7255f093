"""The shop's activity: who changed what in it (its part of the audit log), for owners."""

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from backoffice.decorators import vendor_member_required
from backoffice.selectors import activity as activity_selectors
from backoffice.selectors import team as team_selectors
from project.http import AuthenticatedRequest
from shop.models import Vendor

PAGE_SIZE = 25


@require_safe
@vendor_member_required
def activity_list(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    if not team_selectors.is_owner(vendor=vendor, user=request.user):
        raise PermissionDenied("Only the shop's owners can see its activity.")
    area = request.GET.get("area", "")
    area = area if area in activity_selectors.AREAS else ""
    entries = activity_selectors.list_vendor_activity(vendor=vendor, area=area)
    context = {
        "vendor": vendor,
        "backoffice_section": "activity",
        "areas": activity_selectors.AREAS,
        "area": area,
        "page_obj": Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page")),
    }
    return render(request, "backoffice/activity/list.html", context)
