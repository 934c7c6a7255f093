from django.http import HttpRequest

from shop.selectors import cart as cart_selectors


def cart_summary(request: HttpRequest) -> dict[str, int]:
    """The header badge's item count, on every page."""
    return {"cart_count": cart_selectors.count_cart_items(request=request)}
