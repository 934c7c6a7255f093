"""A vendor's orders: the list and detail (its part only), shipping and cancelling lines."""

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from backoffice.selectors import orders as order_selectors
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
from shop.services import fulfilment
from shop.services import refunds as refund_services
from tests import factories
from tests.fixtures.database import SCOPE_QUERIES
from tests.fixtures.twofactor import sign_in_with_second_factor


def paid_order(*products_and_quantities, customer=None, status=OrderStatus.PAID, **order_kwargs):
    """An order with one line per (product, quantity) and a captured payment for its total."""
    customer = customer or factories.UserFactory(full_name="Sam Shopper")
    total = sum((p.price * q for p, q in products_and_quantities), Decimal("0.00"))
    order = factories.OrderFactory(customer=customer, status=status, total=total, **order_kwargs)
    for product, quantity in products_and_quantities:
        factories.OrderLineFactory(order=order, product=product, quantity=quantity)
    factories.CapturedPaymentFactory(order=order, amount=total)
    return order


@pytest.fixture
def vendor(vendor_member):
    return vendor_member.vendor_memberships.get().vendor


@pytest.fixture
def other_vendor(db):
    return factories.VendorMembershipFactory(user__email="rival@example.com").vendor


@pytest.fixture
def mug(vendor):
    return factories.ProductFactory(vendor=vendor, name="Stoneware Mug", price=Decimal("12.00"))


@pytest.fixture
def bowl(vendor):
    return factories.ProductFactory(vendor=vendor, name="Serving Bowl", price=Decimal("30.00"))


@pytest.fixture
def lamp(other_vendor):
    return factories.ProductFactory(vendor=other_vendor, name="Brass Lamp", price=Decimal("80.00"))


def _line(order, product):
    return order.lines.get(product=product)


def _state(order):
    """Everything a fulfilment write may touch, for nothing-changed assertions."""
    return (
        Order.objects.get(pk=order.pk).status,
        sorted(order.lines.values_list("id", "status", "shipment_id", "cancel_reason")),
        Shipment.objects.filter(order=order).count(),
        sorted(Product.objects.values_list("id", "stock")),
        StockAdjustment.objects.count(),
        Refund.objects.filter(order=order).count(),
    )


# --- Services: shipping ----------------------------------------------------------------


def test_shipping_ships_only_this_vendors_pending_lines_and_emails_the_shopper(
    vendor, vendor_member, mug, bowl, lamp, django_capture_on_commit_callbacks
):
    order = paid_order((mug, 2), (bowl, 1), (lamp, 1))

    with django_capture_on_commit_callbacks(execute=True):
        shipment = fulfilment.ship_vendor_lines(
            order=order,
            vendor=vendor,
            carrier=" DHL ",
            tracking_number="JJD000123",
            acting_user=vendor_member,
        )

    assert (shipment.vendor, shipment.carrier, shipment.tracking_number) == (
        vendor,
        "DHL",
        "JJD000123",
    )
    assert shipment.shipped_by == vendor_member
    assert _line(order, mug).status == LineStatus.SHIPPED
    assert _line(order, mug).shipment == shipment
    assert _line(order, bowl).status == LineStatus.SHIPPED
    assert _line(order, lamp).status == LineStatus.PENDING
    # Another vendor still has to ship: the order stays paid.
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert [m.to for m in mail.outbox] == [[order.customer.email]]
    assert mail.outbox[0].subject == f"Your order {order.number} is on its way"
    assert "JJD000123" in mail.outbox[0].body
    assert "DHL" in mail.outbox[0].body
    assert "2 x Stoneware Mug" in mail.outbox[0].body
    assert "Brass Lamp" not in mail.outbox[0].body


