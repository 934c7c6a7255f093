"""Checkout records OrderPlaced with the order, and nothing when it fails."""

from decimal import Decimal

import pytest

from project.events.models import OutboxEvent
from shop.services import checkout
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_records_order_placed_once_with_the_order(shopper):
    oak, flax = factories.VendorFactory(), factories.VendorFactory()
    cart = factories.CartFactory(user=shopper)
    factories.CartItemFactory(cart=cart, product__vendor=oak, product__price=Decimal("24.50"))
    factories.CartItemFactory(cart=cart, product__vendor=flax, product__price=Decimal("9.00"))
    address = factories.AddressFactory(user=shopper)

    order = checkout.place_order(customer=shopper, cart=cart, address=address)

    event = OutboxEvent.objects.get()
    assert (event.event_type, event.aggregate_type, event.aggregate_id, event.sequence) == (
        "OrderPlaced",
        "shop.order",
        str(order.pk),
        1,
    )
    assert event.payload == {
        "order_id": order.pk,
        "customer_id": shopper.pk,
        "vendor_ids": sorted([oak.pk, flax.pk]),
        "total": "33.50",
        "currency": "EUR",
    }


def test_failed_checkout_records_nothing(shopper):
    cart = factories.CartFactory(user=shopper)
    factories.CartItemFactory(cart=cart, product__stock=1, quantity=2)
    address = factories.AddressFactory(user=shopper)

    with pytest.raises(checkout.NotEnoughStock):
        checkout.place_order(customer=shopper, cart=cart, address=address)

    assert OutboxEvent.objects.count() == 0
