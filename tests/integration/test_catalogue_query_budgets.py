"""Catalogue pages cost a small constant number of queries, with 10 products or 500.

Each budget is what the page itself needs plus the base layout: for a signed-in user
the user row (which also says whether to link to a backoffice), and up to CART_BADGE_QUERIES for the
header's cart badge (anonymous or signed in).
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from shop.models import Product, VendorStatus
from tests import factories

pytestmark = pytest.mark.django_db

CART_BADGE_QUERIES = 2
SIGNED_IN_QUERIES = 1  # the user, with whether they belong to a vendor
PAGE_QUERIES = {
    "home": 3,  # categories, featured, new
    "listing": 4,  # categories, vendors, count, page of products
    "category": 4,  # categories (the category is found among them), vendors, count, page
    "search": 4,  # categories, vendors, the ranked matches (ids, at most 1,001), their page
    "product": 1,  # the product with its vendor and category
}


@pytest.fixture
def shop():
    vendors = [factories.VendorFactory() for _ in range(3)]
    vendors.append(factories.VendorFactory(status=VendorStatus.SUSPENDED))
    categories = [factories.CategoryFactory(slug=f"cat-{n}") for n in range(4)]
    return {"vendors": vendors, "categories": categories}


def _add_products(shop, start: int, stop: int) -> None:
    Product.objects.bulk_create(
        Product(
            vendor=shop["vendors"][n % 4],
            category=shop["categories"][n % 4],
            name=f"Widget {n}",
            slug=f"widget-{n}",
            description="A widget for every day.",
            price=Decimal(n % 200) + Decimal("0.99"),
            stock=n % 12,
            is_active=n % 17 != 0,
        )
        for n in range(start, stop)
    )


def _url(page: str) -> str:
    return {
        "home": reverse("shop:home"),
        "listing": reverse("shop:product_list") + "?sort=price_desc&in_stock=on&page=2",
        "category": reverse("shop:category", kwargs={"slug": "cat-1"}) + "?sort=price_asc",
        "search": reverse("shop:product_list") + "?q=widget+every&min_price=1&max_price=150",
        "product": reverse("shop:product", kwargs={"slug": "widget-1"}),
    }[page]


def _measure(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("page", list(PAGE_QUERIES))
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_page_queries_stay_constant_as_the_catalogue_grows(
    client, shopper, shop, django_assert_max_num_queries, page, signed_in
):
    if signed_in:
        client.force_login(shopper)
    url = _url(page)
    _add_products(shop, 0, 10)
    client.get(url)  # warm up: session and content types load once per process

    with_ten = _measure(client, url)
    _add_products(shop, 10, 500)

    with django_assert_max_num_queries(with_ten):
        response = client.get(url)
    assert response.status_code == 200
    budget = PAGE_QUERIES[page] + CART_BADGE_QUERIES + (SIGNED_IN_QUERIES if signed_in else 0)
    assert with_ten <= budget
