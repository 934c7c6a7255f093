"""Cart writes. (Placeholder bodies; the cart work fills them in.)"""

from accounts.models import User


def merge_guest_cart(*, guest_cart_id: int | None, user: User) -> None:
    """Move a guest cart's items into the user's cart after they sign in (capped at stock)."""
    return None
