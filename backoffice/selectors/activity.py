"""The shop's part of the audit log, for its owners (backoffice "Activity")."""

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import User
from project.audit.models import Action, AuditEntry
from shop.models import Vendor

# The filter's choices: action areas (the part before the dot) a shop's entries can have.
AREAS = {
    "vendor": "Shop status",
    "team": "Team",
    "product": "Prices",
    "stock": "Stock",
    "order": "Orders",
    "refund": "Refunds",
    "export": "Reports",
    "webhook": "Webhooks",
    "admin": "Staff changes",
    "api": "API keys",
}


def list_vendor_activity(*, vendor: Vendor, area: str = "") -> QuerySet[AuditEntry]:
    """`vendor`'s audit entries, newest first, optionally one area (e.g. "team"); never
    another vendor's. `by_staff` marks entries by marketplace staff, whose email and address
    the shop is not shown."""
    entries = AuditEntry.objects.filter(vendor_id=vendor.pk).annotate(
        by_staff=Exists(User.objects.filter(pk=OuterRef("actor_id"), is_staff=True))
    )
    if area in AREAS:
        entries = entries.filter(action__startswith=f"{area}.")
    return entries.only(
        "created_at",
        "action",
        "actor_email",
        "target_type",
        "target_repr",
        "changes",
        "metadata",
        "ip",
        "actor_id",
    ).order_by("-created_at", "-id")


def action_label(action: str) -> str:
    try:
        return Action(action).label
    except ValueError:
        return action
