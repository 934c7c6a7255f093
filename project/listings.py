"""Filtered, paginated list pages: one URL answers with the page, or (to htmx) with the
list fragment alone while the address bar follows what is on screen."""

from collections.abc import Iterable

from django.core.paginator import Page
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import push_url

from project.http import HtmxRequest


def link_params(query: QueryDict, *, drop: Iterable[str] = ()) -> QueryDict:
    """The GET parameters worth keeping in links: non-empty, without the page (or `drop`)."""
    skipped = {"page", *drop}
    params = QueryDict(mutable=True)
    for key, values in query.lists():
        if key in skipped:
            continue
        kept = [value for value in values if value.strip()]
        if kept:
            params.setlist(key, kept)
    return params


def render_listing(
    request: HtmxRequest,
    *,
    template: str,
    fragment: str,
    context: dict,
    listing_url: str,
    params: QueryDict,
    page_obj: Page,
) -> HttpResponse:
    """The full page, or `template#fragment` when htmx targets the fragment's element."""
    if request.htmx and request.htmx.target == fragment:
        response = render(request, f"{template}#{fragment}", context)
        # The address bar shows the tidy URL of what is on screen, without empty fields.
        page_params = params.copy()
        if page_obj.number > 1:
            page_params["page"] = str(page_obj.number)
        query = page_params.urlencode()
        push_url(response, f"{listing_url}?{query}" if query else listing_url)
    else:
        response = render(request, template, context)
    # The same URL answers with a page or a fragment; caches must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
