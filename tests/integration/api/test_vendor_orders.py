"""The vendor API's orders: only the vendor's part (its lines, its totals) of paid orders,
filtered and cursor-paged; shipping through the backoffice's service (the shopper emailed)
and cancelling a line (stock back, refund requested)."""

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from shop.models import (
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Refund,
    Shipment,
    StockAdjustment,
    StockReason,
)
from tests import factories
from tests.integration.api.vendor_calls import get, paid_order, send

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/vendor/orders"


@pytest.fixture
def mug(api_world):
    return factories.ProductFactory(
        vendor=api_world.a.vendor, name="Stoneware Mug", price=Decimal("12.00"), stock=10
    )


@pytest.fixture
def shared_order(api_world, mug):
    """A paid order holding vendor A's mug (3) and lamp (1) and vendor B's lamp (1)."""
    return paid_order((mug, 3), (api_world.a.product, 1), (api_world.b.product, 1))


def line_of(order: Order, product: Product) -> OrderLine:
    return order.lines.get(product=product)


def test_lists_the_vendors_part_of_each_order_only(api_client, api_world, mug, shared_order):
    response = get(api_client, ORDERS, api_world.a.member)

    assert response.status_code == 200
    body = response.json()
    assert [o["id"] for o in body["items"]] == [shared_order.pk, api_world.a.order.pk]
    part = body["items"][0]
    assert [line["product_name"] for line in part["lines"]] == ["Stoneware Mug", "Lamp a"]
    assert (part["subtotal"], part["item_count"]) == ("55.99", 4)
    assert (part["status"], part["fulfilment"], part["number"]) == (
        "paid",
        "to_ship",
        shared_order.number,
    )
    assert part["ship_to"]["city"] == "Berlin"
    assert "Lamp b" not in response.content.decode()


def test_orders_awaiting_payment_are_not_listed(api_client, api_world, mug):
    unpaid = factories.OrderFactory(status=OrderStatus.PENDING_PAYMENT)
    factories.OrderLineFactory(order=unpaid, product=mug)

    body = get(api_client, ORDERS, api_world.a.member).json()

    assert [o["id"] for o in body["items"]] == [api_world.a.order.pk]


def test_filters_by_fulfilment_state_and_date(api_client, api_world, mug, shared_order):
    old = paid_order((mug, 1))
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=40))
    shipped = paid_order((mug, 1))
    shipped.lines.update(status=LineStatus.SHIPPED)
    Order.objects.filter(pk=shipped.pk).update(status=OrderStatus.SHIPPED)
    last_month = str(timezone.localdate() - datetime.timedelta(days=30))
    member = api_world.a.member

    recent = get(api_client, ORDERS, member, {"date_from": last_month}).json()
    to_ship = get(api_client, ORDERS, member, {"state": "to_ship", "date_from": last_month})
    done = get(api_client, ORDERS, member, {"state": "shipped"}).json()
    older = get(api_client, ORDERS, member, {"date_to": last_month}).json()

    assert old.pk not in [o["id"] for o in recent["items"]]
    assert [o["id"] for o in to_ship.json()["items"]] == [shared_order.pk, api_world.a.order.pk]
    assert [o["id"] for o in done["items"]] == [shipped.pk]
    assert [o["id"] for o in older["items"]] == [old.pk]


def test_a_bad_filter_is_a_field_error(api_client, api_world):
    response = get(api_client, ORDERS, api_world.a.member, {"state": "lost"})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["state"]


def test_cursor_pages_cover_every_order_once_in_a_constant_number_of_queries(
    api_client, api_world, mug, django_assert_max_num_queries
):
    for _ in range(11):
        paid_order((mug, 1), (api_world.a.product, 2))
    expected = list(
        Order.objects.filter(lines__vendor=api_world.a.vendor)
        .distinct()
        .order_by("-pk")
        .values_list("pk", flat=True)
    )
    seen, cursor = [], None
    for _ in range(3):
        with django_assert_max_num_queries(8):
            query = {"limit": 5, **({"cursor": cursor} if cursor else {})}
            body = get(api_client, ORDERS, api_world.a.member, query).json()
        seen += [o["id"] for o in body["items"]]
        cursor = body["next_cursor"]

    assert cursor is None
    assert seen == expected


def test_reads_one_order_with_its_shipments(api_client, api_world, mug, shared_order):
    factories.ShipmentFactory(order=shared_order, vendor=api_world.b.vendor)

    response = get(api_client, f"{ORDERS}/{shared_order.pk}", api_world.a.member)

    assert response.status_code == 200
    assert len(response.json()["lines"]) == 2
    assert response.json()["shipments"] == []  # vendor B's shipment is not A's business


def test_another_vendors_order_is_not_found(api_client, api_world):
    response = get(api_client, f"{ORDERS}/{api_world.b.order.pk}", api_world.a.member)

    assert response.status_code == 404


