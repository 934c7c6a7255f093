"""Failed sign-in counting in the shared cache (Redis in production), per email and per IP."""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from project.client_ip import client_ip

WINDOW_SECONDS = 15 * 60


def _keys(*, email: str, request: HttpRequest) -> list[str]:
    # Hash the address so no personal data sits in cache keys.
    email_digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    ip = client_ip(request)
    return [f"login-fail:email:{email_digest}", f"login-fail:ip:{ip}"]


def is_login_blocked(*, email: str, request: HttpRequest) -> bool:
    counts = cache.get_many(_keys(email=email, request=request))
    return any(
        count >= settings.RATE_LIMITS["login_account_address"]["limit"] for count in counts.values()
    )


def record_login_failure(*, email: str, request: HttpRequest) -> None:
    for key in _keys(email=email, request=request):
        # add() starts the window; incr() is atomic in Redis, so processes share one count.
        if not cache.add(key, 1, timeout=WINDOW_SECONDS):
            try:
                cache.incr(key)
            except ValueError:
                cache.add(key, 1, timeout=WINDOW_SECONDS)


def clear_login_failures(*, email: str, request: HttpRequest) -> None:
    """A successful sign-in forgives that address's failures (the IP's count stays)."""
    cache.delete(_keys(email=email, request=request)[0])
