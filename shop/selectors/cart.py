from django.http import HttpRequest


def count_cart_items(*, request: HttpRequest) -> int:
    return 0
