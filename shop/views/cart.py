"""Placeholder views; the cart work replaces this module."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _placeholder(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    return render(request, "base.html")


cart_detail = add_to_cart = update_cart_item = remove_cart_item = _placeholder
