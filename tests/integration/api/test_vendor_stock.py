"""The vendor API's stock batch: every item applied, or none; each item names the version it
was based on, so a sale or an edit made meanwhile is never overwritten."""

import pytest

from project.audit.models import AuditEntry
from shop.models import Product, StockAdjustment, StockReason
from shop.services import checkout, orders
from tests import factories
from tests.integration.api.vendor_calls import send

pytestmark = pytest.mark.django_db

STOCK = "/api/v1/vendor/stock"


@pytest.fixture
def shelf(api_world):
    """Vendor A's lamp (stock 10) and a vase (stock 3), both at version 1."""
    vase = factories.ProductFactory(vendor=api_world.a.vendor, name="Vase", stock=3)
    return api_world.a.product, vase


def stocks(*products: Product) -> list[tuple[int, int]]:
    return [
        tuple(Product.objects.filter(pk=p.pk).values_list("stock", "version").get())
        for p in products
    ]


def post(client, world, items, **extra):
    return send(client, "POST", STOCK, world.a.member, {"items": items, **extra})


def test_sets_absolute_stock_and_deltas_in_one_batch(api_client, api_world, shelf):
    lamp, vase = shelf

    response = post(
        api_client,
        api_world,
        [
            {"product_id": lamp.pk, "version": 1, "stock": 25},
            {"product_id": vase.pk, "version": 1, "delta": -2},
        ],
        note="Nightly sync",
    )

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {"product_id": lamp.pk, "stock": 25, "version": 2},
            {"product_id": vase.pk, "stock": 1, "version": 2},
        ]
    }
    assert stocks(lamp, vase) == [(25, 2), (1, 2)]
    adjustments = StockAdjustment.objects.filter(product__in=shelf).order_by("product_id")
    assert [(a.product_id, a.change, a.stock_after, a.reason, a.note) for a in adjustments] == [
        (lamp.pk, 15, 25, StockReason.CORRECTION, "Nightly sync"),
        (vase.pk, -2, 1, StockReason.CORRECTION, "Nightly sync"),
    ]
    assert {a.created_by for a in adjustments} == {api_world.a.member}
    assert AuditEntry.objects.filter(action="stock.changed").count() == 2


def test_an_unchanged_stock_records_nothing_and_keeps_the_version(api_client, api_world, shelf):
    lamp, _ = shelf

    response = post(api_client, api_world, [{"product_id": lamp.pk, "version": 1, "stock": 10}])

    assert response.status_code == 200
    assert response.json()["items"] == [{"product_id": lamp.pk, "stock": 10, "version": 1}]
    assert not StockAdjustment.objects.filter(product=lamp).exists()


def test_one_stale_item_refuses_the_whole_batch_with_412(api_client, api_world, shelf):
    lamp, vase = shelf
    Product.objects.filter(pk=vase.pk).update(stock=2, version=2)  # a sale meanwhile

    response = post(
        api_client,
        api_world,
        [
            {"product_id": lamp.pk, "version": 1, "stock": 30},
            {"product_id": vase.pk, "version": 1, "stock": 8},
        ],
    )

    assert response.status_code == 412
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "items.1.version",
            "message": "The product changed meanwhile: it is at version 2.",
        }
    ]
    assert stocks(lamp, vase) == [(10, 1), (2, 2)]
    assert not StockAdjustment.objects.exists()


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"delta": -11}, "items.1.delta"),  # 10 in stock
        ({"stock": 4, "delta": 1}, "items.1.stock"),
        ({}, "items.1.stock"),
    ],
)
def test_an_impossible_item_refuses_the_whole_batch_with_422(
    api_client, api_world, shelf, item, field
):
    lamp, vase = shelf

    response = post(
        api_client,
        api_world,
        [
            {"product_id": vase.pk, "version": 1, "stock": 9},
            {"product_id": lamp.pk, "version": 1, **item},
        ],
    )

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert stocks(lamp, vase) == [(10, 1), (3, 1)]
    assert not StockAdjustment.objects.exists()


def test_another_vendors_product_refuses_the_batch_and_stays_untouched(
    api_client, api_world, shelf
):
    lamp, _ = shelf
    theirs = api_world.b.product

    response = post(
        api_client,
        api_world,
        [
            {"product_id": lamp.pk, "version": 1, "stock": 1},
            {"product_id": theirs.pk, "version": 1, "stock": 0},
        ],
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "items.1.product_id", "message": "This product does not exist in your shop."}
    ]
    assert "Lamp b" not in response.content.decode()
    assert stocks(lamp, theirs) == [(10, 1), (10, 1)]


def test_a_product_listed_twice_refuses_the_batch(api_client, api_world, shelf):
    lamp, _ = shelf

    response = post(
        api_client,
        api_world,
        [
            {"product_id": lamp.pk, "version": 1, "stock": 1},
            {"product_id": lamp.pk, "version": 1, "delta": 1},
        ],
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["items.1.product_id"]
    assert stocks(lamp) == [(10, 1)]


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ([{"product_id": 1, "version": 1, "stock": -1}], "items.0.stock"),
        ([{"product_id": 1, "stock": 5}], "items.0.version"),
    ],
)
def test_malformed_batches_are_refused_by_field(api_client, api_world, items, field):
    response = post(api_client, api_world, items)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not StockAdjustment.objects.exists()


def test_a_stock_write_moves_the_products_etag(api_client, api_world, shelf):
    lamp, _ = shelf
    post(api_client, api_world, [{"product_id": lamp.pk, "version": 1, "delta": 5}])

    response = send(
        api_client,
        "PATCH",
        f"/api/v1/vendor/products/{lamp.pk}",
        api_world.a.member,
        {"price": "9.00"},
        HTTP_IF_MATCH='"1"',
    )

    assert response.status_code == 412
    assert response["ETag"] == '"2"'


def test_a_sale_made_since_the_read_refuses_the_sync(api_client, api_world, shelf):
    lamp, _ = shelf
    buyer = factories.UserFactory()
    cart = factories.CartFactory(user=buyer)
    factories.CartItemFactory(cart=cart, product=lamp, quantity=2)
    address = factories.AddressFactory(user=buyer)
    checkout.place_order(customer=buyer, cart=cart, address=address)

    response = post(api_client, api_world, [{"product_id": lamp.pk, "version": 1, "stock": 10}])

    assert response.status_code == 412
    assert stocks(lamp) == [(8, 2)]  # the sale is kept, not overwritten


def test_an_order_cancelled_with_its_stock_returned_moves_the_version(api_world):
    lamp = api_world.a.product

    orders.cancel_order(order=api_world.a.order, reason="Payment failed")

    assert stocks(lamp) == [(12, 2)]


def test_a_stale_batch_lists_every_refused_item(api_client, api_world, shelf):
    lamp, vase = shelf
    Product.objects.filter(pk=vase.pk).update(version=2)

    response = post(
        api_client,
        api_world,
        [
            {"product_id": lamp.pk, "version": 1, "delta": -50},
            {"product_id": vase.pk, "version": 1, "stock": 8},
        ],
    )

    assert response.status_code == 412
    assert [e["field"] for e in response.json()["errors"]] == ["items.0.delta", "items.1.version"]
    assert stocks(lamp, vase) == [(10, 1), (3, 2)]
