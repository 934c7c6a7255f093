"""Session hygiene: ending a user's other sessions, and how long a session may last."""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F

from accounts.models import User
from project.audit import services as audit


def revoke_other_sessions(*, user: User) -> User:
    """End every session of the user signed in so far (their auth hash stops matching);
    the caller re-keys its own session with update_session_auth_hash to keep it.
    Records auth.sessions_revoked."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
        user.refresh_from_db(fields=["session_epoch"])
        audit.record("auth.sessions_revoked", actor=user, target=user)
    return user


SIGNED_IN_AT_KEY = "signed_in_at"
LAST_SEEN_KEY = "last_seen_at"


def start_session_clocks(sender, request, user, **kwargs) -> None:
    """At sign-in: the absolute lifetime counts from now, and so does the idle one."""
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[SIGNED_IN_AT_KEY] = now
        request.session[LAST_SEEN_KEY] = now


@dataclass(frozen=True)
class Lifetime:
    max_age: int  # seconds from sign-in
    idle_timeout: int  # seconds without a request


def lifetime_for(*, user: User) -> Lifetime:
    """Staff sessions are short; everyone else's shorter than Django's 14 days."""
    if user.is_staff:
        return Lifetime(settings.STAFF_SESSION_MAX_AGE, settings.STAFF_SESSION_IDLE_TIMEOUT)
    return Lifetime(settings.SESSION_MAX_AGE, settings.SESSION_IDLE_TIMEOUT)
