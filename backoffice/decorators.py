from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from backoffice.selectors import vendors as vendor_selectors
from shop.models import VendorStatus

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def vendor_member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in members of an approved or suspended vendor only; passes that vendor to the view.

    A suspended vendor's backoffice is read-only: any write answers with a message and
    changes nothing. Membership is looked up on every request, so a removed member
    loses access on their next request.
    """

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        vendor = vendor_selectors.get_vendor_for_member(user=request.user)
        if vendor is None:
            raise PermissionDenied("Only vendor members can open the backoffice.")
        if vendor.status == VendorStatus.SUSPENDED and request.method not in SAFE_METHODS:
            messages.error(request, "Your shop is suspended; the backoffice is read-only.")
            return redirect("backoffice:dashboard")
        return view(request, *args, vendor=vendor, **kwargs)

    return wrapper
