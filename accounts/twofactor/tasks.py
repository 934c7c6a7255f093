"""The sign-in code email. The task makes the code itself, so no task record ever holds it."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone
from django.utils.timesince import timeuntil

from accounts.models import User
from accounts.twofactor import services
from project import emails

EMAIL_PRIORITY = 10


@task(queue_name="emails", priority=EMAIL_PRIORITY)
def send_twofactor_email_code(user_id: int) -> bool:
    """Email a fresh sign-in code (replacing any earlier one). A retry sends a new code, so the
    newest email always holds the code that works."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    code = services.issue_email_code(user=user)
    now = timezone.now()
    emails.send_templated_email(
        to=user.email,
        template="twofactor_code",
        subject="Your Bazaar sign-in code",
        context={
            "name": user.full_name,
            "code": code,
            "valid_for": timeuntil(now + timedelta(seconds=settings.TWOFACTOR_EMAIL_CODE_TTL), now),
            "tries": settings.TWOFACTOR_EMAIL_CODE_TRIES,
        },
    )
    return True
