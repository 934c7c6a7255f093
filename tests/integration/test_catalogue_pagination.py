"""Pagination of a large catalogue: counted only up to a limit, page links elided, every
offered page (the deepest too) served, the shared component unchanged for other lists."""

import re
from decimal import Decimal

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from project import listings
from shop.models import Product
from shop.selectors import catalogue as catalogue_selectors
from tests import factories

pytestmark = pytest.mark.django_db

LIST_URL = reverse("shop:product_list")
PAGE_SIZE = 24


@pytest.fixture
def many_products():
    """30 pages of visible products and a few hidden ones."""
    vendor, category = factories.VendorFactory(), factories.CategoryFactory()
    Product.objects.bulk_create(
        Product(
            vendor=vendor,
            category=category,
            name=f"Widget {n}",
            slug=f"widget-{n}",
            price=Decimal("5.00"),
            stock=3,
            is_active=n % 50 != 0,
        )
        for n in range(30 * PAGE_SIZE + 20)
    )


def _page_links(content: str) -> list[str]:
    nav = re.search(r'<nav class="pagination".*?</nav>', content, re.S).group(0)
    return re.findall(r'aria-label="Page (\d+)"|aria-current="page">(\d+)<|(…)', nav)


def _shown(content: str) -> list[str]:
    nav = re.search(r'<nav class="pagination".*?</nav>', content, re.S).group(0)
    return ["".join(match) for match in _page_links(nav)]


def test_a_listing_larger_than_the_limit_is_counted_only_up_to_it(
    client, many_products, monkeypatch
):
    monkeypatch.setattr(listings, "COUNT_LIMIT", 100)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL)

    content = response.content.decode()
    assert "More than <strong>100</strong> products" in content
    counts = [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()]
    assert len(counts) == 1
    # The count reads at most limit + 1 rows: a LIMIT inside it, in the listing's order (an
    # index gives it, so the scan stops after those rows).
    assert "LIMIT 101" in counts[0]
    assert 'ORDER BY "shop_product"."created_at" DESC' in counts[0]
    assert _shown(content) == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("params", "in_order"),
    [
        ({"sort": "price_asc"}, True),
        ({"in_stock": "on"}, True),
        ({"category": "widgets"}, True),
        ({"category": "widgets", "sort": "price_desc"}, False),
        ({"vendor": "widget-works"}, False),
        ({"min_price": "1"}, False),
    ],
)
def test_a_count_is_read_in_the_listing_order_only_where_an_index_gives_it(
    client, params, in_order
):
    vendor = factories.VendorFactory(slug="widget-works")
    category = factories.CategoryFactory(slug="widgets")
    factories.ProductFactory(vendor=vendor, category=category, price=Decimal("5.00"), stock=2)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, params)

    assert "<strong>1</strong> product" in response.content.decode()
    counts = [query["sql"] for query in queries if "COUNT(" in query["sql"].upper()]
    assert len(counts) == 1
    assert ("ORDER BY" in counts[0]) is in_order


def test_the_deepest_offered_page_says_there_are_more(client, many_products, monkeypatch):
    monkeypatch.setattr(listings, "COUNT_LIMIT", 100)

    # Page 5 holds products 97-100; a deeper page number shows that last page.
    for number in ("5", "200"):
        content = client.get(LIST_URL, {"page": number}).content.decode()
        assert len(re.findall(r"<h3>", content)) == 4
        assert "Only the first 100 are listed." in content
        assert '<span aria-current="page">5</span>' in content
        assert '<span aria-disabled="true">Next</span>' in content
        assert 'rel="prev"' in content


def test_page_links_are_elided_around_the_current_page(client, many_products):
    content = client.get(LIST_URL, {"page": "15"}).content.decode()

    assert _shown(content) == ["1", "…", "13", "14", "15", "16", "17", "…", "31"]
    assert "<strong>725</strong> products" in content  # 740 minus the 15 hidden
    assert "Only the first" not in content
    previous_page = re.search(r'href="([^"]+)" rel="prev"', content).group(1)
    next_page = re.search(r'href="([^"]+)" rel="next"', content).group(1)
    assert "page=14" in previous_page
    assert "page=16" in next_page


def test_the_last_page_and_a_deep_page_are_served(client, many_products):
    last = client.get(LIST_URL, {"page": "31"}).content.decode()
    deep = client.get(LIST_URL, {"page": "29"}).content.decode()

    assert len(re.findall(r"<h3>", last)) == 725 - 30 * PAGE_SIZE
    assert len(re.findall(r"<h3>", deep)) == PAGE_SIZE
    assert _shown(deep) == ["1", "…", "27", "28", "29", "30", "31"]


def test_a_broad_search_ranks_and_lists_only_its_first_matches(client, many_products, monkeypatch):
    monkeypatch.setattr(catalogue_selectors, "MATCH_LIMIT", 100)

    with CaptureQueriesContext(connection) as queries:
        content = client.get(LIST_URL, {"q": "widget", "page": "9"}).content.decode()

    assert "More than <strong>100</strong> products" in content
    assert "Only the first 100 are listed." in content
    assert '<span aria-current="page">5</span>' in content
    # One pass over the matches ranks and counts them (at most 101 rows, through the
    # document's match); the page's 24 products are then read by id.
    matching = [query["sql"] for query in queries if "@@" in query["sql"]]
    assert len(matching) == 1
    assert "ts_rank" in matching[0]
    assert "LIMIT 101" in matching[0]
    assert not [query for query in queries if "COUNT(" in query["sql"].upper()]


def test_page_links_of_a_plain_paginator_are_elided_too():
    page = Paginator(list(range(1000)), 10).page(50)

    assert list(listings.page_links(page)) == [1, None, 48, 49, 50, 51, 52, None, 100]
    assert list(listings.page_links(Paginator(list(range(30)), 10).page(2))) == [1, 2, 3]


def test_a_capped_paginator_of_a_list_counts_it():
    paginator = listings.CappedPaginator(list(range(50)), 10, count_limit=20)

    assert (paginator.count, paginator.num_pages, paginator.is_capped) == (20, 2, True)
    assert not listings.CappedPaginator(list(range(20)), 10, count_limit=20).is_capped
