"""Signed, expiring email-verification tokens (no database row needed)."""

from django.core import signing
from django.utils.crypto import salted_hmac

from accounts.models import User

VERIFY_EMAIL_SALT = "accounts.verify-email"


def make_verification_token(user: User) -> str:
    """A TimestampSigner token binding the user id to the address being verified."""
    return signing.dumps({"user": user.pk, "email": user.email}, salt=VERIFY_EMAIL_SALT)


def read_verification_token(token: str, *, max_age: int) -> dict:
    """The token's payload; raises signing.SignatureExpired or signing.BadSignature."""
    payload = signing.loads(token, salt=VERIFY_EMAIL_SALT, max_age=max_age)
    if not isinstance(payload, dict) or "user" not in payload or "email" not in payload:
        raise signing.BadSignature("Unexpected verification payload.")
    return payload


LOGIN_UNLOCK_SALT = "accounts.login-unlock"
LOGIN_UNLOCK_MAX_AGE = 60 * 60


def _password_fingerprint(user: User) -> str:
    # A new password makes older unlock links worthless.
    return salted_hmac(LOGIN_UNLOCK_SALT, user.password, algorithm="sha256").hexdigest()[:16]


def make_login_unlock_token(user: User) -> str:
    """A link token letting the account's owner unlock sign-in in the browser that opens it."""
    payload = {"user": user.pk, "pw": _password_fingerprint(user)}
    return signing.dumps(payload, salt=LOGIN_UNLOCK_SALT)


def read_login_unlock_token(token: str) -> User | None:
    """The active user the token was made for, or None (bad, expired or outdated token)."""
    try:
        payload = signing.loads(token, salt=LOGIN_UNLOCK_SALT, max_age=LOGIN_UNLOCK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), int):
        return None
    user = User.objects.filter(pk=payload["user"], is_active=True).first()
    if user is None or payload.get("pw") != _password_fingerprint(user):
        return None
    return user
