"""Send-once guard for emails: one SentEmail row per idempotency key.

The row is marked "sending" (committed) just before the SMTP conversation and "sent" after
it. It is marked "failed", and a retry sends again, only when the server surely did not
accept the message: a failure before the message data went out (connecting, EHLO, MAIL,
RCPT, the DATA command) or an explicit error reply (see project.background.smtp; local
backends such as files are always sure). When the outcome is unknown (no reply after the
message data went out, or a worker that died mid-send and left "sending"), the email is
never sent again by itself: the task fails with `EmailOutcomeUnknown` (permanent, so staff
see it at once), and staff decide on the row in the admin: `allow_sending_again` (then
"Retry now" on the task; the recipient may get it twice, under the same Message-ID) or
`mark_delivered` (never sent again).

A "sending" row is taken for a dead attempt's: a task never runs two attempts at once, but
two tasks sharing a key may, and the second one then fails too, without sending. A task
that sends several emails stops at the first whose outcome is unknown; the others go out
when staff have decided on it and retried the task.
"""

import contextlib
import hashlib
import logging

from django.db import transaction
from django.utils import timezone

from project.background import smtp
from project.background.models import SentEmail
from project.background.runner import PermanentTaskError

logger = logging.getLogger("project.background")


class EmailOutcomeUnknown(PermanentTaskError):
    """An email may or may not have reached the mail server; it is not sent again unless
    staff allow it (admin → Sent emails → "Allow sending again", then "Retry now")."""


def _outcome_unknown(record: SentEmail, why: str) -> EmailOutcomeUnknown:
    return EmailOutcomeUnknown(
        f"Email {record.template} (key {record.key}, Message-ID {record.message_id}) {why}; "
        'it is not sent again unless staff allow it (admin: Sent emails, "Allow sending '
        'again", then "Retry now" on this task).'
    )


def message_id_for(key: str) -> str:
    """A stable Message-ID, so a receiving system could also spot a duplicate."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@bazaar.local>"


def claim(*, key: str, to: str, subject: str, template: str) -> SentEmail | None:
    """Reserve the key for sending; None when it was sent already.

    Raises EmailOutcomeUnknown when an earlier attempt left the key "sending"."""
    with transaction.atomic():
        record, created = SentEmail.objects.select_for_update().get_or_create(
            key=key,
            defaults={"to": to, "subject": subject[:200], "template": template},
        )
        if not created and record.status == SentEmail.Status.SENT:
            logger.info("Email %s already sent; not sending again", template)
            return None
        if created or record.status != SentEmail.Status.SENDING:
            record.status = SentEmail.Status.SENDING
            record.attempts += 1
            record.message_id = message_id_for(key)
            record.save()
            return record
    logger.error(
        "Email %s may have been sent by an attempt that did not finish; not sending again",
        template,
    )
    raise _outcome_unknown(record, "was left being sent by an attempt that did not finish")


@contextlib.contextmanager
def sending(record: SentEmail):
    """Around the send of a claimed email: "sent" after it, "failed" when the server surely
    did not take it, still "sending" (and EmailOutcomeUnknown) when nobody knows."""
    try:
        yield
    except smtp.DeliveryUnknown as exc:
        logger.error("Email %s may or may not have been accepted: %s", record.template, exc)
        raise _outcome_unknown(record, "got no answer after its message data") from exc
    except Exception:
        mark_failed(record)
        raise
    mark_sent(record)


def mark_sent(record: SentEmail) -> None:
    SentEmail.objects.filter(pk=record.pk).update(
        status=SentEmail.Status.SENT, sent_at=timezone.now()
    )


def mark_failed(record: SentEmail) -> None:
    SentEmail.objects.filter(pk=record.pk).update(status=SentEmail.Status.FAILED)


def allow_sending_again(*, record_ids: list[int]) -> list[int]:
    """Staff's decision on emails left "sending": the next attempt of their task sends them
    (the recipient may get one twice). Returns the ids changed (only "sending" rows are)."""
    return _decide_unknown(record_ids, status=SentEmail.Status.FAILED)


def mark_delivered(*, record_ids: list[int]) -> list[int]:
    """Staff's decision on emails left "sending": taken as delivered, never sent again
    (their `sent_at` stays empty). Returns the ids changed (only "sending" rows are)."""
    return _decide_unknown(record_ids, status=SentEmail.Status.SENT)


def _decide_unknown(record_ids: list[int], *, status: str) -> list[int]:
    with transaction.atomic():
        stuck = list(
            SentEmail.objects.select_for_update()
            .filter(pk__in=record_ids, status=SentEmail.Status.SENDING)
            .values_list("pk", flat=True)
        )
        SentEmail.objects.filter(pk__in=stuck).update(status=status)
    return stuck
