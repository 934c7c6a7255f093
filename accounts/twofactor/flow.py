"""The second sign-in step's session state.

After a correct password, a user who has two-factor on (or must have it) is NOT signed in:
the session only remembers who is half-way (`PENDING_KEY`: user id, auth hash, time, where
to go next). Signing in happens once the second factor is verified: login() (a new session
id), one more new id, and the `VERIFIED_KEY` marker the admin and the backoffice ask for. A
signed-in session without the marker (a user who became staff or a shop owner while signed
in) verifies "step-up" on the same page and gets a new session id too.
"""

import time

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import urlencode

from accounts.models import User
from accounts.twofactor import selectors
from shop.selectors import cart as cart_selectors
from shop.services import cart as cart_services

PENDING_KEY = "twofactor_pending"
VERIFIED_KEY = "twofactor_verified_at"
RECOVERY_CODES_KEY = "twofactor_new_recovery_codes"


def needs_second_step(*, user: User) -> bool:
    return selectors.is_enabled(user=user) or selectors.is_required(user=user)


def begin(request: HttpRequest, *, user: User, next_url: str) -> None:
    """Remember a user whose password was right; they are not signed in yet."""
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user_id": user.pk,
        "hash": user.get_session_auth_hash(),
        "at": time.time(),
        "next": next_url,
    }


def pending_user(request: HttpRequest) -> User | None:
    """The half-signed-in user, while the password step is recent and still valid."""
    pending = request.session.get(PENDING_KEY)
    if not pending:
        return None
    if time.time() - pending.get("at", 0) > settings.TWOFACTOR_PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None
    user = User.objects.filter(pk=pending["user_id"], is_active=True).first()
    if user is None or not constant_time_compare(user.get_session_auth_hash(), pending["hash"]):
        # The password changed (or sessions were revoked) since: start again.
        request.session.pop(PENDING_KEY, None)
        return None
    return user


def pending_next(request: HttpRequest) -> str:
    return (request.session.get(PENDING_KEY) or {}).get("next", "")


def cancel(request: HttpRequest) -> None:
    request.session.pop(PENDING_KEY, None)


def sign_in(request: HttpRequest, user: User, *, second_factor: bool) -> None:
    """Sign the user in (new session id), carrying the guest cart over. With
    `second_factor`, the session id changes once more and the session is marked verified."""
    # The guest cart id lives in the session; read it before login() re-keys the session.
    guest_cart_id = cart_selectors.get_session_cart_id(request=request)
    request.session.pop(PENDING_KEY, None)
    auth.login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    if second_factor:
        mark_verified(request)
    cart_services.merge_guest_cart(guest_cart_id=guest_cart_id, user=user)


def mark_verified(request: HttpRequest) -> None:
    """A privilege change: the session gets a new id, then the verified marker."""
    request.session.cycle_key()
    request.session[VERIFIED_KEY] = time.time()


def is_verified(request: HttpRequest) -> bool:
    return bool(request.session.get(VERIFIED_KEY))


def must_verify(request: HttpRequest) -> bool:
    """A signed-in user who must use a second factor and has not in this session."""
    user = request.user
    return user.is_authenticated and not is_verified(request) and selectors.is_required(user=user)


def keep_recovery_codes_for_display(request: HttpRequest, codes: list[str]) -> None:
    request.session[RECOVERY_CODES_KEY] = codes


def take_recovery_codes_for_display(request: HttpRequest) -> list[str]:
    """The new codes, once: a reload of the page no longer shows them."""
    return request.session.pop(RECOVERY_CODES_KEY, None) or []


def second_step_url(*, user: User, next_url: str) -> str:
    """Where the password step sends a user: the code page, or set-up if they have no app."""
    name = (
        "accounts:twofactor_verify"
        if selectors.is_enabled(user=user)
        else "accounts:twofactor_enroll"
    )
    url = reverse(name)
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
