from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from backoffice.selectors import team as team_selectors
from backoffice.selectors import vendors as vendor_selectors


def backoffice_vendor(request: HttpRequest) -> dict[str, object]:
    """The vendor whose backoffice the signed-in user may open (looked up only when used)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"backoffice_vendor": None, "backoffice_is_owner": False}
    vendor = SimpleLazyObject(lambda: vendor_selectors.get_vendor_for_member(user=user))
    return {
        "backoffice_vendor": vendor,
        # Owners see the shop's Activity (its part of the audit log) in the backoffice menu.
        "backoffice_is_owner": SimpleLazyObject(
            lambda: bool(vendor) and team_selectors.is_owner(vendor=vendor, user=user)
        ),
    }
