"""The dashboard's reads: a few aggregate queries, whatever the size of the shop."""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from shop.models import LineStatus, Order, OrderStatus, Product, Vendor
from shop.models.catalogue import LOW_STOCK_THRESHOLD
from shop.services import reports as report_services

CHART_DAYS = 30
LOW_STOCK_LIMIT = 20
# SVG user units: the template's viewBox is CHART_WIDTH × (CHART_HEIGHT + CHART_LABELS).
BAR_WIDTH = 18
BAR_GAP = 6
CHART_HEIGHT = 160
CHART_LABELS = 24
CHART_WIDTH = CHART_DAYS * (BAR_WIDTH + BAR_GAP)
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class ChartBar:
    day: datetime.date
    revenue: Decimal
    x: int
    y: float
    height: float
    label_x: float
    show_label: bool


@dataclass(frozen=True)
class RevenueChart:
    bars: list[ChartBar]
    max_revenue: Decimal
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    total_height: int = CHART_HEIGHT + CHART_LABELS
    bar_width: int = BAR_WIDTH
    label_y: int = CHART_HEIGHT + CHART_LABELS - 6

    @property
    def is_empty(self) -> bool:
        return self.max_revenue == ZERO


@dataclass(frozen=True)
class Tiles:
    """The figures at the top of the dashboard, also pushed live as orders are paid."""

    awaiting_fulfilment: int
    revenue_today: Decimal
    revenue_7_days: Decimal
    revenue_30_days: Decimal


@dataclass(frozen=True)
class Dashboard:
    tiles: Tiles
    chart: RevenueChart
    low_stock: list[Product]


def revenue_by_day(*, vendor: Vendor, days: int = CHART_DAYS) -> dict[datetime.date, Decimal]:
    """The vendor's revenue for each of the last `days` days (today included), zero-filled."""
    today = timezone.localdate()
    first = today - datetime.timedelta(days=days - 1)
    start, end = report_services.period_bounds(first, today)
    totals = {
        row["day"]: row["revenue"]
        for row in report_services.sales_by_day(vendor=vendor, start=start, end=end)
    }
    return {
        first + datetime.timedelta(days=n): totals.get(first + datetime.timedelta(days=n), ZERO)
        for n in range(days)
    }


def build_chart(revenue: dict[datetime.date, Decimal]) -> RevenueChart:
    """Bar geometry for the inline SVG: heights scale to the best day; labels every 7 days."""
    highest = max(revenue.values(), default=ZERO)
    bars = []
    for index, (day, amount) in enumerate(sorted(revenue.items())):
        height = round(float(amount / highest) * CHART_HEIGHT, 1) if highest else 0.0
        if amount and height < 1:
            height = 1.0  # a sale stays visible next to a much better day
        x = index * (BAR_WIDTH + BAR_GAP) + BAR_GAP // 2
        bars.append(
            ChartBar(
                day=day,
                revenue=amount,
                x=x,
                y=round(CHART_HEIGHT - height, 1),
                height=height,
                label_x=x + BAR_WIDTH / 2,
                show_label=(len(revenue) - 1 - index) % 7 == 0,
            )
        )
    return RevenueChart(bars=bars, max_revenue=highest)


def list_low_stock(*, vendor: Vendor, limit: int = LOW_STOCK_LIMIT) -> list[Product]:
    """The vendor's active products with at most LOW_STOCK_THRESHOLD units, emptiest first."""
    return list(
        Product.objects.filter(vendor=vendor, is_active=True, stock__lte=LOW_STOCK_THRESHOLD)
        .only("id", "name", "slug", "stock")
        .order_by("stock", "name", "id")[:limit]
    )


def count_awaiting_fulfilment(*, vendor: Vendor) -> int:
    """Paid orders with at least one of the vendor's lines still to ship."""
    return (
        Order.objects.filter(
            status=OrderStatus.PAID, lines__vendor=vendor, lines__status=LineStatus.PENDING
        )
        .distinct()
        .count()
    )


def _tiles(*, vendor: Vendor, revenue: dict[datetime.date, Decimal]) -> Tiles:
    amounts = [revenue[day] for day in sorted(revenue)]
    return Tiles(
        awaiting_fulfilment=count_awaiting_fulfilment(vendor=vendor),
        revenue_today=amounts[-1],
        revenue_7_days=sum(amounts[-7:], ZERO),
        revenue_30_days=sum(amounts, ZERO),
    )


def get_dashboard(*, vendor: Vendor) -> Dashboard:
    """Everything the dashboard shows, in three queries."""
    revenue = revenue_by_day(vendor=vendor)
    return Dashboard(
        tiles=_tiles(vendor=vendor, revenue=revenue),
        chart=build_chart(revenue),
        low_stock=list_low_stock(vendor=vendor),
    )
