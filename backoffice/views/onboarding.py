"""Placeholder views; the backoffice work replaces this module."""

from django.http import HttpRequest, HttpResponse


def _placeholder(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    return HttpResponse("Not built yet.", status=501)


apply = invitation_accept = _placeholder
