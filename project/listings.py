"""Filtered, paginated list pages: one URL answers with the page, or (to htmx) with the
list fragment alone while the address bar follows what is on screen."""

from collections.abc import Iterable, Iterator
from functools import cached_property

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import push_url

from project.http import HtmxRequest

# A list never counts further than this: beyond it the page says "more than 1,000" and
# offers the first 1,000 (every OFFSET stays below it, so no page reads a million rows).
# Counting 10,000 rows of a million-product catalogue took 60-80 ms; 1,000, a tenth of it.
COUNT_LIMIT = 1_000
# Page links around the current page and at each end; the rest are elided.
LINKS_EACH_SIDE = 2
LINKS_AT_ENDS = 1


class CappedPaginator(Paginator):
    """A paginator for lists that may be huge (the catalogue): it counts at most
    `count_limit` + 1 rows, in a LIMIT subquery, and offers pages up to `count_limit` rows
    deep. `is_capped` says there were more.

    The count leaves out the list's ordering unless `count_in_order` says an index gives
    that order, so that the count's scan can stop after its rows (the selector knows which)."""

    def __init__(
        self,
        object_list,
        per_page: int,
        *,
        count_limit: int | None = None,
        count_in_order: bool = False,
    ) -> None:
        super().__init__(object_list, per_page)
        self.count_limit = COUNT_LIMIT if count_limit is None else count_limit
        self.count_in_order = count_in_order

    @cached_property
    def counted(self) -> int:
        """The number of rows, or `count_limit` + 1 when there are more."""
        rows = self.object_list
        if isinstance(rows, QuerySet):
            if not self.count_in_order:
                # An order no index gives would sort every row, and changes nothing here.
                rows = rows.order_by()
            return rows.values("pk")[: self.count_limit + 1].count()
        return min(len(rows), self.count_limit + 1)

    @cached_property
    def count(self) -> int:
        return min(self.counted, self.count_limit)

    @property
    def is_capped(self) -> bool:
        return self.counted > self.count_limit


def page_links(page: Page) -> Iterator[int | None]:
    """The page numbers to link to around `page`: the first, the last and a few on each side
    of the current one, None where numbers are left out (any paginator's pages)."""
    for number in page.paginator.get_elided_page_range(
        page.number, on_each_side=LINKS_EACH_SIDE, on_ends=LINKS_AT_ENDS
    ):
        yield number if isinstance(number, int) else None


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
