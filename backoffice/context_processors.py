from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from backoffice.selectors import vendors as vendor_selectors


def backoffice_link(request: HttpRequest) -> dict[str, object]:
    """Whether the header links to a backoffice. The user loaded for the request
    (accounts.backends) carries the answer; a user set some other way is asked only when
    the header is rendered."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"may_open_backoffice": False}
    known = getattr(user, "may_open_backoffice", None)
    if known is not None:
        return {"may_open_backoffice": known}
    return {
        "may_open_backoffice": SimpleLazyObject(
            lambda: vendor_selectors.get_vendor_for_member(user=user) is not None
        )
    }