def test_ships_the_vendors_pending_lines_and_emails_the_shopper(
    api_client, api_world, mug, shared_order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(
            api_client,
            "POST",
            f"{ORDERS}/{shared_order.pk}/ship",
            api_world.a.member,
            {"carrier": " DHL ", "tracking_number": "JJD000123"},
        )

    assert response.status_code == 200
    shipment = Shipment.objects.get(order=shared_order)
    assert (shipment.vendor, shipment.carrier, shipment.shipped_by) == (
        api_world.a.vendor,
        "DHL",
        api_world.a.member,
    )
    assert response.json()["shipments"] == [
        {
            "id": shipment.pk,
            "carrier": "DHL",
            "tracking_number": "JJD000123",
            "shipped_at": response.json()["shipments"][0]["shipped_at"],
        }
    ]
    assert response.json()["fulfilment"] == "shipped"
    assert line_of(shared_order, mug).status == LineStatus.SHIPPED
    assert line_of(shared_order, api_world.b.product).status == LineStatus.PENDING
    assert Order.objects.get(pk=shared_order.pk).status == OrderStatus.PAID  # B still ships
    assert [m.to for m in mail.outbox] == [[shared_order.customer.email]]
    assert "JJD000123" in mail.outbox[0].body


def test_ships_only_the_chosen_lines(api_client, api_world, mug, shared_order):
    chosen = line_of(shared_order, mug)

    response = send(
        api_client,
        "POST",
        f"{ORDERS}/{shared_order.pk}/ship",
        api_world.a.member,
        {"carrier": "DHL", "tracking_number": "J1", "line_ids": [chosen.pk]},
    )

    assert response.status_code == 200
    assert line_of(shared_order, mug).status == LineStatus.SHIPPED
    assert line_of(shared_order, api_world.a.product).status == LineStatus.PENDING


def test_shipping_another_vendors_line_is_refused_and_ships_nothing(
    api_client, api_world, mug, shared_order
):
    theirs = line_of(shared_order, api_world.b.product)

    response = send(
        api_client,
        "POST",
        f"{ORDERS}/{shared_order.pk}/ship",
        api_world.a.member,
        {"carrier": "DHL", "tracking_number": "J1", "line_ids": [theirs.pk]},
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["line_ids"]
    assert not Shipment.objects.exists()
    assert set(shared_order.lines.values_list("status", flat=True)) == {LineStatus.PENDING}


def test_shipping_twice_is_a_conflict(api_client, api_world):
    path = f"{ORDERS}/{api_world.a.order.pk}/ship"
    body = {"carrier": "DHL", "tracking_number": "J1"}
    send(api_client, "POST", path, api_world.a.member, body)

    response = send(api_client, "POST", path, api_world.a.member, body)

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert Shipment.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tracking_number": "J1"}, "carrier"),
        ({"carrier": "  ", "tracking_number": "J1"}, "carrier"),
        ({"carrier": "DHL", "tracking_number": "J" * 81}, "tracking_number"),
    ],
)
def test_shipping_needs_a_carrier_and_a_tracking_number(api_client, api_world, body, field):
    response = send(
        api_client, "POST", f"{ORDERS}/{api_world.a.order.pk}/ship", api_world.a.member, body
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not Shipment.objects.exists()


def test_cancelling_a_line_returns_stock_and_requests_a_refund(
    api_client, api_world, mug, shared_order, django_capture_on_commit_callbacks
):
    line = line_of(shared_order, mug)

    with django_capture_on_commit_callbacks(execute=True):
        response = send(
            api_client,
            "POST",
            f"{ORDERS}/{shared_order.pk}/lines/{line.pk}/cancel",
            api_world.a.member,
            {"reason": "Glaze cracked in the kiln"},
        )

    assert response.status_code == 200
    cancelled = next(item for item in response.json()["lines"] if item["id"] == line.pk)
    assert (cancelled["status"], cancelled["cancel_reason"]) == (
        "cancelled",
        "Glaze cracked in the kiln",
    )
    assert (response.json()["subtotal"], response.json()["item_count"]) == ("19.99", 1)
    mug.refresh_from_db()
    assert (mug.stock, mug.version) == (13, 2)  # the stock is back and the ETag moved
    adjustment = StockAdjustment.objects.get(product=mug)
    assert (adjustment.change, adjustment.reason) == (3, StockReason.RETURN)
    refund = Refund.objects.get()
    assert (refund.vendor, refund.amount, list(refund.lines.all())) == (
        api_world.a.vendor,
        Decimal("36.00"),
        [line],
    )
    assert [m.to for m in mail.outbox] == [[shared_order.customer.email]]


def test_cancelling_a_shipped_line_is_a_conflict(api_client, api_world):
    OrderLine.objects.filter(pk=api_world.a.line.pk).update(status=LineStatus.SHIPPED)
    path = f"{ORDERS}/{api_world.a.order.pk}/lines/{api_world.a.line.pk}/cancel"

    response = send(api_client, "POST", path, api_world.a.member, {"reason": "Lost"})

    assert response.status_code == 409
    assert not Refund.objects.exists()


def test_cancelling_another_vendors_line_is_not_found(api_client, api_world, shared_order):
    theirs = line_of(shared_order, api_world.b.product)
    path = f"{ORDERS}/{shared_order.pk}/lines/{theirs.pk}/cancel"

    response = send(api_client, "POST", path, api_world.a.member, {"reason": "Not mine"})

    assert response.status_code == 404
    assert OrderLine.objects.get(pk=theirs.pk).status == LineStatus.PENDING
    assert not Refund.objects.exists()


def test_cancelling_needs_a_reason(api_client, api_world):
    path = f"{ORDERS}/{api_world.a.order.pk}/lines/{api_world.a.line.pk}/cancel"

    response = send(api_client, "POST", path, api_world.a.member, {"reason": " "})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["reason"]
    assert OrderLine.objects.get(pk=api_world.a.line.pk).status == LineStatus.PENDING
