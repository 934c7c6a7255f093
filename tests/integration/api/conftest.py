"""The API's test world: two vendors (A and B) each with a member, a product and a paid order
line, a shopper with an order, and staff; `bearer(user)` gives a request's auth header."""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import Address, User
from api import tokens
from shop.models import Order, OrderLine, OrderStatus, Product, Vendor
from tests import factories


@dataclass
class VendorWorld:
    vendor: Vendor
    member: User
    product: Product
    order: Order
    line: OrderLine


@dataclass
class ApiWorld:
    a: VendorWorld
    b: VendorWorld
    shopper: User
    shopper_order: Order
    staff: User
    shopper_address: Address  # the shopper's default; their cart holds one of A's product

    def user(self, actor: str) -> User | None:
        return {
            "anonymous": None,
            "shopper": self.shopper,
            "vendor_a": self.a.member,
            "vendor_b": self.b.member,
            "staff": self.staff,
        }[actor]


def bearer(user: User) -> dict[str, str]:
    token, _ = tokens.issue_access_token(user=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _vendor_world(label: str, shopper: User) -> VendorWorld:
    membership = factories.VendorMembershipFactory(
        user__email=f"member-{label}@example.com", vendor__name=f"Vendor {label.upper()}"
    )
    product = factories.ProductFactory(vendor=membership.vendor, name=f"Lamp {label}", stock=10)
    order = factories.OrderFactory(
        customer=shopper, status=OrderStatus.PAID, total=Decimal("39.98")
    )
    line = factories.OrderLineFactory(order=order, product=product, quantity=2)
    factories.CapturedPaymentFactory(order=order, amount=order.total)
    return VendorWorld(
        vendor=membership.vendor, member=membership.user, product=product, order=order, line=line
    )


@pytest.fixture
def api_world(db) -> ApiWorld:
    shopper = factories.UserFactory(email="api-shopper@example.com")
    a = _vendor_world("a", shopper)
    b = _vendor_world("b", shopper)
    staff = factories.UserFactory(email="api-staff@example.com", is_staff=True)
    address = factories.AddressFactory(user=shopper)
    shopper.default_address = address
    shopper.save(update_fields=["default_address"])
    factories.CartItemFactory(
        cart=factories.CartFactory(user=shopper), product=a.product, quantity=1
    )
    return ApiWorld(
        a=a, b=b, shopper=shopper, shopper_order=a.order, staff=staff, shopper_address=address
    )


@pytest.fixture
def api_client() -> Client:
    return Client()
