"""Backoffice reads. Every function that returns vendor data takes `vendor=` and stays inside it."""

from django.db.models import Exists, F, OuterRef

from accounts.models import User
from shop.models import Vendor, VendorMembership, VendorStatus

BACKOFFICE_STATUSES = (VendorStatus.APPROVED, VendorStatus.SUSPENDED)


def get_vendor_for_member(*, user: User) -> Vendor | None:
    """The approved (or suspended: read-only) vendor this user is a member of, if any, with
    the user's role in it as `member_role` (the menu shows owners' pages by it)."""
    return (
        Vendor.objects.filter(memberships__user=user, status__in=BACKOFFICE_STATUSES)
        .annotate(member_role=F("memberships__role"))
        .order_by("memberships__created_at")
        .first()
    )


def may_open_backoffice() -> Exists:
    """Whether the user (the outer query's row) is a member of a vendor whose backoffice
    get_vendor_for_member would open: an annotation for the query that loads the user, so
    the header's "Backoffice" link costs no query of its own."""
    return Exists(
        VendorMembership.objects.filter(user=OuterRef("pk"), vendor__status__in=BACKOFFICE_STATUSES)
    )


def get_pending_application(*, user: User) -> Vendor | None:
    """The shop this user applied to open and staff have not reviewed yet, if any."""
    return (
        Vendor.objects.filter(memberships__user=user, status=VendorStatus.PENDING)
        .order_by("memberships__created_at")
        .first()
    )
