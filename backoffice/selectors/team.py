"""A vendor's team, scoped to that vendor."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import User
from shop.models import Vendor, VendorInvitation, VendorMembership


def list_members(*, vendor: Vendor) -> QuerySet[VendorMembership]:
    return (
        VendorMembership.objects.filter(vendor=vendor)
        .select_related("user")
        .order_by("role", "created_at", "id")
    )


def list_open_invitations(*, vendor: Vendor) -> QuerySet[VendorInvitation]:
    return (
        VendorInvitation.objects.filter(
            vendor=vendor, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .select_related("invited_by")
        .order_by("-created_at", "-id")
    )


def is_owner(*, vendor: Vendor, user: User) -> bool:
    return VendorMembership.objects.filter(
        vendor=vendor, user=user, role=VendorMembership.Role.OWNER
    ).exists()


def access_membership(*, vendor: Vendor, pk: int) -> VendorMembership:
    """A membership of this vendor; another vendor's is a 404."""
    return get_object_or_404(VendorMembership.objects.select_related("user"), vendor=vendor, pk=pk)


def access_invitation(*, vendor: Vendor, pk: int) -> VendorInvitation:
    """An invitation of this vendor; another vendor's is a 404."""
    return get_object_or_404(VendorInvitation, vendor=vendor, pk=pk)
