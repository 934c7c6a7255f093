"""Signed, expiring team-invitation tokens: the invitation row holds the state, the link its id."""

from datetime import timedelta

from django.core import signing

from shop.models import VendorInvitation

INVITATION_SALT = "vendor-invitation"
INVITATION_MAX_AGE = timedelta(days=7)


def make_invitation_token(invitation: VendorInvitation) -> str:
    return signing.dumps({"invitation": invitation.pk}, salt=INVITATION_SALT)


def read_invitation_token(token: str) -> int:
    """The invitation id; raises signing.SignatureExpired or signing.BadSignature."""
    payload = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE)
    if not isinstance(payload, dict) or not isinstance(payload.get("invitation"), int):
        raise signing.BadSignature("Unexpected invitation payload.")
    return payload["invitation"]
