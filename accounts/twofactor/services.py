"""Two-factor writes: enrolment, code checks (TOTP, recovery, email), recovery codes, disabling.

TOTP codes follow RFC 6238 (30-second steps, 6 digits, one step of clock drift either way);
a device remembers the last step it accepted, so no code is ever accepted twice. Recovery
codes are stored as keyed hashes only. Email codes live in the cache for
TWOFACTOR_EMAIL_CODE_TTL seconds, allow TWOFACTOR_EMAIL_CODE_TRIES guesses and work once.
"""

import re
import secrets
import time
from functools import partial

import pyotp
from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import RecoveryCode, TotpDevice, User
from accounts.twofactor import selectors, tasks
from project import ratelimit
from project.audit import services as audit
from project.errors import DomainError

ISSUER = "Bazaar"
STEP_SECONDS = 30
DIGITS = 6
# Steps either side of now that still count (clock drift between phone and server).
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
# 10 characters of a 32-letter alphabet without look-alikes (0/O, 1/I/L): 50 random bits.
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_CODE_RE = re.compile(r"^[a-z0-9]{10}$")
TOTP_RE = re.compile(r"^[0-9]{6}$")


class TwoFactorError(DomainError):
    code = "twofactor_error"


class InvalidCode(TwoFactorError):
    code = "twofactor_invalid_code"


class AlreadyEnabled(TwoFactorError):
    code = "twofactor_already_enabled"


class NotEnabled(TwoFactorError):
    code = "twofactor_not_enabled"


class RequiredForRole(TwoFactorError):
    code = "twofactor_required"


class ConfirmationFailed(TwoFactorError):
    code = "twofactor_confirmation_failed"


def normalise_code(code: str) -> str:
    """What a person typed, without spaces, dashes and case ("123 456", "ABCDE-FGHJK")."""
    return re.sub(r"[\s-]", "", code or "").lower()


# --- TOTP ---------------------------------------------------------------------------------


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def provisioning_uri(*, device: TotpDevice) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return _totp(device.secret).provisioning_uri(name=device.user.email, issuer_name=ISSUER)


