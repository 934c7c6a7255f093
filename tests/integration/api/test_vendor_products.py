"""The vendor API's products: a cursor-paged list of the vendor's own, create, read with an
ETag, and change with If-Match, refused when the product changed since it was read."""

from decimal import Decimal

import pytest

from backoffice.services import products as product_services
from shop.models import Product, StockAdjustment, StockReason
from shop.services import stock as stock_services
from tests import factories
from tests.integration.api.vendor_calls import get, send

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/vendor/products"


def product_path(product: Product) -> str:
    return f"{PRODUCTS}/{product.pk}"


def walk(client, user, query):
    """Every page of the product list: (ids in order, number of pages)."""
    ids, pages, cursor = [], 0, None
    while True:
        body = get(client, PRODUCTS, user, {**query, **({"cursor": cursor} if cursor else {})})
        body = body.json()
        ids += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages


def test_lists_only_the_vendors_own_products_newest_first(api_client, api_world):
    more = [factories.ProductFactory(vendor=api_world.a.vendor) for _ in range(4)]
    factories.ProductFactory(vendor=api_world.b.vendor)

    response = get(api_client, PRODUCTS, api_world.a.member)

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == sorted(
        [p.pk for p in [api_world.a.product, *more]], reverse=True
    )
    assert body["next_cursor"] is None
    first = body["items"][-1]
    assert first == {
        "id": api_world.a.product.pk,
        "name": "Lamp a",
        "slug": api_world.a.product.slug,
        "category": api_world.a.product.category.slug,
        "description": api_world.a.product.description,
        "price": "19.99",
        "stock": 10,
        "is_active": True,
        "version": 1,
        "created_at": first["created_at"],
        "updated_at": first["updated_at"],
    }


def test_cursor_pages_neither_repeat_nor_skip_when_products_arrive_between_pages(
    api_client, api_world
):
    vendor, member = api_world.a.vendor, api_world.a.member
    for _ in range(6):
        factories.ProductFactory(vendor=vendor)
    expected = list(
        Product.objects.filter(vendor=vendor).order_by("-pk").values_list("pk", flat=True)
    )

    first = get(api_client, PRODUCTS, member, {"limit": 3}).json()
    factories.ProductFactory(vendor=vendor)  # newer than every page: not in this walk
    rest, pages = walk(api_client, member, {"limit": 3, "cursor": first["next_cursor"]})

    assert [item["id"] for item in first["items"]] + rest == expected
    assert pages == 2


def test_list_query_count_does_not_grow_with_the_page(
    api_client, api_world, django_assert_max_num_queries
):
    for _ in range(30):
        factories.ProductFactory(vendor=api_world.a.vendor)

    with django_assert_max_num_queries(7):
        response = get(api_client, PRODUCTS, api_world.a.member, {"limit": 30})

    assert len(response.json()["items"]) == 30


def test_filters_by_activity_and_words(api_client, api_world):
    vendor, member = api_world.a.vendor, api_world.a.member
    hidden = factories.ProductFactory(vendor=vendor, name="Brass Candle", is_active=False)
    factories.ProductFactory(vendor=vendor, name="Brass Bell")

    inactive = get(api_client, PRODUCTS, member, {"active": "false"}).json()
    candles = get(api_client, PRODUCTS, member, {"q": "brass candle"}).json()

    assert [item["id"] for item in inactive["items"]] == [hidden.pk]
    assert [item["id"] for item in candles["items"]] == [hidden.pk]


def test_a_forged_cursor_is_a_400_problem(api_client, api_world):
    response = get(api_client, PRODUCTS, api_world.a.member, {"cursor": "12"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "cursor", "message": "Invalid cursor."}]


def test_creates_a_product_with_its_location_etag_and_initial_stock(api_client, api_world):
    category = api_world.a.product.category
    body = {"name": " Desk Lamp ", "category": category.slug, "price": "24.50", "stock": 4}

    response = send(api_client, "POST", PRODUCTS, api_world.a.member, body)

    assert response.status_code == 201
    product = Product.objects.get(name="Desk Lamp")
    assert (product.vendor, product.category, product.price, product.stock) == (
        api_world.a.vendor,
        category,
        Decimal("24.50"),
        4,
    )
    assert response["Location"] == product_path(product)
    assert response["ETag"] == f'"{product.version}"'
    assert response.json()["version"] == product.version
    assert response.json()["price"] == "24.50"
    adjustment = StockAdjustment.objects.get(product=product)
    assert (adjustment.change, adjustment.reason) == (4, StockReason.RECEIVED)
    assert get(api_client, response["Location"], api_world.a.member)["ETag"] == response["ETag"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "price": "5.00"}, "name"),
        ({"name": "Mug", "price": "0.00"}, "price"),
        ({"name": "Mug", "price": "1.234"}, "price"),
        ({"name": "Mug", "price": "5.00", "stock": -1}, "stock"),
        ({"name": "Mug", "price": "5.00", "category": "no-such-category"}, "category"),
        ({"name": "Mug", "price": "5.00", "vendor": 1}, "vendor"),
    ],
)
def test_create_refuses_bad_input_with_field_errors_and_creates_nothing(
    api_client, api_world, body, field
):
    body = {"category": api_world.a.product.category.slug, **body}
    before = Product.objects.count()

    response = send(api_client, "POST", PRODUCTS, api_world.a.member, body)

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert Product.objects.count() == before


