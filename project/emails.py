"""The one way Bazaar sends email: a text and an HTML template sharing a layout."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from project.background import emails as sent_emails


def absolute_url(path: str, *, base_url: str | None = None) -> str:
    """Join a site path to the request's base URL, or to SITE_URL when there was no request."""
    base = (base_url or settings.SITE_URL).rstrip("/")
    return f"{base}/{path.lstrip('/')}"


def task_email_key(context, template: str) -> str:
    """One email per enqueued task: retries and redeliveries of a task share its result id.

    For tasks declared with `takes_context=True` that have no natural key of their own."""
    return f"task:{context.task_result.id}:{template}"


def send_templated_email(
    *, to: str, template: str, context: dict, subject: str, idempotency_key: str | None = None
) -> int:
    """Render emails/<template>.txt and .html and send them as one multipart message.

    Sent through the default mailer (MAILERS["default"]); returns the number sent (0 or 1).
    With an `idempotency_key` (a task passes its result id) the email is sent at most once
    per key, however often the task is retried or redelivered; it is sent again only when
    the server surely did not accept it, and raises EmailOutcomeUnknown (a permanent task
    failure) when that cannot be known: see project.background.emails. Call it outside a
    transaction.
    """
    full_context = {"site_name": "Bazaar", "site_url": settings.SITE_URL, **context}
    full_context.setdefault("subject", subject)
    text_body = render_to_string(f"emails/{template}.txt", full_context)
    html_body = render_to_string(f"emails/{template}.html", full_context)
    message = EmailMultiAlternatives(
        subject="".join(subject.splitlines()),
        body=text_body,
        to=[to],
    )
    message.attach_alternative(html_body, "text/html")
    if idempotency_key is None:
        return message.send()
    claimed = sent_emails.claim(key=idempotency_key, to=to, subject=subject, template=template)
    if claimed is None:
        return 0
    message.extra_headers["Message-ID"] = claimed.message_id
    with sent_emails.sending(claimed):
        sent = message.send()
    return sent