def _matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step whose code equals `code` (now, or one step either side), else None."""
    if not TOTP_RE.match(code):
        return None
    now = time.time() if now is None else now
    current = int(now // STEP_SECONDS)
    totp = _totp(secret)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if constant_time_compare(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _accept_totp(*, device: TotpDevice, code: str) -> bool:
    """Accept a code only for a step later than any accepted before (a conditional update,
    so two requests racing with the same code cannot both win)."""
    step = _matching_step(device.secret, code)
    if step is None:
        return False
    accepted = (
        TotpDevice.objects.filter(pk=device.pk)
        .filter(Q(last_used_step__isnull=True) | Q(last_used_step__lt=step))
        .update(last_used_step=step)
    )
    if accepted:
        device.last_used_step = step
    return bool(accepted)


# --- Enrolment ----------------------------------------------------------------------------


def start_enrolment(*, user: User) -> TotpDevice:
    """A fresh unconfirmed device (secret) for the user, replacing an earlier unconfirmed one.

    Refuses when an app is already set up: turning it off comes first."""
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.confirmed_at is not None:
            raise AlreadyEnabled("Two-factor sign-in is already on for your account.")
        if device is None:
            device = TotpDevice(user=user)
        device.secret = pyotp.random_base32()
        device.last_used_step = None
        device.save()
    return device


def get_pending_device(*, user: User) -> TotpDevice | None:
    """The unconfirmed device being set up, if any."""
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=True).first()


def confirm_enrolment(*, user: User, code: str) -> list[str]:
    """Turn two-factor on once the app shows a valid code; returns the new recovery codes
    (the only time they exist in clear). Records twofactor.enabled and
    twofactor.recovery_codes_generated; on a wrong code changes nothing."""
    code = normalise_code(code)
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user).first()
        if device is None:
            raise NotEnabled("Start the set-up again: no authenticator app is being set up.")
        if device.confirmed_at is not None:
            raise AlreadyEnabled("Two-factor sign-in is already on for your account.")
        if not _accept_totp(device=device, code=code):
            raise InvalidCode("That code is not right. Enter the 6-digit code your app shows now.")
        device.confirmed_at = timezone.now()
        device.save(update_fields=["confirmed_at"])
        audit.record("twofactor.enabled", actor=user, target=user)
        codes = _replace_recovery_codes(user=user)
    return codes


# --- Recovery codes -----------------------------------------------------------------------


def _hash_recovery_code(code: str) -> str:
    # The codes carry 50 random bits, so a keyed fast hash is enough: without SECRET_KEY a
    # copy of the table cannot be checked against guesses at all.
    return salted_hmac(
        "accounts.twofactor.recovery_code", normalise_code(code), algorithm="sha256"
    ).hexdigest()


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _replace_recovery_codes(*, user: User) -> list[str]:
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=_hash_recovery_code(code)) for code in codes
    )
    audit.record(
        "twofactor.recovery_codes_generated",
        actor=user,
        target=user,
        metadata={"count": len(codes)},
    )
    return codes


def regenerate_recovery_codes(*, user: User) -> list[str]:
    """Ten new recovery codes; every earlier one stops working."""
    with transaction.atomic():
        if selectors.get_confirmed_device(user=user) is None:
            raise NotEnabled("Turn on two-factor sign-in first.")
        return _replace_recovery_codes(user=user)


def _use_recovery_code(*, user: User, code: str) -> bool:
    if not RECOVERY_CODE_RE.match(code):
        return False
    used = RecoveryCode.objects.filter(
        user=user, code_hash=_hash_recovery_code(code), used_at__isnull=True
    ).update(used_at=timezone.now())
    if used:
        left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
        audit.record(
            "twofactor.recovery_code_used", actor=user, target=user, metadata={"left": left}
        )
    return bool(used)


# --- Email codes --------------------------------------------------------------------------


def _email_code_key(user_id: int) -> str:
    return f"twofactor:email-code:{user_id}"


def _email_tries_key(user_id: int) -> str:
    return f"twofactor:email-code-tries:{user_id}"


def request_email_code(*, user: User) -> None:
    """Queue an email with a 6-digit sign-in code (throttled per user: RateLimited).

    The code is made by the email task itself, so no task record ever holds it."""
    ratelimit.hit("twofactor_email_send", str(user.pk))
    with transaction.atomic():
        audit.record("twofactor.email_code_sent", actor=user, target=user)
        transaction.on_commit(partial(tasks.send_twofactor_email_code.enqueue, user_id=user.pk))


def issue_email_code(*, user: User) -> str:
    """A new email code for the user (replacing any earlier one), valid for
    TWOFACTOR_EMAIL_CODE_TTL seconds and TWOFACTOR_EMAIL_CODE_TRIES tries."""
    code = f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"
    ttl = settings.TWOFACTOR_EMAIL_CODE_TTL
    digest = salted_hmac("accounts.twofactor.email_code", code, algorithm="sha256").hexdigest()
    cache.set(_email_tries_key(user.pk), 0, timeout=ttl)
    cache.set(_email_code_key(user.pk), digest, timeout=ttl)
    return code


def _use_email_code(*, user: User, code: str) -> bool:
    if not TOTP_RE.match(code):
        return False
    key = _email_code_key(user.pk)
    expected = cache.get(key)
    if expected is None:
        return False
    try:
        tries = cache.incr(_email_tries_key(user.pk))
    except ValueError:  # the counter expired with the code
        return False
    if tries > settings.TWOFACTOR_EMAIL_CODE_TRIES:
        cache.delete(key)
        return False
    digest = salted_hmac("accounts.twofactor.email_code", code, algorithm="sha256").hexdigest()
    # delete() answers whether this request removed the key: only one request can use a code.
    return constant_time_compare(digest, expected) and bool(cache.delete(key))


def has_email_code(*, user: User) -> bool:
    return cache.get(_email_code_key(user.pk)) is not None


# --- Checking a second factor -------------------------------------------------------------


def verify_second_factor(*, user: User, code: str, client_address: str) -> str:
    """Check a code from the app, a recovery code or an emailed code; returns which one
    ("totp", "recovery_code", "email_code"). Rate-limited per user and per address
    (RateLimited); a wrong code records twofactor.failed and raises InvalidCode."""
    ratelimit.hit("twofactor_user", str(user.pk))
    ratelimit.hit("twofactor_address", client_address)
    code = normalise_code(code)
    device = selectors.get_confirmed_device(user=user)
    method = None
    if device is not None and _accept_totp(device=device, code=code):
        method = "totp"
    elif _use_recovery_code(user=user, code=code):
        method = "recovery_code"
    elif _use_email_code(user=user, code=code):
        method = "email_code"
    if method is None:
        audit.record("twofactor.failed", actor=user, target=user)
        raise InvalidCode(
            "That code is not right, or it has been used already. Check it and try again."
        )
    ratelimit.reset("twofactor_user", str(user.pk))
    return method


def confirm_identity(
    *, user: User, password: str = "", code: str = "", client_address: str
) -> None:
    """For changes to two-factor itself: the account's password or a current second-factor
    code must be given (raises ConfirmationFailed, or RateLimited)."""
    if code:
        try:
            verify_second_factor(user=user, code=code, client_address=client_address)
        except InvalidCode:
            raise ConfirmationFailed("That code is not right. Try again.") from None
        return
    ratelimit.hit("twofactor_user", str(user.pk))
    if not password or not check_password(password, user.password):
        audit.record("twofactor.failed", actor=user, target=user, metadata={"with": "password"})
        raise ConfirmationFailed("Enter your current password or a code from your app.")


def disable(*, user: User) -> None:
    """Turn two-factor off (device and recovery codes deleted); refused for staff and vendor
    owners, who must keep it. Records twofactor.disabled."""
    if selectors.is_required(user=user):
        raise RequiredForRole(
            "Two-factor sign-in is required for staff and shop owners; it cannot be turned off."
        )
    with transaction.atomic():
        deleted, _ = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).delete()
        if not deleted:
            raise NotEnabled("Two-factor sign-in is not on for your account.")
        RecoveryCode.objects.filter(user=user).delete()
        audit.record("twofactor.disabled", actor=user, target=user)


def reset_by_staff(*, user: User, acting_user: User) -> bool:
    """For a user who lost both the app and the recovery codes: staff turn two-factor off
    (the user sets it up again; staff and shop owners must, at their next sign-in). Records
    twofactor.disabled with the staff member as actor. False when it was not on."""
    with transaction.atomic():
        deleted, _ = TotpDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        if deleted:
            audit.record(
                "twofactor.disabled", actor=acting_user, target=user, metadata={"by_staff": True}
            )
    return bool(deleted)
