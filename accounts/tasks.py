"""Account emails. Tasks take ids and scalars, re-read the database and skip stale work."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.tasks import task
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.timesince import timeuntil

from accounts import exports, tokens
from accounts.models import User
from project import emails

# Critical work (payments) runs above emails, analytics below.
EMAIL_PRIORITY = 10
ANALYTICS_PRIORITY = -10


def _valid_for(seconds: int) -> str:
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=seconds), now)


@task(queue_name="emails", priority=EMAIL_PRIORITY, takes_context=True)
def send_verification_email(
    context, user_id: int, base_url: str | None = None, idempotency_key: str | None = None
) -> bool:
    """Email a fresh verification link; does nothing if the user is gone or already verified.

    An event handler passes a key of its own (one email per event, however often the event
    is delivered); otherwise one email per enqueued task.
    """
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or user.is_verified:
        return False
    path = reverse("accounts:verify", kwargs={"token": tokens.make_verification_token(user)})
    emails.send_templated_email(
        to=user.email,
        template="verify_email",
        idempotency_key=idempotency_key or emails.task_email_key(context, "verify_email"),
        subject="Verify your email address",
        context={
            "name": user.full_name,
            "verify_url": emails.absolute_url(path, base_url=base_url),
            "valid_for": _valid_for(settings.EMAIL_VERIFICATION_MAX_AGE),
        },
    )
    return True


@task(queue_name="emails", priority=EMAIL_PRIORITY, takes_context=True)
def send_registration_attempt_email(context, user_id: int, base_url: str | None = None) -> bool:
    """Tell an account owner that someone tried to register with their address."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    emails.send_templated_email(
        to=user.email,
        template="registration_attempt",
        idempotency_key=emails.task_email_key(context, "registration_attempt"),
        subject="Someone tried to register with your email address",
        context={
            "name": user.full_name,
            "login_url": emails.absolute_url(reverse("accounts:login"), base_url=base_url),
            "reset_url": emails.absolute_url(reverse("accounts:password_reset"), base_url=base_url),
        },
    )
    return True


@task(queue_name="emails", priority=EMAIL_PRIORITY, takes_context=True)
def send_password_reset_email(context, user_id: int, base_url: str | None = None) -> bool:
    """Email a password-reset link whose token is made here, never carried in the task's
    arguments (task records are stored and shown to staff). A retry makes a fresh token; the
    ones already sent stay valid until the password changes or PASSWORD_RESET_TIMEOUT."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.has_usable_password():
        return False
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("accounts:password_reset_confirm", kwargs={"uidb64": uidb64, "token": token})
    emails.send_templated_email(
        to=user.email,
        template="password_reset",
        idempotency_key=emails.task_email_key(context, "password_reset"),
        subject="Reset your Bazaar password",
        context={
            "name": user.full_name,
            "reset_url": emails.absolute_url(path, base_url=base_url),
            "valid_for": _valid_for(settings.PASSWORD_RESET_TIMEOUT),
        },
    )
    return True


@task(queue_name="analytics", priority=ANALYTICS_PRIORITY, takes_context=True)
def build_data_export(context, export_id: int, base_url: str | None = None) -> bool:
    """Build a requested personal data export and email its link to its owner."""
    try:
        export = exports.build_data_export(export_id=export_id, base_url=base_url)
    except Exception as exc:
        if context.attempt >= settings.TASK_MAX_ATTEMPTS:
            exports.mark_failed(export_id=export_id, error=exc.__class__.__name__)
        raise
    return export is not None


@task(queue_name="analytics", priority=ANALYTICS_PRIORITY)
def purge_expired_exports() -> int:
    """Delete the files of data exports past DATA_EXPORT_TTL (marked expired)."""
    return exports.purge_expired_exports()


def enqueue_export_purge() -> None:
    """Called every 15 minutes by Django-Q2's scheduler (see the background app's schedules)."""
    purge_expired_exports.enqueue()


@task(queue_name="emails", priority=EMAIL_PRIORITY, takes_context=True)
def send_login_unlock_email(context, user_id: int, base_url: str | None = None) -> bool:
    """Email the owner of an account under attack a link that unlocks sign-in in one browser.

    The link's token is made here, never carried in the task's arguments.
    """
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    path = reverse("accounts:login_unlock", kwargs={"token": tokens.make_login_unlock_token(user)})
    emails.send_templated_email(
        to=user.email,
        template="login_unlock",
        idempotency_key=emails.task_email_key(context, "login_unlock"),
        subject="Unlock sign-in to your Bazaar account",
        context={
            "name": user.full_name,
            "unlock_url": emails.absolute_url(path, base_url=base_url),
            "valid_for": _valid_for(tokens.LOGIN_UNLOCK_MAX_AGE),
            "reset_url": emails.absolute_url(reverse("accounts:password_reset"), base_url=base_url),
        },
    )
    return True
