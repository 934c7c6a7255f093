"""Placeholder views; the catalogue work replaces this module."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _placeholder(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    return render(request, "base.html")


home = product_list = category_detail = product_detail = _placeholder
