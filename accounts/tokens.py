"""Signed, expiring email-verification tokens (no database row needed)."""

from django.core import signing

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
