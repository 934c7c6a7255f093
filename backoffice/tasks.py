"""Backoffice emails. Tasks take ids and scalars, re-read the database and skip stale work."""

import hashlib

from django.tasks import task
from django.urls import reverse

from backoffice import tokens
from project import emails
from project.background import emails as email_guard
from shop.models import (
    LineStatus,
    OrderLine,
    Shipment,
    Vendor,
    VendorInvitation,
    VendorMembership,
    VendorStatus,
)

# Critical work (payments) runs above emails, analytics below.
EMAIL_PRIORITY = 10

# outcome -> (status the vendor must still have, subject)
VENDOR_OUTCOMES: dict[str, tuple[str, str]] = {
    "received": (VendorStatus.PENDING, "We received your application to sell on Bazaar"),
    "approved": (VendorStatus.APPROVED, "Your shop {name} is approved"),
    "rejected": (VendorStatus.REJECTED, "Your application for {name} was not approved"),
    "suspended": (VendorStatus.SUSPENDED, "Your shop {name} is suspended"),
    "reinstated": (VendorStatus.APPROVED, "Your shop {name} is open again"),
}


def _vendor_recipients(vendor: Vendor) -> list[str]:
    """The applicant and the owners, each once; the shop's contact address as a fallback."""
    addresses: list[str] = []
    if vendor.applied_by is not None and vendor.applied_by.is_active:
        addresses.append(vendor.applied_by.email.lower())
    for email in VendorMembership.objects.filter(
        vendor=vendor, role=VendorMembership.Role.OWNER, user__is_active=True
    ).values_list("user__email", flat=True):
        if email.lower() not in addresses:
            addresses.append(email.lower())
    if not addresses and vendor.contact_email:
        addresses.append(vendor.contact_email)
    return addresses


def _recipient_key(key: str, address: str) -> str:
    """One send-once key per recipient (hashed: keys are short, addresses may be long)."""
    return f"{key}:{hashlib.sha256(address.encode()).hexdigest()[:16]}"


@task(queue_name="emails", priority=EMAIL_PRIORITY, takes_context=True)
def send_vendor_status_email(
    context,
    vendor_id: int,
    outcome: str,
    base_url: str | None = None,
    idempotency_key: str | None = None,
) -> int:
    """Tell the applicant and owners what became of the shop; skipped if the status moved on.

    With an `idempotency_key` (an event handler passes one per event) each recipient is
    emailed at most once per key.
    """
    if outcome not in VENDOR_OUTCOMES:
        return 0
    expected_status, subject = VENDOR_OUTCOMES[outcome]
    vendor = Vendor.objects.select_related("applied_by").filter(pk=vendor_id).first()
    if vendor is None or vendor.status != expected_status:
        return 0
    email_context = {
        "vendor": vendor,
        "note": vendor.review_note,
        "backoffice_url": emails.absolute_url(reverse("backoffice:dashboard"), base_url=base_url),
        "apply_url": emails.absolute_url(reverse("backoffice:apply"), base_url=base_url),
    }
    sent = 0
    unknown: list[email_guard.EmailOutcomeUnknown] = []
    for address in _vendor_recipients(vendor):
        try:
            sent += emails.send_templated_email(
                to=address,
                template=f"vendor_{outcome}",
                subject=subject.format(name=vendor.name),
                context=email_context,
                idempotency_key=_recipient_key(
                    idempotency_key or emails.task_email_key(context, f"vendor_{outcome}"),
                    address,
                ),
            )
        except email_guard.EmailOutcomeUnknown as exc:
            unknown.append(exc)  # the other recipients still get theirs
    if unknown:
        raise unknown[0]
    return sent


@task(queue_name="emails", priority=EMAIL_PRIORITY, takes_context=True)
def send_vendor_invitation_email(context, invitation_id: int, base_url: str | None = None) -> bool:
    """Email the signed link to an open invitation; skipped once it is accepted or revoked."""
    invitation = (
        VendorInvitation.objects.select_related("vendor", "invited_by")
        .filter(pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if invitation is None:
        return False
    token = tokens.make_invitation_token(invitation)
    path = reverse("backoffice:invitation_accept", kwargs={"token": token})
    emails.send_templated_email(
        idempotency_key=emails.task_email_key(context, "vendor_invitation"),
        to=invitation.email,
        template="vendor_invitation",
        subject=f"You are invited to join {invitation.vendor.name} on Bazaar",
        context={
            "invitation": invitation,
            "vendor": invitation.vendor,
            "inviter": invitation.invited_by.display_name if invitation.invited_by else "",
            "accept_url": emails.absolute_url(path, base_url=base_url),
            "valid_for": f"{tokens.INVITATION_MAX_AGE.days} days",
        },
    )
    return True


@task(queue_name="emails", priority=EMAIL_PRIORITY, takes_context=True)
def send_shipment_email(
    context, shipment_id: int, base_url: str | None = None, idempotency_key: str | None = None
) -> bool:
    """Tell the shopper which of their items left with which carrier and tracking number.

    With an `idempotency_key` (an event handler passes one per event) it is sent at most once
    per key.
    """
    shipment = (
        Shipment.objects.select_related("order__customer", "vendor").filter(pk=shipment_id).first()
    )
    if shipment is None:
        return False
    order = shipment.order
    emails.send_templated_email(
        idempotency_key=idempotency_key or emails.task_email_key(context, "vendor_shipment"),
        to=order.customer.email,
        template="vendor_shipment",
        subject=f"Your order {order.number} is on its way",
        context={
            "name": order.customer.full_name,
            "order": order,
            "shipment": shipment,
            "lines": list(shipment.lines.order_by("id")),
            "order_url": emails.absolute_url(order.get_absolute_url(), base_url=base_url),
        },
    )
    return True


@task(queue_name="emails", priority=EMAIL_PRIORITY, takes_context=True)
def send_line_cancelled_email(context, line_id: int, base_url: str | None = None) -> bool:
    """Tell the shopper an item was cancelled by its seller and will be refunded."""
    line = (
        OrderLine.objects.select_related("order__customer", "vendor")
        .filter(pk=line_id, status=LineStatus.CANCELLED)
        .first()
    )
    if line is None:
        return False
    order = line.order
    emails.send_templated_email(
        idempotency_key=emails.task_email_key(context, "vendor_item_cancelled"),
        to=order.customer.email,
        template="vendor_item_cancelled",
        subject=f"An item of your order {order.number} was cancelled",
        context={
            "name": order.customer.full_name,
            "order": order,
            "line": line,
            "order_url": emails.absolute_url(order.get_absolute_url(), base_url=base_url),
        },
    )
    return True
