"""Who is calling: `Authorization: Bearer <token>` with an access token (a person: shopper,
vendor member or staff) or a vendor's API key (an integration acting for one vendor).

The bearer auth puts a `Principal` on `request.auth`. What the principal may do is decided
per endpoint by the guards below, against the database on every request (a removed vendor
member loses access with their next call, not when their token expires).
"""

from dataclasses import dataclass
from typing import Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from ninja.security import HttpBearer

from accounts.models import User
from api import revocation, tokens
from api.errors import ApiError
from api.models import ApiKeyScope
from api.selectors import keys as key_selectors
from api.services import keys as key_services
from backoffice.selectors import vendors as vendor_selectors
from shop.models import Vendor, VendorStatus


@dataclass(frozen=True)
class Principal:
    user: User
    kind: Literal["access", "api_key"]
    credential_id: str  # the access token's jti or the API key's id: rate limits, audit
    can_write: bool = True  # an API key scoped "read" cannot write
    key_vendor_id: int | None = None  # an API key acts for this vendor only
    claims: tokens.Claims | None = None  # an access token's (logout revokes them)


class BearerAuth(HttpBearer):
    """Access tokens and API keys, both as `Authorization: Bearer …`."""

    async def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        if key_services.is_api_key(token):
            return await self._api_key(token)
        try:
            claims = tokens.decode(token, token_type=tokens.ACCESS)
        except tokens.InvalidToken:
            return None
        user = await User.objects.filter(pk=claims.user_id, is_active=True).afirst()
        # The stamp: a password change or "sign out everywhere" since the token was issued.
        if user is None or not constant_time_compare(claims.stamp, tokens.stamp(user)):
            return None
        if await revocation.is_revoked(claims):
            return None
        return Principal(user=user, kind="access", credential_id=claims.token_id, claims=claims)

    async def _api_key(self, secret: str) -> Principal | None:
        key = await key_selectors.find_live_key(secret=secret)
        # The key acts for its vendor; its creator is the user on record (audit, logs).
        if key is None or key.created_by is None:
            return None
        await sync_to_async(key_services.record_use)(key=key)
        return Principal(
            user=key.created_by,
            kind="api_key",
            credential_id=str(key.pk),
            can_write=key.scope == ApiKeyScope.READ_WRITE,
            key_vendor_id=key.vendor_id,
        )


bearer = BearerAuth()


def principal(request: HttpRequest) -> Principal:
    auth = request.auth  # type: ignore[attr-defined]
    if not isinstance(auth, Principal):
        raise ApiError(401, "Send a valid access token or API key.", code="not-authenticated")
    return auth


def _require_write(who: Principal) -> None:
    if not who.can_write:
        raise ApiError(403, "This API key is read-only.", code="read-only-key")


async def shopper(request: HttpRequest, *, write: bool = False) -> User:
    """The signed-in person behind an access token (every account is a shopper). API keys
    belong to a vendor's integration, not to a shopper: 403."""
    who = principal(request)
    if who.kind != "access":
        raise ApiError(403, "Shopper endpoints need a person's access token.", code="forbidden")
    if write:
        _require_write(who)
    return who.user


async def staff(request: HttpRequest, *, write: bool = False) -> User:
    who = principal(request)
    if who.kind != "access" or not who.user.is_staff:
        raise ApiError(403, "Only marketplace staff may do this.", code="forbidden")
    return who.user


async def vendor(request: HttpRequest, *, write: bool = False) -> Vendor:
    """The vendor the caller acts for: an API key's vendor, or the access token's person's
    (looked up now). A suspended vendor may read but not write; anyone else gets 403."""
    who = principal(request)
    if who.kind == "api_key" and who.key_vendor_id is not None:
        found = await Vendor.objects.filter(
            pk=who.key_vendor_id, status__in=[VendorStatus.APPROVED, VendorStatus.SUSPENDED]
        ).afirst()
    else:
        found = await sync_to_async(vendor_selectors.get_vendor_for_member)(user=who.user)
    if found is None:
        raise ApiError(403, "Only a vendor's members and API keys may do this.", code="forbidden")
    if write:
        _require_write(who)
        if found.status == VendorStatus.SUSPENDED:
            raise ApiError(403, "Your shop is suspended; the API is read-only.", code="suspended")
    return found
