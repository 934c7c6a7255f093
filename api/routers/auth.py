"""Tokens: exchange an email and password (and the one-time code, for an account with two
factors) for an access token and a refresh token; rotate the refresh token; log out; ask
who a token belongs to."""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from accounts import ratelimit as login_limits
from accounts.models import User
from accounts.twofactor import selectors as twofactor_selectors
from accounts.twofactor import services as twofactor_services
from api import auth, revocation
from api.errors import ApiError, problems
from api.selectors import keys as key_selectors
from api.services import sessions
from backoffice.selectors import vendors as vendor_selectors
from project.client_ip import client_ip

router = Router(tags=["auth"])


class TokenRequest(Schema):
    email: str = Field(max_length=254)
    password: str = Field(max_length=4096)
    otp: str | None = Field(None, max_length=64, description="The two-factor code, if enabled")


class RefreshRequest(Schema):
    refresh_token: str = Field(max_length=4096)


class LogoutRequest(Schema):
    refresh_token: str | None = Field(None, max_length=4096)


class TokenPair(Schema):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class VendorRole(Schema):
    id: int
    slug: str
    name: str
    role: str  # "owner" or "staff"; "api_key" for a key


class WhoAmI(Schema):
    user_id: int
    email: str
    credential: str  # "access" (a person's token) or "api_key"
    roles: list[str]  # of "shopper", "vendor", "staff"
    vendor: VendorRole | None
    can_write: bool


def _pair(pair: sessions.TokenPair) -> TokenPair:
    return TokenPair(
        access_token=pair.access_token,
        expires_in=settings.API_ACCESS_TOKEN_SECONDS,
        refresh_token=pair.refresh_token,
        refresh_expires_in=settings.API_REFRESH_TOKEN_SECONDS,
    )


def _sign_in(request: HttpRequest, payload: TokenRequest) -> sessions.TokenPair:
    """The HTML sign-in's checks, in order: limits and password (the backend), then the
    second factor for an account that has one."""
    user = authenticate(request, email=payload.email, password=payload.password)
    if user is None:
        refusal: login_limits.LoginRefused | None = getattr(request, "login_refusal", None)
        if refusal is not None and refusal.retry_after:
            raise ApiError(
                429,
                refusal.message,
                code="rate-limited",
                headers={"Retry-After": str(refusal.retry_after)},
            )
        if refusal is not None:
            raise ApiError(403, refusal.message, code="unlock-required")
        raise ApiError(401, "The email or password is not right.", code="bad-credentials")
    assert isinstance(user, User)
    if twofactor_selectors.is_enabled(user=user):
        if not payload.otp:
            raise ApiError(
                401, "This account uses two-factor: send `otp` as well.", code="otp-required"
            )
        try:
            twofactor_services.verify_second_factor(
                user=user, code=payload.otp, client_address=client_ip(request)
            )
        except twofactor_services.InvalidCode as exc:
            raise ApiError(401, exc.message, code="bad-otp") from None
    elif twofactor_selectors.is_required(user=user):
        raise ApiError(
            403,
            "Staff and shop owners must set up two-factor (in the shop) before using the API.",
            code="twofactor-setup-required",
        )
    return sessions.start_session(user=user)


@router.post(
    "/token",
    auth=None,
    summary="Sign in: an access token and a refresh token",
    response={200: TokenPair, **problems(401, 403, 422, 429)},
)
async def obtain_token(request: HttpRequest, payload: TokenRequest) -> TokenPair:
    return _pair(await sync_to_async(_sign_in)(request, payload))


@router.post(
    "/refresh",
    auth=None,
    summary="Exchange a refresh token (once) for a new pair",
    response={200: TokenPair, **problems(401, 422)},
)
async def refresh_token(request: HttpRequest, payload: RefreshRequest) -> TokenPair:
    try:
        pair = await sync_to_async(sessions.rotate)(refresh_token=payload.refresh_token)
    except sessions.RefreshRefused as exc:
        raise ApiError(401, exc.message, code=exc.code) from None
    return _pair(pair)


@router.post(
    "/logout",
    summary="Log out: revoke this sign-in's tokens",
    response={204: None, **problems(401, 403, 422, 503)},
)
async def logout(request: HttpRequest, payload: LogoutRequest | None = None) -> HttpResponse:
    who = auth.principal(request)
    if who.claims is None:
        raise ApiError(403, "API keys are revoked in the backoffice.", code="forbidden")
    try:
        await sync_to_async(sessions.end_session)(
            user=who.user,
            access=who.claims,
            refresh_token=payload.refresh_token if payload else None,
        )
    except revocation.Unavailable:
        raise ApiError(
            503, "Logout could not be completed; try again.", code="revocation-unavailable"
        ) from None
    return HttpResponse(status=204)


def _whoami(who: auth.Principal) -> WhoAmI:
    user = who.user
    vendor_role = None
    if who.kind == "api_key" and who.key_vendor_id is not None:
        key_vendor = key_selectors.get_key_vendor(vendor_id=who.key_vendor_id)
        vendor_role = VendorRole(
            id=key_vendor.pk, slug=key_vendor.slug, name=key_vendor.name, role="api_key"
        )
        roles = ["vendor"]
    else:
        vendor = vendor_selectors.get_vendor_for_member(user=user)
        if vendor is not None:
            vendor_role = VendorRole(
                id=vendor.pk,
                slug=vendor.slug,
                name=vendor.name,
                role=vendor.member_role,  # type: ignore[attr-defined]
            )
        roles = ["shopper"]
        if vendor_role is not None:
            roles.append("vendor")
        if user.is_staff:
            roles.append("staff")
    return WhoAmI(
        user_id=user.pk,
        email=user.email,
        credential=who.kind,
        roles=roles,
        vendor=vendor_role,
        can_write=who.can_write,
    )


@router.get(
    "/whoami",
    summary="Who this token or key belongs to, and their roles",
    response={200: WhoAmI, **problems(401)},
)
async def whoami(request: HttpRequest) -> WhoAmI:
    return await sync_to_async(_whoami)(auth.principal(request))
