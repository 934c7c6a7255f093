"""The cart over the API: the signed-in shopper's own cart, the one the shop's pages show."""

import json

import pytest

from shop.models import CartItem
from tests import factories
from tests.integration.api.conftest import bearer

pytestmark = pytest.mark.django_db

CART = "/api/v1/cart/"
ITEMS = "/api/v1/cart/items"


@pytest.fixture
def shopper():
    return factories.UserFactory(email="cart-shopper@example.com")


@pytest.fixture
def lamp():
    return factories.ProductFactory(name="Oak desk lamp", price="24.50", stock=3)


def post(client, path, body, user, method="post"):
    call = getattr(client, method)
    return call(path, json.dumps(body), content_type="application/json", **bearer(user))


def quantities(user) -> dict[int, int]:
    return dict(CartItem.objects.filter(cart__user=user).values_list("product_id", "quantity"))


def test_adds_to_the_cart_the_shop_shows_when_signed_in(client, shopper, lamp):
    response = post(client, ITEMS, {"product_id": lamp.pk, "quantity": 2}, shopper)

    assert response.status_code == 200
    assert response.json() == {
        "lines": [
            {
                "product_id": lamp.pk,
                "name": "Oak desk lamp",
                "slug": lamp.slug,
                "unit_price": "24.50",
                "quantity": 2,
                "line_total": "49.00",
                "available": True,
                "problem": "",
            }
        ],
        "count": 2,
        "total": "49.00",
        "can_check_out": True,
    }
    assert quantities(shopper) == {lamp.pk: 2}
    client.force_login(shopper)
    page = client.get("/cart/")
    assert "Oak desk lamp" in page.content.decode()


def test_adding_again_adds_to_the_line(client, shopper, lamp):
    post(client, ITEMS, {"product_id": lamp.pk, "quantity": 1}, shopper)
    response = post(client, ITEMS, {"product_id": lamp.pk, "quantity": 2}, shopper)

    assert response.json()["lines"][0]["quantity"] == 3
    assert quantities(shopper) == {lamp.pk: 3}


def test_refuses_more_than_the_stock_and_changes_nothing(client, shopper, lamp):
    post(client, ITEMS, {"product_id": lamp.pk, "quantity": 2}, shopper)

    response = post(client, ITEMS, {"product_id": lamp.pk, "quantity": 2}, shopper)

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/not-enough-stock")
    assert body["detail"] == "Only 3 left in stock. You already have 2 in your cart."
    assert quantities(shopper) == {lamp.pk: 2}


def test_refuses_a_product_not_on_sale(client, shopper):
    withdrawn = factories.ProductFactory(is_active=False)

    response = post(client, ITEMS, {"product_id": withdrawn.pk}, shopper)

    assert response.status_code == 409
    assert response.json()["type"].endswith("/product-unavailable")
    assert quantities(shopper) == {}


def test_refuses_a_bad_quantity_with_a_field_error(client, shopper, lamp):
    response = post(client, ITEMS, {"product_id": lamp.pk, "quantity": 0}, shopper)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["quantity"]
    assert quantities(shopper) == {}


def test_sets_a_quantity_and_removes_a_line(client, shopper, lamp):
    post(client, ITEMS, {"product_id": lamp.pk, "quantity": 1}, shopper)

    changed = post(client, f"{ITEMS}/{lamp.pk}", {"quantity": 3}, shopper, method="patch")
    assert changed.status_code == 200
    assert changed.json()["total"] == "73.50"
    assert quantities(shopper) == {lamp.pk: 3}

    too_many = post(client, f"{ITEMS}/{lamp.pk}", {"quantity": 4}, shopper, method="patch")
    assert too_many.status_code == 409
    assert quantities(shopper) == {lamp.pk: 3}

    removed = client.delete(f"{ITEMS}/{lamp.pk}", **bearer(shopper))
    assert removed.status_code == 200
    assert removed.json()["lines"] == []
    assert quantities(shopper) == {}

    again = client.delete(f"{ITEMS}/{lamp.pk}", **bearer(shopper))
    assert again.status_code == 404
    assert again.json()["type"].endswith("/item-not-in-cart")


def test_a_line_sold_out_since_stays_listed_as_not_orderable(
    client, shopper, lamp, django_assert_max_num_queries
):
    other = factories.ProductFactory(name="Brass lamp", stock=5)
    post(client, ITEMS, {"product_id": lamp.pk, "quantity": 2}, shopper)
    post(client, ITEMS, {"product_id": other.pk, "quantity": 1}, shopper)
    lamp.stock = 1
    lamp.save(update_fields=["stock"])

    # The bearer's user, then the cart lines with their products and vendors.
    with django_assert_max_num_queries(2):
        response = client.get(CART, **bearer(shopper))

    body = response.json()
    assert [(line["name"], line["available"], line["problem"]) for line in body["lines"]] == [
        ("Oak desk lamp", False, "Only 1 left in stock."),
        ("Brass lamp", True, ""),
    ]
    assert body["can_check_out"] is False
    assert body["total"] == "19.99"


def test_another_shoppers_cart_is_not_touched(client, shopper, lamp):
    other = factories.UserFactory()
    post(client, ITEMS, {"product_id": lamp.pk, "quantity": 1}, other)

    assert client.get(CART, **bearer(shopper)).json()["lines"] == []
    assert client.delete(f"{ITEMS}/{lamp.pk}", **bearer(shopper)).status_code == 404
    assert quantities(other) == {lamp.pk: 1}
