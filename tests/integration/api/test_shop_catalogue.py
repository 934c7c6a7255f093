"""The catalogue over the API: what anyone (no token) sees, as the shop's pages show it."""

from decimal import Decimal

import pytest

from shop.models import VendorStatus
from tests import factories

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/catalogue/products"


@pytest.fixture
def lamps():
    lighting = factories.CategoryFactory(name="Lighting", slug="lighting")
    garden = factories.CategoryFactory(name="Garden", slug="garden")
    oak = factories.ProductFactory(
        name="Oak desk lamp", category=lighting, price=Decimal("49.90"), stock=3
    )
    brass = factories.ProductFactory(name="Brass floor lamp", category=lighting, stock=0)
    hose = factories.ProductFactory(name="Garden hose", category=garden)
    return {"lighting": lighting, "oak": oak, "brass": brass, "hose": hose}


def test_lists_visible_products_newest_first_with_money_as_strings(
    client, lamps, django_assert_max_num_queries
):
    factories.ProductFactory(name="Withdrawn lamp", is_active=False)
    factories.ProductFactory(name="Pending lamp", vendor__status=VendorStatus.PENDING)

    with django_assert_max_num_queries(2):
        response = client.get(PRODUCTS)

    assert response.status_code == 200
    body = response.json()
    assert [item["name"] for item in body["items"]] == [
        "Garden hose",
        "Brass floor lamp",
        "Oak desk lamp",
    ]
    oak = body["items"][2]
    assert oak["price"] == "49.90"
    assert oak["stock"] == 3
    assert oak["in_stock"] is True
    assert oak["category"] == {"id": lamps["lighting"].pk, "name": "Lighting", "slug": "lighting"}
    assert body["count"] == 3
    assert body["more_than_count"] is False
    assert body["next_page"] is None


def test_searches_as_the_shop_does_and_filters_by_category(client, lamps):
    found = client.get(PRODUCTS, {"q": "lamp"}).json()
    assert {item["name"] for item in found["items"]} == {"Oak desk lamp", "Brass floor lamp"}

    in_stock = client.get(PRODUCTS, {"q": "lamp", "in_stock": "true"}).json()
    assert [item["name"] for item in in_stock["items"]] == ["Oak desk lamp"]

    garden = client.get(PRODUCTS, {"category": "garden"}).json()
    assert [item["name"] for item in garden["items"]] == ["Garden hose"]


def test_corrects_a_misspelt_search_that_matched_nothing(client, lamps):
    body = client.get(PRODUCTS, {"q": "lanp"}).json()

    assert body["spelling"] == "lamp"
    assert {item["name"] for item in body["items"]} == {"Oak desk lamp", "Brass floor lamp"}


def test_pages_through_the_listing(client, lamps, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        first = client.get(PRODUCTS, {"per_page": 2}).json()
    second = client.get(PRODUCTS, {"per_page": 2, "page": first["next_page"]}).json()
    beyond = client.get(PRODUCTS, {"per_page": 2, "page": 9}).json()

    assert [item["name"] for item in first["items"]] == ["Garden hose", "Brass floor lamp"]
    assert first["next_page"] == 2
    assert [item["name"] for item in second["items"]] == ["Oak desk lamp"]
    assert second["next_page"] is None
    assert beyond["items"] == []


def test_refuses_an_unknown_category_and_bad_filters_with_field_errors(client, lamps):
    unknown = client.get(PRODUCTS, {"category": "nope"})
    bad = client.get(PRODUCTS, {"per_page": 0, "sort": "cheapest"})

    assert unknown.status_code == 422
    assert unknown["Content-Type"] == "application/problem+json"
    assert unknown.json()["errors"] == [
        {"field": "category", "message": "No category with this slug."}
    ]
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {"per_page", "sort"}


def test_shows_one_product_by_id_or_slug(client, lamps):
    oak = lamps["oak"]

    by_id = client.get(f"{PRODUCTS}/{oak.pk}")
    by_slug = client.get(f"{PRODUCTS}/{oak.slug}")

    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.json() == by_slug.json()
    assert by_id.json()["description"] == oak.description
    assert by_id.json()["version"] == 1


def test_a_hidden_product_is_not_found(client):
    withdrawn = factories.ProductFactory(is_active=False)
    suspended = factories.ProductFactory(vendor__status=VendorStatus.SUSPENDED)

    for product in (withdrawn, suspended):
        for ref in (product.pk, product.slug):
            response = client.get(f"{PRODUCTS}/{ref}")
            assert response.status_code == 404
            assert response.json()["type"].endswith("/not-found")


def test_lists_categories_by_name(client, lamps, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        response = client.get("/api/v1/catalogue/categories")

    assert [category["slug"] for category in response.json()] == ["garden", "lighting"]
