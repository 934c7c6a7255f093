"""API sign-ins: the token pairs handed out, their rotation and their revocation.

A sign-in (`start_session`) starts a *family*: one refresh token row, and an access token
carrying the family's id. `rotate` exchanges a refresh token for a new pair, once: the old
row is marked used and the new one names it as parent. A used refresh token presented
again means two parties hold the family (a stolen token): the whole family is revoked and
every access token carrying it dies at its next request. `end_session` (logout) revokes
the family and lists the access token's id as revoked until it expires.

The revocation list is Redis (api.revocation); the database rows are the truth it is a fast
copy of, see `api.revocation` for what happens when Redis is away.
"""

import datetime
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import User
from api import revocation, tokens
from api.models import RefreshToken
from project import housekeeping
from project.audit import services as audit
from project.errors import DomainError


class RefreshRefused(DomainError):
    """The refresh token cannot be exchanged; `code` says why (shown to the client)."""

    code = "bad-refresh-token"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_claims: tokens.Claims
    refresh_claims: tokens.Claims


def _issue_pair(*, user: User, family: str, parent: RefreshToken | None) -> TokenPair:
    refresh, refresh_claims = tokens.issue_refresh_token(user=user, family=family)
    access, access_claims = tokens.issue_access_token(user=user, family=family)
    RefreshToken.objects.create(
        token_id=refresh_claims.token_id,
        family=family,
        parent=parent,
        user=user,
        expires_at=refresh_claims.expires_at,
        token_hash=tokens.digest(refresh),
    )
    return TokenPair(access, refresh, access_claims, refresh_claims)


def start_session(*, user: User) -> TokenPair:
    """A new family for a user whose credentials (and second factor) were checked; records
    auth.login (via the API)."""
    with transaction.atomic():
        pair = _issue_pair(user=user, family=uuid.uuid4().hex, parent=None)
        audit.record("auth.login", actor=user, target=user, metadata={"via": "api"})
    return pair


def rotate(*, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair, once. Locks the token's row. A reused token
    revokes its family and records api.refresh_token_reused; a token of a user whose password
    changed (or who signed out everywhere) revokes its family too (committed, then refused)."""
    try:
        claims = tokens.decode(refresh_token, token_type=tokens.REFRESH)
    except tokens.InvalidToken:
        raise RefreshRefused("The refresh token is not valid or has expired.") from None
    refusal = None
    with transaction.atomic():
        row = (
            RefreshToken.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(token_id=claims.token_id, family=claims.family or "")
            .first()
        )
        if row is None or not constant_time_compare(row.token_hash, tokens.digest(refresh_token)):
            raise RefreshRefused("The refresh token is not valid or has expired.")
        user = row.user
        if row.revoked_at is not None:
            raise RefreshRefused("This sign-in has ended; sign in again.", code="revoked")
        if row.used_at is not None:
            revoke_family(family=row.family)
            audit.record(
                "api.refresh_token_reused", actor=user, target=user, metadata={"family": row.family}
            )
            refusal = RefreshRefused(
                "This refresh token was used already; every token of this sign-in is revoked.",
                code="refresh-token-reused",
            )
        elif not user.is_active or not constant_time_compare(claims.stamp, tokens.stamp(user)):
            # A changed password or "sign out everywhere" ends API sign-ins too.
            revoke_family(family=row.family)
            refusal = RefreshRefused("This sign-in has ended; sign in again.", code="revoked")
        else:
            row.used_at = timezone.now()
            row.save(update_fields=["used_at"])
            pair = _issue_pair(user=user, family=row.family, parent=row)
    if refusal is not None:
        raise refusal  # after the commit: the revocation stands
    return pair


def revoke_family(*, family: str) -> int:
    """Revoke every live refresh token of a family (all descendants of its sign-in) and list
    the family on the revocation list for an access token's lifetime (listing early is
    harmless: the caller commits the rows). Returns how many rows were revoked."""
    revoked = RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    until = timezone.now() + datetime.timedelta(seconds=settings.API_ACCESS_TOKEN_SECONDS)
    revocation.revoke_family_quietly(family=family, until=until)
    return revoked


def end_session(*, user: User, access: tokens.Claims, refresh_token: str | None = None) -> None:
    """Logout: revoke the access token's family (and a refresh token's, if one of the user's
    is sent) and list the access token as revoked until it expires. Raises
    revocation.Unavailable (nothing changed) when the list cannot be written."""
    families = {access.family} if access.family else set()
    if refresh_token:
        try:
            claims = tokens.decode(refresh_token, token_type=tokens.REFRESH)
        except tokens.InvalidToken:
            claims = None
        if claims is not None and claims.user_id == user.pk and claims.family:
            families.add(claims.family)
    with transaction.atomic():
        for family in sorted(families):
            RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
        # Written before the commit: if Redis refuses, the rows roll back and the client is
        # told to try again, so a logout never half-happens.
        revocation.revoke(token_id=access.token_id, families=families, until=access.expires_at)


def purge_expired_refresh_tokens(*, dry_run: bool = False) -> int:
    """Delete refresh-token rows expired more than a day ago (a reused expired token is
    refused by its signature's expiry alone). For the daily housekeeping schedule."""
    cutoff = timezone.now() - datetime.timedelta(days=1)
    return housekeeping.delete_in_batches(
        RefreshToken.objects.filter(expires_at__lt=cutoff), dry_run=dry_run
    )
