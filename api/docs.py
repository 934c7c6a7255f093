"""The interactive docs at /api/v1/docs: Swagger UI served from our own static files (the
vendored swagger-ui-dist), under the site's nonce CSP like every other page.

Who may see the docs and the OpenAPI document: everyone when API_DOCS_PUBLIC is on (the
default outside production); otherwise signed-in staff (their browser session), and a visitor
gets 404, as if there were no docs.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI
from ninja.openapi.docs import DocsBase


class SwaggerUnderCsp(DocsBase):
    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        context = {
            "api": api,
            "swagger_settings": {"url": self.get_openapi_url(api, kwargs), "deepLinking": True},
        }
        return render(request, "api/docs.html", context)


def docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The docs_decorator of the API: public docs, or staff only (see the module docstring)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.API_DOCS_PUBLIC:
            user = getattr(request, "user", None)
            if user is None or not (user.is_active and user.is_staff):
                raise Http404("No API docs here.")
        return view(request, *args, **kwargs)

    return wrapper