def test_the_order_is_shipped_once_every_vendors_part_has_shipped(
    vendor, vendor_member, other_vendor, mug, lamp
):
    order = paid_order((mug, 1), (lamp, 1))
    fulfilment.ship_vendor_lines(
        order=order, vendor=other_vendor, carrier="UPS", tracking_number="1Z1", acting_user=None
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID

    fulfilment.ship_vendor_lines(
        order=order, vendor=vendor, carrier="DHL", tracking_number="J1", acting_user=vendor_member
    )

    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    assert order.status == OrderStatus.SHIPPED


def test_shipping_twice_is_refused_and_changes_nothing(vendor, vendor_member, mug):
    order = paid_order((mug, 1))
    fulfilment.ship_vendor_lines(
        order=order, vendor=vendor, carrier="DHL", tracking_number="J1", acting_user=vendor_member
    )
    before = _state(order)

    with pytest.raises(fulfilment.OrderNotFulfillable, match="is shipped; only paid orders"):
        fulfilment.ship_vendor_lines(
            order=order, vendor=vendor, carrier="DHL", tracking_number="J2", acting_user=None
        )
    assert _state(order) == before


def test_shipping_a_cancelled_line_is_an_illegal_transition(vendor, vendor_member, mug, bowl):
    order = paid_order((mug, 1), (bowl, 1))
    fulfilment.cancel_vendor_line(
        order=order,
        vendor=vendor,
        line_id=_line(order, mug).pk,
        acting_user=vendor_member,
        reason="Broke in the workshop",
    )
    before = _state(order)

    with pytest.raises(fulfilment.IllegalLineTransition) as excinfo:
        fulfilment.ship_vendor_lines(
            order=order,
            vendor=vendor,
            carrier="DHL",
            tracking_number="J1",
            acting_user=vendor_member,
            line_ids=[_line(order, mug).pk, _line(order, bowl).pk],
        )

    assert excinfo.value.message == "Stoneware Mug is cancelled and cannot be shipped."
    assert excinfo.value.code == "illegal_transition"
    assert _state(order) == before


def test_shipping_when_every_line_is_cancelled_says_nothing_is_left(
    vendor, vendor_member, mug, lamp
):
    order = paid_order((mug, 1), (lamp, 1))
    fulfilment.cancel_vendor_line(
        order=order, vendor=vendor, line_id=_line(order, mug).pk, acting_user=None, reason="Gone"
    )
    before = _state(order)

    with pytest.raises(fulfilment.NothingToShip, match=f"Nothing of order {order.number} is left"):
        fulfilment.ship_vendor_lines(
            order=order, vendor=vendor, carrier="DHL", tracking_number="J1", acting_user=None
        )
    assert _state(order) == before


@pytest.mark.parametrize(
    "status", [OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED, OrderStatus.REFUNDED]
)
def test_only_paid_orders_can_be_shipped(vendor, mug, status):
    order = paid_order((mug, 1), status=status)
    before = _state(order)

    with pytest.raises(fulfilment.OrderNotFulfillable, match="only paid orders can be shipped"):
        fulfilment.ship_vendor_lines(
            order=order, vendor=vendor, carrier="DHL", tracking_number="J1", acting_user=None
        )
    assert _state(order) == before


@pytest.mark.parametrize(
    ("carrier", "tracking"), [("", "J1"), ("DHL", "  "), ("D" * 61, "J1"), ("DHL", "9" * 81)]
)
def test_shipping_needs_a_carrier_and_a_tracking_number(vendor, mug, carrier, tracking):
    order = paid_order((mug, 1))
    before = _state(order)

    with pytest.raises(fulfilment.FulfilmentError):
        fulfilment.ship_vendor_lines(
            order=order, vendor=vendor, carrier=carrier, tracking_number=tracking, acting_user=None
        )
    assert _state(order) == before


def test_shipping_another_vendors_line_id_is_not_found(vendor, mug, lamp):
    order = paid_order((mug, 1), (lamp, 1))
    before = _state(order)

    with pytest.raises(fulfilment.LineNotFound):
        fulfilment.ship_vendor_lines(
            order=order,
            vendor=vendor,
            carrier="DHL",
            tracking_number="J1",
            acting_user=None,
            line_ids=[_line(order, lamp).pk],
        )
    assert _state(order) == before


# --- Services: cancelling a line ----------------------------------------------------------


def test_cancelling_a_line_returns_stock_records_it_and_requests_a_refund(
    vendor, vendor_member, mug, bowl, django_capture_on_commit_callbacks
):
    order = paid_order((mug, 3), (bowl, 1))
    mug_line = _line(order, mug)

    with django_capture_on_commit_callbacks(execute=True):
        line = fulfilment.cancel_vendor_line(
            order=order,
            vendor=vendor,
            line_id=mug_line.pk,
            acting_user=vendor_member,
            reason="Glaze cracked in the kiln",
        )

    assert line.status == LineStatus.CANCELLED
    assert line.cancel_reason == "Glaze cracked in the kiln"
    assert line.cancelled_at is not None
    assert Product.objects.get(pk=mug.pk).stock == 13
    adjustment = StockAdjustment.objects.get()
    assert (adjustment.vendor, adjustment.product_id, adjustment.change) == (vendor, mug.pk, 3)
    assert (adjustment.reason, adjustment.stock_after) == (StockReason.RETURN, 13)
    assert adjustment.created_by == vendor_member
    refund = Refund.objects.get()
    assert (refund.order, refund.vendor, refund.amount) == (order, vendor, Decimal("36.00"))
    assert list(refund.lines.all()) == [mug_line]
    assert refund.requested_by == vendor_member
    # The bowl is still to ship: the order stays paid.
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert [m.to for m in mail.outbox] == [[order.customer.email]]
    assert "Glaze cracked in the kiln" in mail.outbox[0].body
    assert "€36.00" in mail.outbox[0].body


def test_cancelling_every_line_cancels_the_order(vendor, mug, bowl):
    order = paid_order((mug, 1), (bowl, 1))
    for product in (mug, bowl):
        fulfilment.cancel_vendor_line(
            order=order,
            vendor=vendor,
            line_id=_line(order, product).pk,
            acting_user=None,
            reason="Sold out",
        )

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == "Every item was cancelled by the seller."
    assert Refund.objects.filter(order=order).count() == 2


def test_cancelling_the_last_pending_line_ships_an_order_whose_rest_has_shipped(
    vendor, other_vendor, mug, lamp
):
    order = paid_order((mug, 1), (lamp, 1))
    fulfilment.ship_vendor_lines(
        order=order, vendor=other_vendor, carrier="UPS", tracking_number="1Z", acting_user=None
    )

    fulfilment.cancel_vendor_line(
        order=order, vendor=vendor, line_id=_line(order, mug).pk, acting_user=None, reason="Gone"
    )

    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED


def test_cancelling_a_shipped_line_is_an_illegal_transition(vendor, mug, bowl):
    order = paid_order((mug, 1), (bowl, 1))
    fulfilment.ship_vendor_lines(
        order=order,
        vendor=vendor,
        carrier="DHL",
        tracking_number="J1",
        acting_user=None,
        line_ids=[_line(order, mug).pk],
    )
    before = _state(order)

    with pytest.raises(fulfilment.IllegalLineTransition) as excinfo:
        fulfilment.cancel_vendor_line(
            order=order,
            vendor=vendor,
            line_id=_line(order, mug).pk,
            acting_user=None,
            reason="Changed my mind",
        )

    assert excinfo.value.message == "Stoneware Mug is shipped and cannot be cancelled."
    assert _state(order) == before


def test_cancelling_twice_is_refused_and_refunds_once(vendor, mug, bowl):
    order = paid_order((mug, 1), (bowl, 1))
    line_id = _line(order, mug).pk
    fulfilment.cancel_vendor_line(
        order=order, vendor=vendor, line_id=line_id, acting_user=None, reason="Gone"
    )
    before = _state(order)

    with pytest.raises(fulfilment.IllegalLineTransition, match="is cancelled and cannot be"):
        fulfilment.cancel_vendor_line(
            order=order, vendor=vendor, line_id=line_id, acting_user=None, reason="Gone"
        )
    assert _state(order) == before


def test_cancelling_another_vendors_line_is_not_found(vendor, mug, lamp):
    order = paid_order((mug, 1), (lamp, 1))
    before = _state(order)

    with pytest.raises(fulfilment.LineNotFound):
        fulfilment.cancel_vendor_line(
            order=order,
            vendor=vendor,
            line_id=_line(order, lamp).pk,
            acting_user=None,
            reason="Not mine",
        )
    assert _state(order) == before


def test_cancelling_needs_a_reason(vendor, mug):
    order = paid_order((mug, 1))
    before = _state(order)

    with pytest.raises(fulfilment.FulfilmentError, match="Say why"):
        fulfilment.cancel_vendor_line(
            order=order, vendor=vendor, line_id=_line(order, mug).pk, acting_user=None, reason=" "
        )
    assert _state(order) == before


def test_cancelling_without_a_captured_payment_changes_nothing(vendor, mug):
    order = paid_order((mug, 1))
    order.payments.update(status="failed")
    before = _state(order)

    with pytest.raises(refund_services.NothingToRefund):
        fulfilment.cancel_vendor_line(
            order=order, vendor=vendor, line_id=_line(order, mug).pk, acting_user=None, reason="x"
        )
    assert _state(order) == before


# --- Views --------------------------------------------------------------------------------


def test_order_list_shows_this_vendors_part_of_each_order(client, vendor_member, mug, bowl, lamp):
    mixed = paid_order((mug, 2), (bowl, 1), (lamp, 1), ship_name="Ada Lovelace")
    theirs_only = paid_order((lamp, 1))
    unpaid = paid_order((mug, 1), status=OrderStatus.PENDING_PAYMENT)
    sign_in_with_second_factor(client, vendor_member)

    response = client.get(reverse("backoffice:order_list"))

    assert response.status_code == 200
    page = response.content.decode()
    assert mixed.number in page
    assert "Ada Lovelace" in page
    assert "€54.00" in page  # 2 × 12.00 + 30.00: the lamp is not ours
    assert "€134.00" not in page
    assert theirs_only.number not in page
    assert unpaid.number not in page
    orders = list(response.context["page_obj"])
    assert [(o.vendor_item_count, o.vendor_subtotal, o.fulfilment) for o in orders] == [
        (3, Decimal("54.00"), "to_ship")
    ]


def test_order_list_filters_by_fulfilment_state_and_date(client, vendor, vendor_member, mug, bowl):
    to_ship = paid_order((mug, 1))
    shipped = paid_order((mug, 1))
    fulfilment.ship_vendor_lines(
        order=shipped, vendor=vendor, carrier="DHL", tracking_number="J", acting_user=None
    )
    cancelled = paid_order((bowl, 1))
    fulfilment.cancel_vendor_line(
        order=cancelled,
        vendor=vendor,
        line_id=_line(cancelled, bowl).pk,
        acting_user=None,
        reason="Gone",
    )
    old = paid_order((mug, 1))
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=40))
    sign_in_with_second_factor(client, vendor_member)

    def numbers(**params):
        response = client.get(reverse("backoffice:order_list"), params)
        assert response.status_code == 200
        return {order.number for order in response.context["page_obj"]}

    assert numbers(status="to_ship") == {to_ship.number, old.number}
    assert numbers(status="shipped") == {shipped.number}
    assert numbers(status="cancelled") == {cancelled.number}
    since = (timezone.localdate() - datetime.timedelta(days=7)).isoformat()
    assert numbers(date_from=since) == {to_ship.number, shipped.number, cancelled.number}
    until = (timezone.localdate() - datetime.timedelta(days=30)).isoformat()
    assert numbers(date_to=until) == {old.number}
    assert numbers(status="to_ship", date_from=since) == {to_ship.number}


