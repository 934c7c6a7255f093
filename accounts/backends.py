"""The one authentication backend: Django's ModelBackend behind the sign-in limits.

Every sign-in path (the shop's form, which /admin/login/ also sends staff to, and anything
else calling authenticate() with a request) goes through here, so every failure counts and
every limit applies. See accounts.ratelimit for the scheme.
"""

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from accounts import ratelimit
from accounts.models import User


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
        user = super().authenticate(request, username=email, password=password)
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
