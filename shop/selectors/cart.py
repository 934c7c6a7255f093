"""Cart reads. (Placeholder bodies; the cart work fills them in.)"""

from django.http import HttpRequest

SESSION_CART_KEY = "cart_id"


def count_cart_items(*, request: HttpRequest) -> int:
    """Total quantity in the visitor's cart, for the header badge."""
    return 0


def get_session_cart_id(*, request: HttpRequest) -> int | None:
    """The id of the guest cart this browser session holds, if any."""
    return request.session.get(SESSION_CART_KEY)
