"""Who may open the catalogue backoffice (dashboard, products, stock, reports), and the
isolation between vendors: another vendor's ids answer 404 and change nothing."""

from decimal import Decimal

import pytest
from django.urls import reverse

from shop.models import Product, ReportJob, ReportKind, StockAdjustment, VendorStatus
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

GET_PAGES = [
    ("dashboard", False),
    ("product_list", False),
    ("product_create", False),
    ("product_export", False),
    ("product_import", False),
    ("product_edit", True),
    ("stock_detail", True),
    ("report_list", False),
]
POSTS = [
    ("product_bulk", False),
    ("product_inline_edit", True),
    ("product_edit", True),
    ("stock_detail", True),
    ("report_list", False),
]


@pytest.fixture
def member_client(client, vendor_member):
    sign_in_with_second_factor(client, vendor_member)
    return client


@pytest.fixture
def rival():
    """Another vendor's product with its stock history and a finished report."""
    product = factories.ProductFactory(
        name="Rival Lamp", price=Decimal("40.00"), stock=6, is_active=True
    )
    adjustment = StockAdjustment.objects.create(
        vendor=product.vendor, product=product, change=6, stock_after=6, reason="received"
    )
    report = ReportJob.objects.create(
        kind=ReportKind.VENDOR_SALES_BY_DAY,
        vendor=product.vendor,
        status="done",
        date_from="2026-01-01",
        date_to="2026-01-02",
        file="reports/rival.csv",
    )
    return {"product": product, "adjustment": adjustment, "report": report}


def _url(name, with_pk, pk=1):
    return reverse(f"backoffice:{name}", args=[pk] if with_pk else [])


@pytest.mark.parametrize(("name", "with_pk"), GET_PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client, name, with_pk):
    url = _url(name, with_pk)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize(
    ("method", "name", "with_pk"),
    [("get", *page) for page in GET_PAGES] + [("post", *page) for page in POSTS],
)
def test_shoppers_are_refused(client, shopper, rival, method, name, with_pk):
    client.force_login(shopper)
    before = _state(rival)
    url = _url(name, with_pk, rival["product"].pk)
    response = (
        client.post(url, {"price": "1.00", "stock": "0"}) if method == "post" else client.get(url)
    )
    assert response.status_code == 403
    assert _state(rival) == before


def _state(rival):
    product = Product.objects.get(pk=rival["product"].pk)
    return (
        product.name,
        product.price,
        product.stock,
        product.is_active,
        StockAdjustment.objects.count(),
        ReportJob.objects.count(),
    )


@pytest.mark.parametrize(
    ("method", "name", "data"),
    [
        ("get", "product_edit", None),
        ("post", "product_edit", {"name": "Mine now", "price": "1.00"}),
        ("post", "product_inline_edit", {"price": "1.00", "stock": "0", "stock_seen": "6"}),
        ("get", "stock_detail", None),
        ("post", "stock_detail", {"change": "-6", "reason": "damaged"}),
        ("get", "report_detail", None),
        ("get", "report_download", None),
    ],
)
def test_another_vendors_ids_answer_404_and_change_nothing(
    member_client, rival, method, name, data
):
    pk = rival["report"].pk if name.startswith("report") else rival["product"].pk
    before = _state(rival)

    url = reverse(f"backoffice:{name}", args=[pk])
    response = member_client.post(url, data) if method == "post" else member_client.get(url)

    assert response.status_code == 404
    assert _state(rival) == before


def test_another_vendors_data_is_absent_from_lists_and_exports(member_client, rival):
    for name in ("dashboard", "product_list", "report_list"):
        page = member_client.get(reverse(f"backoffice:{name}")).content.decode()
        assert "Rival Lamp" not in page
        assert reverse("backoffice:report_detail", args=[rival["report"].pk]) not in page
    export = member_client.get(reverse("backoffice:product_export"))
    assert "Rival Lamp" not in b"".join(export.streaming_content).decode()


def test_bulk_with_only_foreign_ids_changes_nothing(member_client, rival):
    before = _state(rival)
    response = member_client.post(
        reverse("backoffice:product_bulk"),
        {"action": "deactivate", "products": [rival["product"].pk]},
        follow=True,
    )
    assert "No products changed" in response.content.decode()
    assert _state(rival) == before


def test_a_suspended_vendor_can_look_but_not_change(member_client, vendor_member):
    vendor = vendor_member.vendor_memberships.get().vendor
    vendor.status = VendorStatus.SUSPENDED
    vendor.save(update_fields=["status"])
    product = factories.ProductFactory(vendor=vendor, price=Decimal("5.00"), stock=2)

    assert member_client.get(reverse("backoffice:product_list")).status_code == 200
    response = member_client.post(
        reverse("backoffice:product_inline_edit", args=[product.pk]),
        {"price": "9.00", "stock": "9", "stock_seen": "2"},
        follow=True,
    )
    assert "the backoffice is read-only" in response.content.decode()
    product.refresh_from_db()
    assert (product.price, product.stock) == (Decimal("5.00"), 2)
