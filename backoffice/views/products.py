"""Placeholder views; the backoffice work replaces this module."""

from django.http import HttpRequest, HttpResponse


def _placeholder(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    return HttpResponse("Not built yet.", status=501)


product_list = product_create = product_bulk = product_export = product_import = product_edit = (
    product_inline_edit
) = _placeholder
