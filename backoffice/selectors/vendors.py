"""Backoffice reads. Every function that returns vendor data takes `vendor=` and stays inside it."""

from accounts.models import User
from shop.models import Vendor, VendorStatus

BACKOFFICE_STATUSES = (VendorStatus.APPROVED, VendorStatus.SUSPENDED)


def get_vendor_for_member(*, user: User) -> Vendor | None:
    """The approved (or suspended: read-only) vendor this user is a member of, if any."""
    return (
        Vendor.objects.filter(memberships__user=user, status__in=BACKOFFICE_STATUSES)
        .order_by("memberships__created_at")
        .first()
    )
