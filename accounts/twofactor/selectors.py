"""Two-factor reads: who must use a second factor, and what a user has set up."""

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q

from accounts.models import TotpDevice, User
from shop.models import VendorMembership


def is_required(*, user: User) -> bool:
    """Staff and vendor owners must sign in with a second factor; everyone else may."""
    if user.is_staff:
        return True
    return VendorMembership.objects.filter(user=user, role=VendorMembership.Role.OWNER).exists()


def get_confirmed_device(*, user: User) -> TotpDevice | None:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).first()


def is_enabled(*, user: User) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


@dataclass(frozen=True)
class SecuritySummary:
    enabled: bool
    required: bool
    recovery_codes_left: int


def get_security_summary(*, user: User) -> SecuritySummary:
    """What the account page's security section shows (one query)."""
    row = (
        User.objects.filter(pk=user.pk)
        .annotate(
            enabled=Exists(
                TotpDevice.objects.filter(user=OuterRef("pk"), confirmed_at__isnull=False)
            ),
            owner=Exists(
                VendorMembership.objects.filter(
                    user=OuterRef("pk"), role=VendorMembership.Role.OWNER
                )
            ),
            codes_left=Count("recovery_codes", filter=Q(recovery_codes__used_at__isnull=True)),
        )
        .values("enabled", "owner", "codes_left", "is_staff")
        .get()
    )
    return SecuritySummary(
        enabled=row["enabled"],
        required=row["is_staff"] or row["owner"],
        recovery_codes_left=row["codes_left"],
    )