def test_reads_a_product_with_its_version_as_etag(api_client, api_world):
    response = get(api_client, product_path(api_world.a.product), api_world.a.member)

    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    assert response.json()["name"] == "Lamp a"


def test_another_vendors_product_is_not_found(api_client, api_world):
    response = get(api_client, product_path(api_world.b.product), api_world.a.member)

    assert response.status_code == 404
    assert "Lamp b" not in response.content.decode()


def test_change_without_if_match_is_refused_with_428(api_client, api_world):
    product = api_world.a.product

    response = send(api_client, "PATCH", product_path(product), api_world.a.member, {"price": "1"})

    assert response.status_code == 428
    assert response.json()["type"].endswith("/if-match-required")
    product.refresh_from_db()
    assert (product.price, product.version) == (Decimal("19.99"), 1)


def test_change_changes_only_what_is_sent_and_bumps_the_version(api_client, api_world):
    product = api_world.a.product

    response = send(
        api_client,
        "PATCH",
        product_path(product),
        api_world.a.member,
        {"name": "Floor Lamp", "price": "49.00"},
        HTTP_IF_MATCH='"1"',
    )

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    product.refresh_from_db()
    assert (product.name, product.price, product.version) == ("Floor Lamp", Decimal("49.00"), 2)
    assert product.description == "A fine thing, made with care."
    assert product.is_active is True


def test_change_based_on_a_stale_read_is_refused_with_the_current_version(api_client, api_world):
    product = api_world.a.product
    # The backoffice's list edit changes the price meanwhile: the version moves on.
    product_services.update_price_and_stock(
        vendor=api_world.a.vendor,
        product_id=product.pk,
        price=Decimal("21.00"),
        stock=10,
        expected_stock=10,
        acting_user=api_world.a.member,
    )

    response = send(
        api_client,
        "PATCH",
        product_path(product),
        api_world.a.member,
        {"price": "15.00"},
        HTTP_IF_MATCH='"1"',
    )

    assert response.status_code == 412
    assert response["ETag"] == '"2"'
    assert response.json()["errors"] == [
        {"field": "If-Match", "message": 'The current ETag is "2".'}
    ]
    product.refresh_from_db()
    assert (product.price, product.version) == (Decimal("21.00"), 2)


@pytest.mark.parametrize(("body", "field"), [({"stock": 3}, "stock"), ({"price": "-1"}, "price")])
def test_change_refuses_bad_input_and_changes_nothing(api_client, api_world, body, field):
    product = api_world.a.product

    response = send(
        api_client, "PATCH", product_path(product), api_world.a.member, body, HTTP_IF_MATCH='"1"'
    )

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]
    product.refresh_from_db()
    assert (product.stock, product.price, product.version) == (10, Decimal("19.99"), 1)


def test_a_malformed_if_match_is_a_400(api_client, api_world):
    response = send(
        api_client,
        "PATCH",
        product_path(api_world.a.product),
        api_world.a.member,
        {"price": "5.00"},
        HTTP_IF_MATCH="*",
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "If-Match"


def test_every_backoffice_write_of_a_product_moves_its_version(api_world):
    vendor, member, product = api_world.a.vendor, api_world.a.member, api_world.a.product

    stock_services.adjust_stock(
        product_id=product.pk,
        vendor=vendor,
        change=2,
        reason=StockReason.RECEIVED,
        acting_user=member,
    )
    product_services.set_products_active(
        vendor=vendor, product_ids=[product.pk], active=False, acting_user=member
    )
    product_services.update_product(
        vendor=vendor,
        product_id=product.pk,
        acting_user=member,
        name="Lamp",
        category=product.category,
        price=product.price,
    )

    product.refresh_from_db()
    assert product.version == 4
