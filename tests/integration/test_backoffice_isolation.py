"""Vendor isolation over every backoffice URL, generated from the URL map.

ROUTES below must name every pattern in backoffice.urls: a new view fails
`test_every_backoffice_url_is_in_the_isolation_table` until it is described here, and is
then covered by every test of this module:

- another vendor's ids (in the URL or the POST data), GET and POST: 404 (405 for a method
  the view does not serve) and that vendor's rows unchanged;
- an anonymous visitor: the login page; a shopper: 403 (the signed-in onboarding pages
  answer but change nothing of any vendor);
- a suspended vendor: reads work, writes are refused and change nothing;
- the member's own ids: served (so the 404s above are about ownership, not a broken view).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from api.models import ApiKey
from api.services import keys as key_services
from backoffice import tokens
from backoffice import urls as backoffice_urls
from shop.models import (
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Refund,
    ReportJob,
    ReportKind,
    ReportStatus,
    Shipment,
    StockAdjustment,
    StockReason,
    Vendor,
    VendorInvitation,
    VendorMembership,
    VendorStatus,
)
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor
from webhooks.models import Delivery, Endpoint

MEMBER = "member"  # vendor members only (vendor_member_required)
SIGNED_IN = "signed_in"  # any signed-in user: becoming a vendor, joining a team


def _no_data(objects: dict) -> dict:
    return {}


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    # URL kwargs pointing at one vendor's objects (see `_vendor_world`); None: no id in the URL.
    kwargs: Callable[[dict], dict] | None = None
    # POST data; may carry ids of the vendor's objects (e.g. product_bulk).
    data: Callable[[dict], dict] = _no_data
    access: str = MEMBER
    ids_in_post: bool = False
    # Status for another vendor's ids when the method is served (default 404).
    foreign_status: int = 404
    # Status a shopper gets on SIGNED_IN routes, per method.
    shopper_status: dict = field(default_factory=dict)

    @property
    def carries_ids(self) -> bool:
        return self.kwargs is not None or self.ids_in_post


def _product_data(o: dict) -> dict:
    return {
        "name": "Hijacked",
        "category": o["product"].category_id,
        "price": "1.00",
        "description": "Changed by another vendor",
        "is_active": "on",
    }


ROUTES: dict[str, Route] = {
    "dashboard": Route(("GET",)),
    "product_list": Route(("GET",)),
    "product_create": Route(("GET", "POST")),
    "product_bulk": Route(
        ("POST",),
        data=lambda o: {"action": "deactivate", "products": [o["product"].pk]},
        ids_in_post=True,
        # The ids are filtered to the member's own products: nothing is found, nothing changes.
        foreign_status=302,
    ),
    "product_export": Route(("GET",)),
    "product_import": Route(("GET", "POST")),
    "product_edit": Route(
        ("GET", "POST"), kwargs=lambda o: {"pk": o["product"].pk}, data=_product_data
    ),
    "product_inline_edit": Route(
        ("POST",),
        kwargs=lambda o: {"pk": o["product"].pk},
        data=lambda o: {"price": "1.00", "stock": "999", "stock_seen": o["product"].stock},
    ),
    "stock_detail": Route(
        ("GET", "POST"),
        kwargs=lambda o: {"pk": o["product"].pk},
        data=lambda o: {"change": "5", "reason": StockReason.RECEIVED, "note": "Hijack"},
    ),
    "order_list": Route(("GET",)),
    "orders_badge": Route(("GET",)),
    "order_detail": Route(("GET",), kwargs=lambda o: {"order_pk": o["order"].pk}),
    "order_ship": Route(
        ("POST",),
        kwargs=lambda o: {"order_pk": o["order"].pk},
        data=lambda o: {"carrier": "DHL", "tracking_number": "HIJACK1"},
    ),
    "order_line_cancel": Route(
        ("POST",),
        kwargs=lambda o: {"order_pk": o["order"].pk, "line_pk": o["line"].pk},
        data=lambda o: {"reason": "Cancelled by another vendor"},
    ),
    "report_list": Route(("GET", "POST")),
    "report_detail": Route(("GET",), kwargs=lambda o: {"pk": o["report"].pk}),
    "report_download": Route(("GET",), kwargs=lambda o: {"pk": o["report"].pk}),
    "member_list": Route(("GET", "POST")),
    "member_remove": Route(("POST",), kwargs=lambda o: {"pk": o["staff_membership"].pk}),
    "invitation_revoke": Route(("POST",), kwargs=lambda o: {"pk": o["invitation"].pk}),
    "activity_list": Route(("GET",)),
    "webhook_list": Route(
        ("GET", "POST"), data=lambda o: {"url": "https://erp.example/h", "events": ["order.paid"]}
    ),
    "webhook_rotate": Route(("POST",), kwargs=lambda o: {"pk": o["webhook_endpoint"].pk}),
    "webhook_toggle": Route(("POST",), kwargs=lambda o: {"pk": o["webhook_endpoint"].pk}),
    "webhook_delete": Route(("POST",), kwargs=lambda o: {"pk": o["webhook_endpoint"].pk}),
    "webhook_test": Route(("POST",), kwargs=lambda o: {"pk": o["webhook_endpoint"].pk}),
    "webhook_deliveries": Route(("GET",)),
    "webhook_retry": Route(("POST",), kwargs=lambda o: {"pk": o["webhook_delivery"].pk}),
    "api_key_list": Route(("GET", "POST"), data=lambda o: {"name": "Hijack", "scope": "read"}),
    "api_key_revoke": Route(("POST",), kwargs=lambda o: {"pk": o["api_key"].pk}),
    "apply": Route(("GET", "POST"), access=SIGNED_IN, shopper_status={"GET": 200, "POST": 422}),
    # The token names another vendor's invitation, addressed to someone else: refused.
    "invitation_accept": Route(
        ("GET", "POST"),
        kwargs=lambda o: {"token": o["invitation_token"]},
        access=SIGNED_IN,
        foreign_status=400,
        shopper_status={"GET": 400, "POST": 400},
    ),
}

MEMBER_ROUTES = [name for name, route in ROUTES.items() if route.access == MEMBER]
ID_ROUTES = [name for name, route in ROUTES.items() if route.carries_ids]
ALL_CALLS = [(name, method) for name, route in ROUTES.items() for method in route.methods]
MEMBER_CALLS = [(name, method) for name, method in ALL_CALLS if name in MEMBER_ROUTES]


# --- The world: two vendors with one of everything -----------------------------------------------


def _vendor_world(label: str, shared_order: Order) -> dict:
    owner = factories.VendorMembershipFactory(
        user__email=f"owner-{label}@example.com", vendor__name=f"Vendor {label}"
    )
    vendor = owner.vendor
    staff_membership = factories.VendorMembershipFactory(
        vendor=vendor, user__email=f"staff-{label}@example.com", role=VendorMembership.Role.STAFF
    )
    product = factories.ProductFactory(vendor=vendor, name=f"Product {label}", stock=10)
    StockAdjustment.objects.create(
        vendor=vendor, product=product, change=10, stock_after=10, reason=StockReason.RECEIVED
    )
    order = factories.OrderFactory(status=OrderStatus.PAID, total=Decimal("39.98"))
    line = factories.OrderLineFactory(order=order, product=product, quantity=2)
    factories.CapturedPaymentFactory(order=order, amount=order.total)
    shared_line = factories.OrderLineFactory(order=shared_order, product=product)
    shipped = factories.OrderFactory(status=OrderStatus.SHIPPED)
    factories.CapturedPaymentFactory(order=shipped)
    shipment = factories.ShipmentFactory(order=shipped, vendor=vendor)
    factories.OrderLineFactory(order=shipped, product=product, status="shipped", shipment=shipment)
    invitation = factories.VendorInvitationFactory(
        vendor=vendor, email=f"invitee-{label}@example.com", invited_by=owner.user
    )
    report = ReportJob.objects.create(
        kind=ReportKind.VENDOR_SALES_BY_DAY,
        vendor=vendor,
        requested_by=owner.user,
        date_from=date(2025, 1, 1),
        date_to=date(2025, 1, 31),
        status=ReportStatus.DONE,
        progress=100,
    )
    report.file.save(f"isolation-{label}.csv", ContentFile(b"day,total\n"), save=True)
    webhook_endpoint = Endpoint.objects.create(
        vendor=vendor, url="http://127.0.0.1:9/hook", events=["order.paid"], secret="whsec_x"
    )
    webhook_delivery = Delivery.objects.create(
        vendor=vendor,
        endpoint=webhook_endpoint,
        event_id=uuid.uuid4(),
        event_type="order.paid",
        payload={},
        state="failed",
    )
    api_key = key_services.create_key(
        vendor=vendor, name=f"Sync {label}", scope="read", acting_user=owner.user
    ).key
    return {
        "vendor": vendor,
        "owner": owner.user,
        "staff_membership": staff_membership,
        "product": product,
        "order": order,
        "line": line,
        "shared_order": shared_order,
        "shared_line": shared_line,
        "invitation": invitation,
        "invitation_token": tokens.make_invitation_token(invitation),
        "report": report,
        "webhook_endpoint": webhook_endpoint,
        "webhook_delivery": webhook_delivery,
        "api_key": api_key,
    }


@pytest.fixture
def world(db):
    factories.CategoryFactory(name="Other", slug="other")
    shared_order = factories.OrderFactory(status=OrderStatus.PAID, total=Decimal("39.98"))
    factories.CapturedPaymentFactory(order=shared_order, amount=shared_order.total)
    return {
        "a": _vendor_world("a", shared_order),
        "b": _vendor_world("b", shared_order),
    }


def snapshot(vendor: Vendor) -> dict:
    """Every row of this vendor a backoffice request could change."""

    def rows(queryset):
        return list(queryset.order_by("pk").values())

    return {
        "vendor": rows(Vendor.objects.filter(pk=vendor.pk)),
        "products": rows(Product.objects.filter(vendor=vendor)),
        "stock": rows(StockAdjustment.objects.filter(vendor=vendor)),
        "orders": rows(
            Order.objects.filter(pk__in=OrderLine.objects.filter(vendor=vendor).values("order"))
        ),
        "lines": rows(OrderLine.objects.filter(vendor=vendor)),
        "shipments": rows(Shipment.objects.filter(vendor=vendor)),
        "refunds": rows(Refund.objects.filter(vendor=vendor)),
        "members": rows(VendorMembership.objects.filter(vendor=vendor)),
        "webhook_endpoints": rows(Endpoint.objects.filter(vendor=vendor)),
        "webhook_deliveries": rows(Delivery.objects.filter(vendor=vendor)),
        "invitations": rows(VendorInvitation.objects.filter(vendor=vendor)),
        "reports": rows(ReportJob.objects.filter(vendor=vendor)),
        "api_keys": rows(ApiKey.objects.filter(vendor=vendor)),
    }


def _call(client, name: str, method: str, objects: dict):
    route = ROUTES[name]
    url = reverse(f"backoffice:{name}", kwargs=route.kwargs(objects) if route.kwargs else None)
    if method == "POST":
        return client.post(url, route.data(objects))
    return client.get(url)


# --- The table covers the URL map ----------------------------------------------------------------


def test_every_backoffice_url_is_in_the_isolation_table():
    names = {pattern.name for pattern in backoffice_urls.urlpatterns}
    missing = sorted(names - set(ROUTES))
    stale = sorted(set(ROUTES) - names)
    assert not missing, f"Describe these backoffice URLs in ROUTES: {missing}"
    assert not stale, f"These ROUTES entries are no longer in backoffice.urls: {stale}"


def test_every_url_with_an_id_says_where_the_id_is():
    for pattern in backoffice_urls.urlpatterns:
        if pattern.pattern.converters:
            assert ROUTES[pattern.name].kwargs is not None, pattern.name


# --- Another vendor's ids ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("name", ID_ROUTES)
def test_another_vendors_ids_answer_404_and_change_nothing(client, world, name, method):
    route = ROUTES[name]
    before_b, before_a = snapshot(world["b"]["vendor"]), snapshot(world["a"]["vendor"])
    sign_in_with_second_factor(client, world["a"]["owner"])

    response = _call(client, name, method, world["b"])

    expected = route.foreign_status if method in route.methods else 405
    assert response.status_code == expected, response.content[:300]
    assert snapshot(world["b"]["vendor"]) == before_b
    if route.access == MEMBER:
        assert snapshot(world["a"]["vendor"]) == before_a


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_vendors_line_on_a_shared_order_answers_404(client, world, method):
    """Both vendors sell on this order: A may open it, but B's line is still B's."""
    sign_in_with_second_factor(client, world["a"]["owner"])
    before = snapshot(world["b"]["vendor"])
    url = reverse(
        "backoffice:order_line_cancel",
        kwargs={"order_pk": world["a"]["shared_order"].pk, "line_pk": world["b"]["shared_line"].pk},
    )

    response = client.post(url, {"reason": "Not mine"}) if method == "POST" else client.get(url)

    assert response.status_code == (404 if method == "POST" else 405)
    assert snapshot(world["b"]["vendor"]) == before


def test_a_shared_order_shows_each_vendor_only_its_own_part(client, world):
    sign_in_with_second_factor(client, world["a"]["owner"])
    page = client.get(
        reverse("backoffice:order_detail", args=[world["a"]["shared_order"].pk])
    ).content.decode()
    assert "Product a" in page
    assert "Product b" not in page


def test_shipping_a_shared_order_ships_only_the_members_part(client, world):
    sign_in_with_second_factor(client, world["a"]["owner"])
    before = snapshot(world["b"]["vendor"])

    response = client.post(
        reverse("backoffice:order_ship", args=[world["a"]["shared_order"].pk]),
        {"carrier": "DHL", "tracking_number": "A-1"},
    )

    assert response.status_code == 302
    assert (
        world["a"]["shared_line"].__class__.objects.get(pk=world["a"]["shared_line"].pk).status
        == "shipped"
    )
    after = snapshot(world["b"]["vendor"])
    # The shared order row itself is A's too (updated_at may move); B's own rows are untouched.
    for key in ("products", "stock", "lines", "shipments", "refunds", "members", "invitations"):
        assert after[key] == before[key], key


# --- Anonymous visitors and shoppers -------------------------------------------------------------


@pytest.mark.parametrize(("name", "method"), ALL_CALLS)
def test_anonymous_visitors_get_the_login_page(client, world, name, method):
    before = snapshot(world["b"]["vendor"])

    response = _call(client, name, method, world["b"])

    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))
    assert snapshot(world["b"]["vendor"]) == before


@pytest.mark.parametrize(("name", "method"), MEMBER_CALLS)
def test_shoppers_get_403(client, world, shopper, name, method):
    before = snapshot(world["b"]["vendor"])
    client.force_login(shopper)

    response = _call(client, name, method, world["b"])

    assert response.status_code == 403
    assert snapshot(world["b"]["vendor"]) == before


@pytest.mark.parametrize(
    ("name", "method"), [call for call in ALL_CALLS if call[0] not in MEMBER_ROUTES]
)
def test_shoppers_on_the_onboarding_pages_change_no_vendor(client, world, shopper, name, method):
    before = {label: snapshot(world[label]["vendor"]) for label in ("a", "b")}
    client.force_login(shopper)

    response = _call(client, name, method, world["b"])

    assert response.status_code == ROUTES[name].shopper_status[method]
    assert {label: snapshot(world[label]["vendor"]) for label in ("a", "b")} == before


@pytest.mark.parametrize(("name", "method"), MEMBER_CALLS)
def test_removed_members_lose_access_on_their_next_request(client, world, name, method):
    membership = world["a"]["staff_membership"]
    sign_in_with_second_factor(client, membership.user)
    membership.delete()
    # The owner's membership stands in as the target of member_remove.
    owner_membership = VendorMembership.objects.get(user=world["a"]["owner"])
    objects = {**world["a"], "staff_membership": owner_membership}
    before = snapshot(world["a"]["vendor"])

    response = _call(client, name, method, objects)

    assert response.status_code == 403
    assert snapshot(world["a"]["vendor"]) == before


# --- Suspended vendors: read-only ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "method"), MEMBER_CALLS)
def test_a_suspended_vendor_can_read_but_not_write(client, world, name, method):
    vendor = world["a"]["vendor"]
    Vendor.objects.filter(pk=vendor.pk).update(status=VendorStatus.SUSPENDED)
    before = snapshot(vendor)
    sign_in_with_second_factor(client, world["a"]["owner"])

    response = _call(client, name, method, world["a"])

    if method == "GET":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response.url == reverse("backoffice:dashboard")
        assert "read-only" in client.get(response.url).content.decode()
    assert snapshot(vendor) == before


# --- The member's own ids are served -------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [name for name in ID_ROUTES if "GET" in ROUTES[name].methods and name in MEMBER_ROUTES]
)
def test_the_members_own_ids_are_served(client, world, name):
    sign_in_with_second_factor(client, world["a"]["owner"])
    assert _call(client, name, "GET", world["a"]).status_code == 200