def test_the_live_counts_are_the_lists_counts(vendor, mug, bowl, lamp):
    paid_order((mug, 1), (lamp, 1))  # to ship: ours and another vendor's line
    paid_order((lamp, 1))  # another vendor's only
    paid_order((mug, 1), status=OrderStatus.PENDING_PAYMENT)  # not listed yet
    shipped = paid_order((mug, 1))
    fulfilment.ship_vendor_lines(
        order=shipped, vendor=vendor, carrier="DHL", tracking_number="J", acting_user=None
    )
    cancelled = paid_order((bowl, 1))  # paid, then cancelled by us: still listed
    fulfilment.cancel_vendor_line(
        order=cancelled,
        vendor=vendor,
        line_id=_line(cancelled, bowl).pk,
        acting_user=None,
        reason="Gone",
    )
    unpaid_cancelled = paid_order((mug, 1), status=OrderStatus.CANCELLED)
    unpaid_cancelled.payments.all().delete()  # cancelled before it was ever paid: not listed

    counts = order_selectors.count_vendor_orders(vendor=vendor)

    assert counts == {
        "total": order_selectors.list_vendor_orders(vendor=vendor).count(),
        "to_ship": order_selectors.list_vendor_orders(vendor=vendor, status="to_ship").count(),
    }
    assert counts == {"total": 3, "to_ship": 1}


