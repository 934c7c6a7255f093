"""Send-once guard for emails: one SentEmail row per idempotency key.

The row is marked "sending" (committed) just before the SMTP conversation and "sent" after
it. A known failure (the backend raised) marks it "failed", and a retry may send again. A
worker that dies during the conversation leaves "sending": the outcome is unknown, and the
guard chooses never to send twice over never missing one, so it is not resent (staff see
the row in the admin).
"""

import hashlib
import logging

from django.db import transaction
from django.utils import timezone

from project.background.models import SentEmail

logger = logging.getLogger("project.background")


def message_id_for(key: str) -> str:
    """A stable Message-ID, so a receiving system could also spot a duplicate."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@bazaar.local>"


def claim(*, key: str, to: str, subject: str, template: str) -> SentEmail | None:
    """Reserve the key for sending; None when it was sent (or may have been) already."""
    with transaction.atomic():
        record, created = SentEmail.objects.select_for_update().get_or_create(
            key=key,
            defaults={"to": to, "subject": subject[:200], "template": template},
        )
        if not created and record.status == SentEmail.Status.SENT:
            logger.info("Email %s already sent; not sending again", template)
            return None
        if not created and record.status == SentEmail.Status.SENDING:
            logger.warning(
                "Email %s may have been sent by an attempt that died; not sending again",
                template,
            )
            return None
        record.status = SentEmail.Status.SENDING
        record.attempts += 1
        record.message_id = message_id_for(key)
        record.save()
    return record


def mark_sent(record: SentEmail) -> None:
    SentEmail.objects.filter(pk=record.pk).update(
        status=SentEmail.Status.SENT, sent_at=timezone.now()
    )


def mark_failed(record: SentEmail) -> None:
    SentEmail.objects.filter(pk=record.pk).update(status=SentEmail.Status.FAILED)
