from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from backoffice.selectors import vendors as vendor_selectors


def backoffice_vendor(request: HttpRequest) -> dict[str, object]:
    """The vendor whose backoffice the signed-in user may open (looked up only when used)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"backoffice_vendor": None}
    return {
        "backoffice_vendor": SimpleLazyObject(
            lambda: vendor_selectors.get_vendor_for_member(user=user)
        )
    }
