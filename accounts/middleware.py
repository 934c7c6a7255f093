"""Ends a signed-in session that is too old or has been idle too long (accounts.sessions)."""

import time
from collections.abc import Callable

from django.contrib import auth, messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django_htmx.http import HttpResponseClientRedirect

from accounts import sessions

LAST_SEEN_KEY = sessions.LAST_SEEN_KEY
# Writing the session on every request would cost a database write each time; the idle
# clock only needs this resolution.
LAST_SEEN_RESOLUTION = 60
IDLE_MESSAGE = "You were signed out because you were inactive for a while. Sign in again."
EXPIRED_MESSAGE = "Your session has ended because it was open for a long time. Sign in again."


class SessionLifetimeMiddleware:
    """After AuthenticationMiddleware and MessageMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ended = self._ended(request, user)
            if ended:
                auth.logout(request)
                messages.warning(request, ended)
                response = redirect_to_login(request.get_full_path())
                # django-htmx's middleware runs after this one: read the header itself.
                if request.headers.get("HX-Request") == "true":
                    return HttpResponseClientRedirect(response["Location"])
                return response
        return self.get_response(request)

    def _ended(self, request: HttpRequest, user) -> str:
        session = request.session
        now = time.time()
        lifetime = sessions.lifetime_for(user=user)
        signed_in_at = session.setdefault(sessions.SIGNED_IN_AT_KEY, now)
        last_seen = session.get(LAST_SEEN_KEY, now)
        if now - signed_in_at > lifetime.max_age:
            return EXPIRED_MESSAGE
        if now - last_seen > lifetime.idle_timeout:
            return IDLE_MESSAGE
        if LAST_SEEN_KEY not in session or now - last_seen >= LAST_SEEN_RESOLUTION:
            session[LAST_SEEN_KEY] = now
        return ""
