"""Calls of the vendor API as a client makes them: JSON bodies, a person's bearer token."""

import json
from decimal import Decimal
from typing import Any

from django.test import Client

from accounts.models import User
from shop.models import Order, OrderStatus, Product
from tests import factories
from tests.integration.api.conftest import bearer


def get(client: Client, path: str, user: User, query: dict[str, Any] | None = None) -> Any:
    return client.get(path, query, **bearer(user))


def send(client: Client, method: str, path: str, user: User, body: Any, **headers: str) -> Any:
    call = getattr(client, method.lower())
    return call(path, json.dumps(body), content_type="application/json", **bearer(user), **headers)


def paid_order(*lines: tuple[Product, int], customer: User | None = None) -> Order:
    """A paid order (its payment captured) of `(product, quantity)` lines."""
    total = sum((product.price * quantity for product, quantity in lines), Decimal("0.00"))
    order = factories.OrderFactory(
        customer=customer or factories.UserFactory(), status=OrderStatus.PAID, total=total
    )
    for product, quantity in lines:
        factories.OrderLineFactory(order=order, product=product, quantity=quantity)
    factories.CapturedPaymentFactory(order=order, amount=total)
    return order
