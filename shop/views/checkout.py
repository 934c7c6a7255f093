"""Placeholder views; the checkout work replaces this module."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _placeholder(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    return render(request, "base.html")


checkout_address = checkout_review = _placeholder
