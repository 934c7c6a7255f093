"""Two-factor reads: who must use a second factor, and what a user has set up."""

from dataclasses import dataclass

from accounts.models import RecoveryCode, TotpDevice, User
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
    """What the account page's security section shows."""
    return SecuritySummary(
        enabled=is_enabled(user=user),
        required=is_required(user=user),
        recovery_codes_left=RecoveryCode.objects.filter(user=user, used_at__isnull=True).count(),
    )
