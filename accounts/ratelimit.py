"""Sign-in limits that slow attackers without locking the owner out.

Checked where authentication happens (accounts.backends), so every sign-in path shares one
count (/admin/login/ signs nobody in itself: it sends staff to the shop's form). Three
counts of failed sign-ins, in the shared cache:

- per (account, client address): `login_account_address`, 10 per 15 minutes. A guesser at one
  address is stopped; the owner at another address is not affected.
- per client address: `login_address`, 50 per 15 minutes, across all accounts (one address
  trying many accounts).
- per account: `login_account`, 20 per hour from anywhere (many addresses, one account). Past
  it the account is not locked: a browser the owner has unlocked (an emailed link sets a
  signed cookie there) signs in as usual; any other browser is told that sign-in needs that
  link, and when its password was right the link is emailed (one every 5 minutes at most).
  The answer is the same whether the password was right or wrong, so it tells an attacker
  nothing. A browser that completes a sign-in (password, and second factor where required)
  is remembered the same way, so the owner's usual browsers never meet the rule.

A refusal is stashed on the request as `request.login_refusal` (a LoginRefused) for the form
that asked to show; the backend then raises PermissionDenied so no other backend is tried.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from accounts import tasks
from accounts.models import User
from project import ratelimit
from project.audit import services as audit
from project.client_ip import client_ip

UNLOCK_COOKIE = "login_unlock"  # "__Host-login_unlock" where cookies are Secure (production)
UNLOCK_COOKIE_SALT = "accounts.login-unlock-cookie"
UNLOCK_COOKIE_MAX_AGE = 30 * 24 * 3600
UNLOCK_REQUIRED_MESSAGE = (
    "This account has had many failed sign-in attempts, so signing in from a new browser "
    "needs an unlock link. If the password you entered is right, we have emailed one to the "
    "account's address: open it, then sign in again."
)


@dataclass(frozen=True)
class LoginRefused:
    message: str
    retry_after: int | None = None  # seconds, for a rate limit; None for "needs unlock link"


def _email_digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _account_address_key(email: str, address: str) -> str:
    return f"{_email_digest(email)}|{address}"


def check_allowed(*, request: HttpRequest, email: str) -> LoginRefused | None:
    """A refusal when this address has used up its attempts (nothing is counted)."""
    address = client_ip(request)
    try:
        ratelimit.peek("login_address", address)
        ratelimit.peek("login_account_address", _account_address_key(email, address))
    except ratelimit.RateLimited as exc:
        return LoginRefused(exc.message, exc.retry_after)
    return None


def needs_unlock(*, request: HttpRequest, email: str) -> bool:
    """True while the account is under attack and this browser has not been unlocked."""
    limit, _ = ratelimit.rule("login_account")
    if ratelimit.count("login_account", _email_digest(email)) < limit:
        return False
    return not is_unlocked(request=request, email=email)


def record_failure(*, request: HttpRequest, email: str) -> None:
    """Count a failed sign-in; when a count reaches its limit, audit auth.locked_out."""
    address = client_ip(request)
    counted = [
        ("login_account_address", _account_address_key(email, address)),
        ("login_address", address),
        ("login_account", _email_digest(email)),
    ]
    for bucket, key in counted:
        limit, window = ratelimit.rule(bucket)
        try:
            count = ratelimit.hit(bucket, key)
        except ratelimit.RateLimited:
            continue  # already tripped and audited
        if count == limit:
            _audit_locked_out(email=email, bucket=bucket, window=window)


def _audit_locked_out(*, email: str, bucket: str, window: int) -> None:
    user = User.objects.filter(email__iexact=email).first()
    metadata = {"limit": bucket, "window_seconds": window}
    if user is None:
        metadata["email_hash"] = _email_digest(email)[:16]
    with transaction.atomic():
        audit.record("auth.locked_out", target=user, metadata=metadata)


def record_success(*, request: HttpRequest, email: str) -> None:
    """The right password from this address forgives this address's failures on the account.

    The account-wide count stays: an attacker elsewhere is still at work.
    """
    ratelimit.reset("login_account_address", _account_address_key(email, client_ip(request)))


def send_unlock_link(*, request: HttpRequest, user: User) -> None:
    """Email the owner an unlock link, at most one per `login_unlock_email` window."""
    try:
        ratelimit.hit("login_unlock_email", str(user.pk))
    except ratelimit.RateLimited:
        return
    base_url = request.build_absolute_uri("/")
    transaction.on_commit(
        partial(tasks.send_login_unlock_email.enqueue, user_id=user.pk, base_url=base_url)
    )


def unlock_cookie_name() -> str:
    # The __Host- prefix (Secure, Path=/, no Domain) keeps a sibling subdomain from setting it.
    return f"__Host-{UNLOCK_COOKIE}" if settings.SESSION_COOKIE_SECURE else UNLOCK_COOKIE


def is_unlocked(*, request: HttpRequest, email: str) -> bool:
    value = request.COOKIES.get(unlock_cookie_name(), "")
    if not value:
        return False
    try:
        digests = signing.loads(value, salt=UNLOCK_COOKIE_SALT, max_age=UNLOCK_COOKIE_MAX_AGE)
    except signing.BadSignature:
        return False
    return isinstance(digests, list) and _email_digest(email) in digests


def unlock_browser(*, request: HttpRequest, response: HttpResponse, user: User) -> None:
    """Remember in this browser (signed cookie, 30 days) that the account's owner unlocked it."""
    digests = []
    value = request.COOKIES.get(unlock_cookie_name(), "")
    if value:
        try:
            loaded = signing.loads(value, salt=UNLOCK_COOKIE_SALT, max_age=UNLOCK_COOKIE_MAX_AGE)
            digests = [d for d in loaded if isinstance(d, str)] if isinstance(loaded, list) else []
        except signing.BadSignature:
            digests = []
    digest = _email_digest(user.email)
    digests = [d for d in digests if d != digest][-4:] + [digest]
    response.set_cookie(
        unlock_cookie_name(),
        signing.dumps(digests, salt=UNLOCK_COOKIE_SALT),
        max_age=UNLOCK_COOKIE_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


class RememberSignedInBrowserMiddleware:
    """Give a browser that completed a sign-in in this request the unlock cookie for its user.

    After AuthenticationMiddleware. Sign-ins are POSTs (the password form, the second-factor
    step); a GET never signs anyone in here, so only POSTs look at the session.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return self.get_response(request)
        before = request.session.get(SESSION_KEY)
        response = self.get_response(request)
        after = request.session.get(SESSION_KEY)
        user = getattr(request, "user", None)
        if after and after != before and user is not None and user.is_authenticated:
            unlock_browser(request=request, response=response, user=user)
        return response
