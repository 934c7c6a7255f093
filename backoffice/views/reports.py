"""The vendor's sales reports: request one, watch its progress, download the CSV."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_safe

from backoffice.decorators import vendor_member_required
from backoffice.forms import reports as report_forms
from backoffice.selectors import reports as report_selectors
from project import files
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.models import Vendor
from shop.services import reports as report_services

PAGE_SIZE = 20
LIST_TEMPLATE = "backoffice/reports/list.html"
DETAIL_TEMPLATE = "backoffice/reports/detail.html"
STATUS_FRAGMENT = "report-status"


@require_http_methods(["GET", "HEAD", "POST"])
@vendor_member_required
def report_list(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    form = report_forms.ReportForm(
        request.POST if request.method == "POST" else None,
        initial=report_forms.ReportForm.default_period(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            report = report_services.request_report(
                vendor=vendor, acting_user=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"{report} was requested; it will be ready shortly.")
            return redirect("backoffice:report_detail", pk=report.pk)
    reports = report_selectors.list_vendor_reports(vendor=vendor)
    context = {
        "vendor": vendor,
        "backoffice_section": "reports",
        "form": form,
        "page_obj": Paginator(reports, PAGE_SIZE).get_page(request.GET.get("page")),
    }
    return render(request, LIST_TEMPLATE, context)


@require_safe
@vendor_member_required
def report_detail(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    report = report_selectors.get_vendor_report(vendor=vendor, pk=pk)
    context = {"vendor": vendor, "backoffice_section": "reports", "report": report}
    if request.htmx:
        response = render(request, f"{DETAIL_TEMPLATE}#{STATUS_FRAGMENT}", context)
    else:
        response = render(request, DETAIL_TEMPLATE, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_safe
@vendor_member_required
def report_download(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> FileResponse:
    """The vendor's own report while it has not expired; 404 for anyone else's."""
    report = report_selectors.get_downloadable_report(vendor=vendor, pk=pk)
    report_services.record_download(report=report, acting_user=request.user)
    return files.attachment(
        report.file, filename=report.download_name, content_type="text/csv; charset=utf-8"
    )
