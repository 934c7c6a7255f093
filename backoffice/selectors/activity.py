"""The shop's part of the audit log, for its owners (backoffice "Activity")."""

from django.db.models import QuerySet

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
    "admin": "Staff changes",
}


def list_vendor_activity(*, vendor: Vendor, area: str = "") -> QuerySet[AuditEntry]:
    """`vendor`'s audit entries, newest first, optionally one area (e.g. "team"); never
    another vendor's."""
    entries = AuditEntry.objects.filter(vendor_id=vendor.pk)
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
    ).order_by("-created_at", "-id")


def action_label(action: str) -> str:
    try:
        return Action(action).label
    except ValueError:
        return action
