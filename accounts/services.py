"""Account writes: registration, verification, profile and address book."""

from functools import partial

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import events as account_events
from accounts import tasks, tokens
from accounts.models import Address, User
from project import events, ratelimit
from project.audit import services as audit
from project.errors import DomainError


class EmailAlreadyRegistered(DomainError):
    """The address has an account. Views must not tell the visitor (no enumeration)."""

    code = "email_already_registered"


class VerificationLinkExpired(DomainError):
    code = "verification_link_expired"


class VerificationLinkInvalid(DomainError):
    code = "verification_link_invalid"


class AddressNotFound(DomainError):
    code = "address_not_found"


def normalise_email(email: str) -> str:
    return User.objects.normalize_email(email.strip()).lower()


def register_user(
    *, email: str, password: str, full_name: str, base_url: str | None = None
) -> User:
    """Create an unverified shopper with an argon2 password; records UserRegistered (its
    handler emails the verification link).

    On a duplicate address nothing is created: the owner is emailed instead and
    EmailAlreadyRegistered is raised. The unique index decides, so concurrent
    registrations cannot both succeed.
    """
    email = normalise_email(email)
    user = User(email=email, full_name=full_name.strip())
    # Hash before knowing whether the address is taken, so both paths cost the same.
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            events.record(
                account_events.UserRegistered(user_id=user.pk, base_url=base_url), aggregate=user
            )
    except IntegrityError:
        existing = User.objects.filter(email__iexact=email).first()
        if existing is None:
            raise
        try:
            # At most one "someone tried to register" notice per address per window.
            ratelimit.hit("registration_notice_email", str(existing.pk))
        except ratelimit.RateLimited:
            pass
        else:
            transaction.on_commit(
                partial(
                    tasks.send_registration_attempt_email.enqueue,
                    user_id=existing.pk,
                    base_url=base_url,
                )
            )
        raise EmailAlreadyRegistered("An account with this email address already exists.") from None
    return user


def verify_email(*, token: str) -> User:
    """Mark the token's user verified (idempotent). Changes nothing on a bad or expired token."""
    try:
        payload = tokens.read_verification_token(token, max_age=settings.EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired:
        raise VerificationLinkExpired(
            "This verification link has expired. Send yourself a new one."
        ) from None
    except signing.BadSignature:
        raise VerificationLinkInvalid(
            "This verification link is not valid. Check that you copied the whole link."
        ) from None
    with transaction.atomic():
        user = (
            User.objects.select_for_update()
            .filter(pk=payload["user"], email__iexact=payload["email"], is_active=True)
            .first()
        )
        if user is None:
            # The account is gone or its address changed since the link was sent.
            raise VerificationLinkInvalid("This verification link is no longer valid.")
        if user.email_verified_at is None:
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
    return user


def resend_verification(*, user: User, base_url: str | None = None) -> bool:
    """Email a new verification link unless the address is verified already.

    Raises project.ratelimit.RateLimited past one a minute or a few a day (nothing is sent).
    """
    if user.is_verified:
        return False
    ratelimit.hit("verification_resend_minute", str(user.pk))
    ratelimit.hit("verification_resend_day", str(user.pk))
    transaction.on_commit(
        partial(tasks.send_verification_email.enqueue, user_id=user.pk, base_url=base_url)
    )
    return True


def update_profile(*, user: User, full_name: str, phone: str) -> User:
    with transaction.atomic():
        user.full_name = full_name.strip()
        user.phone = phone.strip()
        user.save(update_fields=["full_name", "phone"])
    return user


def _lock_owned_address(*, user: User, address_id: int) -> Address:
    address = Address.objects.select_for_update().filter(pk=address_id, user=user).first()
    if address is None:
        raise AddressNotFound("That address is not in your address book.")
    return address


def add_address(
    *,
    user: User,
    full_name: str,
    line1: str,
    city: str,
    postal_code: str,
    country: str,
    line2: str = "",
    phone: str = "",
    make_default: bool = False,
) -> Address:
    """Save an address; the first one (or make_default) becomes the user's default."""
    with transaction.atomic():
        locked_user = User.objects.select_for_update().get(pk=user.pk)
        address = Address.objects.create(
            user=locked_user,
            full_name=full_name,
            line1=line1,
            line2=line2,
            city=city,
            postal_code=postal_code,
            country=country.upper(),
            phone=phone,
        )
        if make_default or locked_user.default_address_id is None:
            locked_user.default_address = address
            locked_user.save(update_fields=["default_address"])
            user.default_address = address
    return address


def update_address(
    *,
    user: User,
    address_id: int,
    full_name: str,
    line1: str,
    city: str,
    postal_code: str,
    country: str,
    line2: str = "",
    phone: str = "",
    make_default: bool = False,
) -> Address:
    with transaction.atomic():
        address = _lock_owned_address(user=user, address_id=address_id)
        address.full_name = full_name
        address.line1 = line1
        address.line2 = line2
        address.city = city
        address.postal_code = postal_code
        address.country = country.upper()
        address.phone = phone
        address.save()
        if make_default:
            _set_default(user=user, address=address)
    return address


def delete_address(*, user: User, address_id: int) -> None:
    """Delete an owned address; if it was the default, the user has no default any more."""
    with transaction.atomic():
        address = _lock_owned_address(user=user, address_id=address_id)
        address.delete()
        if user.default_address_id == address_id:
            user.default_address = None


def set_default_address(*, user: User, address_id: int) -> Address:
    with transaction.atomic():
        address = _lock_owned_address(user=user, address_id=address_id)
        _set_default(user=user, address=address)
    return address


def _set_default(*, user: User, address: Address) -> None:
    User.objects.filter(pk=user.pk).update(default_address=address)
    user.default_address = address


def set_password(*, user: User, password: str, via_reset: bool) -> User:
    """Save `user`'s new password and audit it in one transaction: auth.password_reset when it
    came through an emailed reset link, else auth.password_changed."""
    with transaction.atomic():
        user.set_password(password)
        user.save()
        audit.record(
            "auth.password_reset" if via_reset else "auth.password_changed",
            actor=user,
            target=user,
        )
    return user
