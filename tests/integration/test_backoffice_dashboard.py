"""The vendor dashboard: orders to fulfil, revenue, the server-rendered chart, low stock."""

import datetime
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice.selectors import dashboard as dashboard_selectors
from shop.models import LineStatus, Order, OrderStatus, Product
from tests import factories
from tests.fixtures.database import SCOPE_QUERIES
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db


@pytest.fixture
def vendor(vendor_member):
    return vendor_member.vendor_memberships.get().vendor


@pytest.fixture
def member_client(client, vendor_member):
    sign_in_with_second_factor(client, vendor_member)
    return client


def local_noon(days_ago: int) -> datetime.datetime:
    day = timezone.localdate() - datetime.timedelta(days=days_ago)
    return datetime.datetime.combine(day, datetime.time(12), tzinfo=timezone.get_current_timezone())


def sale(
    vendor,
    *,
    total,
    days_ago=0,
    order=None,
    order_status=OrderStatus.PAID,
    line_status=LineStatus.PENDING,
    quantity=1,
):
    if order is None:
        order = factories.OrderFactory(status=order_status)
        Order.objects.filter(pk=order.pk).update(created_at=local_noon(days_ago))
    factories.OrderLineFactory(
        order=order,
        product=factories.ProductFactory(vendor=vendor, stock=50),
        quantity=quantity,
        line_total=Decimal(total),
        status=line_status,
    )
    return order


@pytest.fixture
def sales(vendor):
    rival = factories.VendorFactory()
    today = sale(vendor, total="10.00")
    sale(rival, total="5.00", order=today)  # another vendor's line on the same order
    sale(
        vendor,
        total="20.00",
        days_ago=3,
        order_status=OrderStatus.SHIPPED,
        line_status=LineStatus.SHIPPED,
    )
    sale(
        vendor,
        total="30.00",
        days_ago=10,
        order_status=OrderStatus.COMPLETED,
        line_status=LineStatus.SHIPPED,
    )
    sale(vendor, total="100.00", days_ago=30)  # outside the last 30 days (today is day 1)
    sale(vendor, total="50.00", line_status=LineStatus.CANCELLED)
    sale(vendor, total="70.00", order_status=OrderStatus.REFUNDED)
    sale(vendor, total="80.00", order_status=OrderStatus.PENDING_PAYMENT)
    sale(vendor, total="90.00", order_status=OrderStatus.CANCELLED)
    two_lines = sale(vendor, total="1.00", days_ago=1)  # one order, two lines
    sale(vendor, total="2.00", order=two_lines)
    sale(rival, total="500.00", days_ago=2)


def test_dashboard_shows_revenue_and_orders_to_fulfil(member_client, sales):
    response = member_client.get(reverse("backoffice:dashboard"))

    assert response.status_code == 200
    dashboard = response.context["dashboard"]
    assert dashboard.tiles.revenue_today == Decimal("10.00")
    assert dashboard.tiles.revenue_7_days == Decimal("33.00")
    assert dashboard.tiles.revenue_30_days == Decimal("63.00")
    # Paid with a line to ship: today's, the old one and the one with two lines (counted once).
    assert dashboard.tiles.awaiting_fulfilment == 3
    page = response.content.decode()
    assert "€10.00" in page
    assert "€33.00" in page
    assert "€63.00" in page
    assert response.context["backoffice_section"] == "dashboard"


def test_chart_is_an_inline_svg_with_a_bar_and_title_per_day(member_client, sales):
    page = member_client.get(reverse("backoffice:dashboard")).content.decode()

    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count("<rect") == 30
    today = timezone.localdate()
    assert f"<title>{today:%a} {today.day} {today:%b}: €10.00</title>" in svg
    ten_days_ago = today - datetime.timedelta(days=10)
    assert f"<title>{ten_days_ago:%a} {ten_days_ago.day} {ten_days_ago:%b}: €30.00</title>" in svg
    assert 'role="img"' in svg
    assert "style=" not in page
    assert "<script>" not in page
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert max(heights) == dashboard_selectors.CHART_HEIGHT  # the best day fills the chart
    assert heights[-1] == round(10 / 30 * dashboard_selectors.CHART_HEIGHT, 1)


def test_chart_geometry_scales_to_the_best_day():
    day = datetime.date(2026, 3, 1)
    chart = dashboard_selectors.build_chart(
        {
            day: Decimal("0.00"),
            day + datetime.timedelta(days=1): Decimal("50.00"),
            day + datetime.timedelta(days=2): Decimal("0.01"),
            day + datetime.timedelta(days=3): Decimal("200.00"),
        }
    )
    assert [bar.height for bar in chart.bars] == [0.0, 40.0, 1.0, 160.0]
    assert [bar.y for bar in chart.bars] == [160.0, 120.0, 159.0, 0.0]
    assert chart.max_revenue == Decimal("200.00")


def test_low_stock_lists_active_products_at_five_or_fewer(member_client, vendor):
    low = factories.ProductFactory(vendor=vendor, name="Nearly Gone", stock=2)
    factories.ProductFactory(vendor=vendor, name="Sold Out", stock=0)
    factories.ProductFactory(vendor=vendor, name="Plenty", stock=6)
    factories.ProductFactory(vendor=vendor, name="Hidden Low", stock=1, is_active=False)
    factories.ProductFactory(name="Rival Low", stock=1)

    response = member_client.get(reverse("backoffice:dashboard"))

    assert [p.name for p in response.context["dashboard"].low_stock] == ["Sold Out", "Nearly Gone"]
    page = response.content.decode()
    assert reverse("backoffice:stock_detail", args=[low.pk]) in page
    assert "Plenty" not in page
    assert "Hidden Low" not in page
    assert "Rival Low" not in page


def test_empty_dashboard_says_so(member_client):
    page = member_client.get(reverse("backoffice:dashboard")).content.decode()

    assert "No sales in the last 30 days yet." in page
    assert "Every active product has more than 5 in stock." in page
    assert "<svg" not in page


# user, vendor, orders to fulfil, 30 days of revenue, low stock + the layout (cart badge, link)
# + the vendor's row-level-security scope around the view
DASHBOARD_QUERIES = 7 + SCOPE_QUERIES


def test_dashboard_queries_stay_constant_with_10_or_500_products(
    member_client, vendor, sales, django_assert_max_num_queries
):
    category = factories.CategoryFactory()

    def add(start, stop):
        Product.objects.bulk_create(
            Product(
                vendor=vendor,
                category=category,
                name=f"P{n}",
                slug=f"p-{n}",
                price=Decimal("1.00"),
                stock=n % 8,
            )
            for n in range(start, stop)
        )

    add(0, 10)
    url = reverse("backoffice:dashboard")
    member_client.get(url)
    with CaptureQueriesContext(connection) as ten:
        assert member_client.get(url).status_code == 200
    add(10, 500)

    with django_assert_max_num_queries(len(ten)):
        assert member_client.get(url).status_code == 200
    assert len(ten) <= DASHBOARD_QUERIES