def test_order_list_with_bad_filters_shows_errors_and_ignores_them(client, vendor_member, mug):
    order = paid_order((mug, 1))
    sign_in_with_second_factor(client, vendor_member)

    response = client.get(
        reverse("backoffice:order_list"), {"date_from": "yesterday", "status": "x"}
    )

    assert response.status_code == 200
    assert {o.number for o in response.context["page_obj"]} == {order.number}
    assert "Enter a valid date." in response.content.decode()


def test_order_list_htmx_request_gets_the_results_fragment(client, vendor_member, mug):
    order = paid_order((mug, 1))
    sign_in_with_second_factor(client, vendor_member)

    response = client.get(reverse("backoffice:order_list"), headers={"HX-Request": "true"})

    page = response.content.decode()
    assert page.lstrip().startswith('<div id="order-results">')
    assert order.number in page
    assert "<html" not in page


def test_order_list_paginates_by_25(client, vendor_member, mug):
    for _ in range(26):
        paid_order((mug, 1))
    sign_in_with_second_factor(client, vendor_member)

    first = client.get(reverse("backoffice:order_list"))
    second = client.get(reverse("backoffice:order_list"), {"page": 2})

    assert len(first.context["page_obj"]) == 25
    assert len(second.context["page_obj"]) == 1


