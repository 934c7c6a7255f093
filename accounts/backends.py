"""The one authentication backend: Django's ModelBackend behind the sign-in limits.

Every sign-in path (the shop's form, which /admin/login/ also sends staff to, and anything
else calling authenticate() with a request) goes through here, so every failure counts and
every limit applies. See accounts.ratelimit for the scheme.
"""

from django.contrib.auth import check_password_with_timing_attack_mitigation
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import connection

from accounts import ratelimit
from accounts.models import User
from backoffice.selectors import vendors as vendor_selectors


class RateLimitedModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        email = username if username is not None else kwargs.get(User.USERNAME_FIELD)
        if request is None or email is None or password is None:
            # Not a visitor signing in (a shell, a management command): nothing to count.
            return super().authenticate(request, username=username, password=password, **kwargs)
        email = User.objects.normalize_email(str(email).strip()).lower()
        refusal = ratelimit.check_allowed(request=request, email=email)
        if refusal is not None:
            request.login_refusal = refusal
            raise PermissionDenied(refusal.message)
        user = self._check_password(email=email, password=password)
        if ratelimit.needs_unlock(request=request, email=email):
            if user is None:
                ratelimit.record_failure(request=request, email=email)
            else:
                ratelimit.send_unlock_link(request=request, user=user)
            request.login_refusal = ratelimit.LoginRefused(ratelimit.UNLOCK_REQUIRED_MESSAGE)
            raise PermissionDenied(ratelimit.UNLOCK_REQUIRED_MESSAGE)
        if user is None:
            ratelimit.record_failure(request=request, email=email)
            return None
        ratelimit.record_success(request=request, email=email)
        return user

    def get_user(self, user_id):
        """The signed-in user of a request, with `may_open_backoffice` (the header's
        "Backoffice" link, backoffice.context_processors) read in the same query."""
        users = User._default_manager.annotate(
            may_open_backoffice=vendor_selectors.may_open_backoffice()
        )
        try:
            user = users.get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    def _check_password(self, *, email: str, password: str) -> User | None:
        """ModelBackend.authenticate, handing the database connection back to the pool before
        the hash: argon2 takes a quarter of a second of CPU (more on a busy machine), and
        sign-ins holding their connections through it starved every other request of one."""
        try:
            user = User._default_manager.get_by_natural_key(email)
        except User.DoesNotExist:
            user = None
        _release_pooled_connection()
        if check_password_with_timing_attack_mitigation(user, password) and (
            self.user_can_authenticate(user)
        ):
            return user
        return None


def _release_pooled_connection() -> None:
    """Return this thread's connection to psycopg's pool (the next query takes one again).
    Only a pooled one outside a transaction: a plain connection would have to be reopened."""
    if connection.settings_dict["OPTIONS"].get("pool") and not connection.in_atomic_block:
        connection.close()
