"""The revocation list of access tokens, in Redis (the cache named by
`API_REVOCATION_CACHE`): a token's id (`jti`) after a logout, a family's id after a logout or
a refresh token's reuse, each kept until the access tokens it names have expired anyway.

Every API request checks it (one MGET). When Redis cannot be reached the check falls back to
the database, which holds every revoked family (api.RefreshToken.revoked_at): every access
token a sign-in hands out carries its family, and every revocation (logout, reuse, changed
credentials) revokes a family, so the fallback refuses exactly what the list would. An access
token without a family (none is handed out by the API) cannot be checked there and is
refused: the fallback fails closed. A logout whose list write fails changes nothing and
answers 503 (`Unavailable`), so a logout never half-happens.
"""

import datetime
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.utils import timezone

from api import tokens
from api.models import RefreshToken

logger = logging.getLogger(__name__)

PREFIX = "api:revoked:"


class Unavailable(Exception):  # noqa: N818 - a state, like RateLimited
    """The revocation list could not be written."""


def _cache() -> BaseCache:
    return caches[settings.API_REVOCATION_CACHE]


def _token_key(token_id: str) -> str:
    return f"{PREFIX}jti:{token_id}"


def _family_key(family: str) -> str:
    return f"{PREFIX}fam:{family}"


def _seconds_until(until: datetime.datetime) -> int:
    return max(1, int((until - timezone.now()).total_seconds()) + 1)


def revoke(*, token_id: str, families: Iterable[str], until: datetime.datetime) -> None:
    """List a token and families as revoked until `until`; Unavailable if Redis refuses."""
    entries = {_token_key(token_id): 1, **{_family_key(family): 1 for family in families}}
    try:
        _cache().set_many(entries, timeout=_seconds_until(until))
    except Exception as exc:  # noqa: BLE001 - any failure of the cache server
        raise Unavailable("The revocation list cannot be written right now.") from exc


def revoke_family_quietly(*, family: str, until: datetime.datetime) -> None:
    """After a family's rows are revoked (committed): list it too. If Redis is away the rows
    still refuse its refresh tokens; its access tokens are refused by the database check while
    Redis is away, and may live out their 15 minutes if it comes back without the entry."""
    try:
        _cache().set(_family_key(family), 1, timeout=_seconds_until(until))
    except Exception:  # noqa: BLE001
        logger.warning("Could not list revoked API token family %s", family, exc_info=True)


async def is_revoked(claims: tokens.Claims) -> bool:
    keys = [_token_key(claims.token_id)]
    if claims.family:
        keys.append(_family_key(claims.family))
    try:
        found = await _cache().aget_many(keys)
    except Exception:  # noqa: BLE001
        logger.warning("Revocation list unreachable; checking the database", exc_info=True)
        if not claims.family:
            return True
        return await RefreshToken.objects.filter(
            family=claims.family, revoked_at__isnull=False
        ).aexists()
    return bool(found)
