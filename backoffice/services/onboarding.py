"""Becoming a vendor: the application and staff's decisions on it.

Every decision moves the vendor through VENDOR_TRANSITIONS only and emails the outcome
after the transaction commits; an approval records VendorApproved instead, whose handler
sends that email.
"""

import logging
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify

from accounts.models import User
from backoffice import events as backoffice_events
from backoffice import tasks
from project import events, page_cache
from project.audit import services as audit
from project.errors import DomainError
from shop.models import Vendor, VendorMembership, VendorStatus

logger = logging.getLogger(__name__)

# The vendor state machine: the only moves staff can make.
VENDOR_TRANSITIONS: dict[str, set[str]] = {
    VendorStatus.PENDING: {VendorStatus.APPROVED, VendorStatus.REJECTED},
    VendorStatus.APPROVED: {VendorStatus.SUSPENDED},
    VendorStatus.SUSPENDED: {VendorStatus.APPROVED},
    VendorStatus.REJECTED: set(),
}
# Staff's decisions, each one move of the state machine: name -> (from, to).
DECISIONS: dict[str, tuple[str, str]] = {
    "approve": (VendorStatus.PENDING, VendorStatus.APPROVED),
    "reject": (VendorStatus.PENDING, VendorStatus.REJECTED),
    "suspend": (VendorStatus.APPROVED, VendorStatus.SUSPENDED),
    "reinstate": (VendorStatus.SUSPENDED, VendorStatus.APPROVED),
}
# A user belongs to at most one live shop: its backoffice is the one they see.
LIVE_STATUSES = (VendorStatus.PENDING, VendorStatus.APPROVED, VendorStatus.SUSPENDED)


class IllegalVendorTransition(DomainError):
    code = "illegal_vendor_transition"


class ApplicationNotAllowed(DomainError):
    code = "application_not_allowed"


class NoteRequired(DomainError):
    code = "note_required"


def live_vendor_of(*, user: User) -> Vendor | None:
    """The pending, approved or suspended vendor the user belongs to, if any."""
    return (
        Vendor.objects.filter(memberships__user=user, status__in=LIVE_STATUSES)
        .order_by("memberships__created_at")
        .first()
    )


def available_decisions(*, vendor: Vendor) -> list[str]:
    """The decisions staff can take on this vendor now, in DECISIONS order."""
    return [name for name, (source, _) in DECISIONS.items() if source == vendor.status]


def latest_application(*, user: User) -> Vendor | None:
    return Vendor.objects.filter(applied_by=user).order_by("-created_at", "-id").first()


def apply_to_sell(
    *,
    user: User,
    name: str,
    description: str,
    contact_email: str,
    contact_phone: str,
    payout_details: str,
    base_url: str | None = None,
) -> Vendor:
    """Create a pending vendor with the applicant as its owner; emails a receipt.

    Locks the applicant's user row so two concurrent applications cannot both succeed.
    Refused for unverified users and for members of a pending, approved or suspended shop.
    """
    name = name.strip()
    if not name:
        raise ApplicationNotAllowed("Give your shop a name.")
    with transaction.atomic():
        applicant = User.objects.select_for_update().get(pk=user.pk)
        if not applicant.is_verified:
            raise ApplicationNotAllowed("Verify your email address before applying to sell.")
        existing = live_vendor_of(user=applicant)
        if existing is not None:
            raise ApplicationNotAllowed(
                f"You already belong to {existing.name} ({existing.get_status_display().lower()})."
            )
        vendor = _create_with_unique_slug(
            Vendor(
                name=name,
                description=description.strip(),
                contact_email=contact_email.strip().lower(),
                contact_phone=contact_phone.strip(),
                payout_details=payout_details.strip(),
                applied_by=applicant,
                status=VendorStatus.PENDING,
            )
        )
        membership = VendorMembership.objects.create(
            vendor=vendor, user=applicant, role=VendorMembership.Role.OWNER
        )
        audit.record(
            "vendor.applied",
            actor=applicant,
            vendor=vendor,
            target=membership,
            changes={"role": [None, membership.role]},
        )
        _email_outcome(vendor=vendor, outcome="received", base_url=base_url)
    return vendor


