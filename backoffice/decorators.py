from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render

from accounts.twofactor import flow as twofactor_flow
from backoffice.selectors import vendors as vendor_selectors
from project.db import scope
from project.http import AuthenticatedRequest
from shop.models import Vendor, VendorStatus

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def vendor_member_required(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """Signed-in members of an approved or suspended vendor only; passes that vendor to the view.

    A suspended vendor's backoffice is read-only: any write answers with a message and
    changes nothing. Membership is looked up on every request, so a removed member
    loses access on their next request.
    """

    @login_required
    @wraps(view)
    def wrapper(request: AuthenticatedRequest, *args, **kwargs) -> HttpResponseBase:
        vendor = vendor_selectors.get_vendor_for_member(user=request.user)
        if vendor is None:
            application = vendor_selectors.get_pending_application(user=request.user)
            if application is not None:  # applied, not reviewed yet: say so, not a bare 403
                context = {"application": application, "backoffice_closed": True}
                return render(request, "backoffice/onboarding/status.html", context, status=403)
            raise PermissionDenied("Only vendor members can open the backoffice.")
        if twofactor_flow.must_verify(request):  # shop owners: a verified second factor
            next_url = request.get_full_path()
            return redirect(twofactor_flow.second_step_url(user=request.user, next_url=next_url))
        if vendor.status == VendorStatus.SUSPENDED and request.method not in SAFE_METHODS:
            messages.error(request, "Your shop is suspended; the backoffice is read-only.")
            return redirect("backoffice:dashboard")
        return vendor_scoped_view(view, request, *args, vendor=vendor, **kwargs)

    return wrapper


def vendor_scoped_view(
    view, request: HttpRequest, *args, vendor: Vendor, **kwargs
) -> HttpResponseBase:
    """Run the view in one transaction whose rows are only `vendor`'s (row-level security:
    a query that forgets its vendor filter still sees and changes nothing of another shop).
    Streamed content is produced after the view returns, so it gets the same scope."""
    with transaction.atomic(), scope.vendor_scope(vendor.pk):
        response = view(request, *args, vendor=vendor, **kwargs)
    streamed = isinstance(response, StreamingHttpResponse) and not response.is_async
    if streamed and not isinstance(response, FileResponse):
        response.streaming_content = _scoped_stream(response.streaming_content, vendor.pk)
    return response


def _scoped_stream(chunks, vendor_id: int):
    with transaction.atomic(), scope.vendor_scope(vendor_id):
        yield from chunks
