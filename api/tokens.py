"""Signed JSON Web Tokens for the API: short-lived access tokens (15 minutes) and refresh
tokens (7 days), HS256 with a dedicated key chosen by `kid`, so keys can be rotated: new
tokens are signed with `API_JWT_ACTIVE_KID`, and a token signed with any key still listed in
`API_JWT_KEYS` is accepted until it expires.
"""

import datetime
import hashlib
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.utils import timezone

from accounts.models import User

ALGORITHM = "HS256"
ISSUER = "bazaar"
ACCESS = "access"
REFRESH = "refresh"


class InvalidToken(Exception):
    """The token is malformed, expired, of another type, or signed with an unknown key."""


@dataclass(frozen=True)
class Claims:
    user_id: int
    token_id: str  # jti
    token_type: str
    expires_at: datetime.datetime
    family: str | None = None  # the sign-in (refresh rotation chain) the token belongs to
    stamp: str = ""  # the user's credentials stamp when issued (see `stamp`)


def stamp(user: User) -> str:
    """Changes when the password changes or the user signs out everywhere (the session auth
    hash covers the password hash and the session epoch): a token carrying an older stamp is
    dead, like the sessions signed in before."""
    return user.get_session_auth_hash()[:22]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _keys() -> dict[str, str]:
    return settings.API_JWT_KEYS


def encode(
    *, user: User, token_type: str, lifetime: int, family: str | None = None
) -> tuple[str, Claims]:
    now = timezone.now()
    claims = Claims(
        user_id=user.pk,
        token_id=uuid.uuid4().hex,
        token_type=token_type,
        expires_at=now + datetime.timedelta(seconds=lifetime),
        family=family,
        stamp=stamp(user),
    )
    payload = {
        "iss": ISSUER,
        "sub": str(user.pk),
        "jti": claims.token_id,
        "typ": token_type,
        "iat": int(now.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "stp": claims.stamp,
    }
    if family is not None:
        payload["fam"] = family
    kid = settings.API_JWT_ACTIVE_KID
    token = jwt.encode(payload, _keys()[kid], algorithm=ALGORITHM, headers={"kid": kid})
    return token, claims


def issue_access_token(*, user: User, family: str | None = None) -> tuple[str, Claims]:
    return encode(
        user=user, token_type=ACCESS, lifetime=settings.API_ACCESS_TOKEN_SECONDS, family=family
    )


def issue_refresh_token(*, user: User, family: str) -> tuple[str, Claims]:
    return encode(
        user=user, token_type=REFRESH, lifetime=settings.API_REFRESH_TOKEN_SECONDS, family=family
    )


def decode(token: str, *, token_type: str) -> Claims:
    """The token's claims if its signature, issuer, expiry and type are right; else InvalidToken."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = _keys().get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown signing key")
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti", "typ", "stp"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if payload["typ"] != token_type:
        raise InvalidToken(f"not an {token_type} token")
    return Claims(
        user_id=int(payload["sub"]),
        token_id=payload["jti"],
        token_type=payload["typ"],
        expires_at=datetime.datetime.fromtimestamp(payload["exp"], tz=datetime.UTC),
        family=payload.get("fam"),
        stamp=str(payload["stp"]),
    )
