from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from backoffice import selectors


def vendor_member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in members of an approved vendor only; passes that vendor to the view."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        vendor = selectors.get_vendor_for_member(user=request.user)
        if vendor is None:
            raise PermissionDenied("Only vendor members can open the backoffice.")
        return view(request, *args, vendor=vendor, **kwargs)

    return wrapper
