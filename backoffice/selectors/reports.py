"""A vendor's own reports."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from shop.models import ReportJob, ReportStatus, Vendor


def list_vendor_reports(*, vendor: Vendor) -> QuerySet[ReportJob]:
    """The vendor's reports, newest first."""
    return ReportJob.objects.filter(vendor=vendor).order_by("-created_at", "-id")


def get_vendor_report(*, vendor: Vendor, pk: int) -> ReportJob:
    """One of the vendor's reports, or 404 (also for another vendor's or a staff report)."""
    return get_object_or_404(ReportJob, pk=pk, vendor=vendor)


def get_downloadable_report(*, vendor: Vendor, pk: int) -> ReportJob:
    """One of the vendor's finished, unexpired reports with its file, or 404."""
    return get_object_or_404(
        ReportJob.objects.exclude(file="").exclude(expires_at__lte=timezone.now()),
        pk=pk,
        vendor=vendor,
        status=ReportStatus.DONE,
    )
