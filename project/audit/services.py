"""Recording audit entries: the one way anything is written to the audit log."""

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from django.db import models

from project import request_context
from project.audit.models import Action, AuditEntry

if TYPE_CHECKING:
    from accounts.models import User
    from shop.models import Vendor

security_log = logging.getLogger("bazaar.security")

# A changed field whose name matches is recorded as changed, never with its values.
_REDACTED_FIELDS = re.compile(
    r"(?i)password|passwd|hash|token|secret|totp|otp|recovery|api_?key|session|card|cvc|cvv|"
    r"pan\b|iban|payout|signature"
)
REDACTED = "[redacted]"


def redact(changes: dict[str, Any] | None) -> dict[str, Any]:
    """The changes with secrets' values replaced, and every value made JSON-safe."""
    safe: dict[str, Any] = {}
    for field, values in (changes or {}).items():
        if _REDACTED_FIELDS.search(str(field)):
            safe[str(field)] = [REDACTED, REDACTED]
        else:
            before, after = values
            safe[str(field)] = [_plain(before), _plain(after)]
    return safe


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, list | tuple | set):
        return [_plain(item) for item in value]
    return str(value)


def _context(name: str, default: Any) -> Any:
    # project.request_context grows current_client_ip / current_user_agent (contract 3);
    # until they exist an entry simply carries no address.
    var = getattr(request_context, name, None)
    return var.get() if var is not None else default


def record(
    action: str,
    *,
    actor: "User | None" = None,
    vendor: "Vendor | int | None" = None,
    target: models.Model | None = None,
    changes: dict | None = None,
    metadata: dict | None = None,
) -> AuditEntry:
    """Append one entry (call inside the service's transaction, so it commits with the change)
    and write one line to the `bazaar.security` log."""
    if action not in Action.values:
        raise ValueError(f"Unknown audit action {action!r}; add it to project.audit.models.Action.")
    vendor_id, vendor_name = _vendor(vendor)
    ip = _context("current_client_ip", "-")
    user_agent = _context("current_user_agent", "")
    entry = AuditEntry.objects.create(
        action=action,
        actor_id=actor.pk if actor is not None else None,
        actor_email=(actor.email or "") if actor is not None else "",
        vendor_id=vendor_id,
        vendor_name=vendor_name,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None and target.pk is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        changes=redact(changes),
        ip="" if ip in (None, "-") else str(ip)[:45],
        user_agent=str(user_agent or "")[:300],
        request_id=_request_id(),
        metadata=json.loads(json.dumps(metadata or {}, default=str)),
    )
    _log(entry)
    return entry


def _vendor(vendor: "Vendor | int | None") -> tuple[int | None, str]:
    if vendor is None:
        return None, ""
    if isinstance(vendor, int):
        return vendor, ""
    return vendor.pk, vendor.name[:120]


def _request_id() -> str:
    request_id = request_context.current_request_id.get()
    return "" if request_id == "-" else request_id


def _log(entry: AuditEntry) -> None:
    fields = {
        "audit_action": entry.action,
        "audit_id": entry.pk,
        "actor_id": entry.actor_id,
        "vendor_id": entry.vendor_id,
        "client_ip": entry.ip or "-",
        "target": f"{entry.target_type}:{entry.target_id}" if entry.target_type else "",
    }
    # The message itself carries the fields (the JSON formatter prints the message, masked);
    # emails and other personal data never go in it: ids only.
    security_log.info(
        "audit %s actor=%s vendor=%s ip=%s target=%s",
        entry.action,
        entry.actor_id if entry.actor_id is not None else "-",
        entry.vendor_id if entry.vendor_id is not None else "-",
        entry.ip or "-",
        fields["target"] or "-",
        extra={"security": fields},
    )