def _create_with_unique_slug(vendor: Vendor) -> Vendor:
    base = slugify(vendor.name)[:120] or "shop"
    candidate = base
    for attempt in range(2, 50):
        if not Vendor.objects.filter(slug=candidate).exists():
            break
        candidate = f"{base}-{attempt}"
    vendor.slug = candidate
    try:
        # A savepoint: a concurrent application taking the same slug must not poison the
        # outer transaction; then a random suffix settles it.
        with transaction.atomic():
            vendor.save()
    except IntegrityError:
        vendor.slug = f"{base}-{get_random_string(6).lower()}"
        vendor.save()
    return vendor


def approve_vendor(*, vendor: Vendor, acting_user: User, note: str = "") -> Vendor:
    """Pending → approved: the shop's products become visible and its backoffice opens.

    Records VendorApproved (aggregate: the vendor); its handler emails the applicant.
    """
    return _decide(
        vendor=vendor,
        to=VendorStatus.APPROVED,
        outcome="approved",
        note=note,
        acting_user=acting_user,
        from_statuses={VendorStatus.PENDING},
    )


def reject_vendor(*, vendor: Vendor, acting_user: User, note: str) -> Vendor:
    """Pending → rejected, with the reason told to the applicant."""
    return _decide(
        vendor=vendor,
        to=VendorStatus.REJECTED,
        outcome="rejected",
        note=note,
        acting_user=acting_user,
        require_note=True,
    )


def suspend_vendor(*, vendor: Vendor, acting_user: User, note: str) -> Vendor:
    """Approved → suspended: products hidden from the shop, backoffice read-only."""
    return _decide(
        vendor=vendor,
        to=VendorStatus.SUSPENDED,
        outcome="suspended",
        note=note,
        acting_user=acting_user,
        require_note=True,
    )


def reinstate_vendor(*, vendor: Vendor, acting_user: User, note: str = "") -> Vendor:
    """Suspended → approved again."""
    return _decide(
        vendor=vendor,
        to=VendorStatus.APPROVED,
        outcome="reinstated",
        note=note,
        acting_user=acting_user,
        from_statuses={VendorStatus.SUSPENDED},
    )


def _decide(
    *,
    vendor: Vendor,
    to: str,
    outcome: str,
    note: str,
    acting_user: User,
    require_note: bool = False,
    from_statuses: set[str] | None = None,
) -> Vendor:
    """Lock the vendor row, check the move against VENDOR_TRANSITIONS, apply it, email it
    (an approval: record VendorApproved, whose handler emails it)."""
    note = note.strip()
    if require_note and not note:
        raise NoteRequired(f"Say why {vendor.name} is {VendorStatus(to).label.lower()}.")
    with transaction.atomic():
        locked = Vendor.objects.select_for_update().get(pk=vendor.pk)
        allowed = to in VENDOR_TRANSITIONS.get(locked.status, set())
        if not allowed or (from_statuses is not None and locked.status not in from_statuses):
            raise IllegalVendorTransition(
                f"{locked.name} is {locked.get_status_display().lower()} and cannot be {outcome}."
            )
        before = locked.status
        locked.status = to
        page_cache.catalogue_changed()  # its products appear or disappear
        locked.review_note = note[:300]
        locked.reviewed_at = timezone.now()
        locked.save(update_fields=["status", "review_note", "reviewed_at"])
        audit.record(
            f"vendor.{outcome}",
            actor=acting_user,
            vendor=locked,
            target=locked,
            changes={"status": [before, to]},
            metadata={"note": locked.review_note} if locked.review_note else None,
        )
        if outcome == "approved":
            events.record(
                backoffice_events.VendorApproved(
                    vendor_id=locked.pk, approved_by_id=getattr(acting_user, "pk", None)
                ),
                aggregate=locked,
            )
        else:
            _email_outcome(vendor=locked, outcome=outcome)
    logger.info("Vendor %s %s by user %s", locked.pk, outcome, getattr(acting_user, "pk", None))
    vendor.status, vendor.review_note, vendor.reviewed_at = (
        locked.status,
        locked.review_note,
        locked.reviewed_at,
    )
    return vendor


def _email_outcome(*, vendor: Vendor, outcome: str, base_url: str | None = None) -> None:
    transaction.on_commit(
        partial(
            tasks.send_vendor_status_email.enqueue,
            vendor_id=vendor.pk,
            outcome=outcome,
            base_url=base_url,
        )
    )
