"""Access decorators other apps use, e.g. checkout requires a verified email."""

from collections.abc import Callable
from functools import partial, wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

VERIFY_FIRST_MESSAGE = "Please verify your email address before checking out."


def verified_email_required(
    view: Callable[..., HttpResponse] | None = None, *, message: str = VERIFY_FIRST_MESSAGE
):
    """Anonymous: to the login page. Signed in but unverified: to the resend-link page.

    Use bare (`@verified_email_required`) or with the message the visitor should see,
    e.g. `@verified_email_required(message="Please verify your email address to sell.")`.
    """
    if view is None:
        return partial(verified_email_required, message=message)

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            response = redirect_to_login(request.get_full_path())
        elif not request.user.is_verified:
            messages.warning(request, message)
            response = redirect("accounts:verify_resend")
        else:
            return view(request, *args, **kwargs)
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(response["Location"])
        return response

    return wrapper