def test_order_detail_shows_only_this_vendors_lines_and_the_shoppers_contact(
    client, vendor_member, mug, lamp
):
    shopper = factories.UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    order = paid_order((mug, 2), (lamp, 1), customer=shopper, ship_line1="7 Analytical Row")
    sign_in_with_second_factor(client, vendor_member)

    response = client.get(reverse("backoffice:order_detail", args=[order.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Stoneware Mug" in page
    assert "Brass Lamp" not in page
    assert "€80.00" not in page
    assert "ada@example.com" in page
    assert "Ada Lovelace" in page
    assert "7 Analytical Row" in page
    assert "Mark shipped" in page


def test_marking_shipped_from_the_detail_page(client, vendor_member, mug):
    order = paid_order((mug, 1))
    sign_in_with_second_factor(client, vendor_member)

    response = client.post(
        reverse("backoffice:order_ship", args=[order.pk]),
        {"carrier": "DHL", "tracking_number": "JJD42"},
        follow=True,
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Marked shipped with DHL, tracking number JJD42." in page
    assert "JJD42" in page
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED
    assert Shipment.objects.get(order=order).tracking_number == "JJD42"


def test_marking_shipped_over_htmx_swaps_the_vendor_part(client, vendor_member, mug):
    order = paid_order((mug, 1))
    sign_in_with_second_factor(client, vendor_member)

    response = client.post(
        reverse("backoffice:order_ship", args=[order.pk]),
        {"carrier": "DHL", "tracking_number": "JJD42"},
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="vendor-part">')
    assert "Marked shipped with DHL" in page


def test_marking_shipped_with_missing_fields_shows_errors_and_changes_nothing(
    client, vendor_member, mug
):
    order = paid_order((mug, 1))
    before = _state(order)
    sign_in_with_second_factor(client, vendor_member)

    response = client.post(reverse("backoffice:order_ship", args=[order.pk]), {"carrier": "DHL"})

    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    assert _state(order) == before


def test_marking_an_already_shipped_order_shows_the_reason(client, vendor, vendor_member, mug):
    order = paid_order((mug, 1))
    fulfilment.ship_vendor_lines(
        order=order, vendor=vendor, carrier="DHL", tracking_number="J1", acting_user=None
    )
    before = _state(order)
    sign_in_with_second_factor(client, vendor_member)

    response = client.post(
        reverse("backoffice:order_ship", args=[order.pk]),
        {"carrier": "DHL", "tracking_number": "J2"},
    )

    assert response.status_code == 422
    assert "is shipped; only paid orders can be shipped." in response.content.decode()
    assert _state(order) == before


def test_cancelling_a_line_from_the_detail_page(client, vendor_member, mug, bowl):
    order = paid_order((mug, 2), (bowl, 1))
    sign_in_with_second_factor(client, vendor_member)

    response = client.post(
        reverse("backoffice:order_line_cancel", args=[order.pk, _line(order, mug).pk]),
        {"reason": "Out of glaze"},
        follow=True,
    )

    assert response.status_code == 200
    assert "Cancelled Stoneware Mug" in response.content.decode()
    assert _line(order, mug).status == LineStatus.CANCELLED
    assert Product.objects.get(pk=mug.pk).stock == 12
    assert Refund.objects.filter(order=order).count() == 1


def test_cancelling_without_a_reason_changes_nothing(client, vendor_member, mug):
    order = paid_order((mug, 1))
    before = _state(order)
    sign_in_with_second_factor(client, vendor_member)

    response = client.post(
        reverse("backoffice:order_line_cancel", args=[order.pk, _line(order, mug).pk]),
        {"reason": ""},
    )

    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    assert _state(order) == before


def test_cancelling_a_shipped_line_from_the_page_is_refused(client, vendor, vendor_member, mug):
    order = paid_order((mug, 1))
    fulfilment.ship_vendor_lines(
        order=order, vendor=vendor, carrier="DHL", tracking_number="J", acting_user=None
    )
    before = _state(order)
    sign_in_with_second_factor(client, vendor_member)

    response = client.post(
        reverse("backoffice:order_line_cancel", args=[order.pk, _line(order, mug).pk]),
        {"reason": "Too late"},
    )

    assert response.status_code == 422
    assert "is shipped; only paid orders can be changed." in response.content.decode()
    assert _state(order) == before


def test_a_line_of_another_order_is_not_found(client, vendor_member, mug):
    order = paid_order((mug, 1))
    other = paid_order((mug, 1))
    sign_in_with_second_factor(client, vendor_member)

    response = client.post(
        reverse("backoffice:order_line_cancel", args=[order.pk, _line(other, mug).pk]),
        {"reason": "x"},
    )

    assert response.status_code == 404
    assert _line(other, mug).status == LineStatus.PENDING


# --- Query budgets ------------------------------------------------------------------------

# Each + the vendor's row-level-security scope around the view.
ORDER_LIST_QUERIES = 6 + SCOPE_QUERIES
ORDER_DETAIL_QUERIES = 8 + SCOPE_QUERIES


def _many_orders(vendor, other_vendor, count):
    products = [factories.ProductFactory(vendor=vendor) for _ in range(3)]
    rival = factories.ProductFactory(vendor=other_vendor)
    customer = factories.UserFactory()
    for _ in range(count):
        paid_order((products[0], 1), (products[1], 2), (rival, 1), customer=customer)


@pytest.mark.parametrize("count", [10, 500])
def test_order_list_query_count_does_not_grow_with_orders(
    client, vendor, other_vendor, vendor_member, count, django_assert_max_num_queries
):
    _many_orders(vendor, other_vendor, count)
    sign_in_with_second_factor(client, vendor_member)

    with django_assert_max_num_queries(ORDER_LIST_QUERIES):
        response = client.get(reverse("backoffice:order_list"))

    assert response.status_code == 200
    assert response.context["page_obj"].paginator.count == count


@pytest.mark.parametrize("count", [10, 500])
def test_order_detail_query_count_does_not_grow_with_lines(
    client, vendor, vendor_member, other_vendor, count, django_assert_max_num_queries
):
    products = [factories.ProductFactory(vendor=vendor) for _ in range(5)]
    rival = factories.ProductFactory(vendor=other_vendor)
    order = factories.OrderFactory(status=OrderStatus.PAID, total=Decimal("1.00"))
    factories.CapturedPaymentFactory(order=order, amount=Decimal("1.00"))
    lines = [
        OrderLine(
            order=order,
            vendor=vendor,
            product=products[i % 5],
            product_name=f"Item {i}",
            unit_price=Decimal("1.00"),
            quantity=1,
            line_total=Decimal("1.00"),
        )
        for i in range(count)
    ]
    OrderLine.objects.bulk_create(lines)
    factories.OrderLineFactory(order=order, product=rival)
    # Some shipped, some cancelled with a refund: every kind of row the page shows.
    shipment = factories.ShipmentFactory(order=order, vendor=vendor)
    shipped_ids = list(order.lines.filter(vendor=vendor).values_list("id", flat=True)[: count // 2])
    OrderLine.objects.filter(pk__in=shipped_ids).update(status="shipped", shipment=shipment)
    cancelled = order.lines.filter(vendor=vendor, status="pending").first()
    fulfilment.cancel_vendor_line(
        order=order, vendor=vendor, line_id=cancelled.pk, acting_user=None, reason="Gone"
    )
    sign_in_with_second_factor(client, vendor_member)

    with django_assert_max_num_queries(ORDER_DETAIL_QUERIES):
        response = client.get(reverse("backoffice:order_detail", args=[order.pk]))

    assert response.status_code == 200
    assert len(response.context["lines"]) == count
