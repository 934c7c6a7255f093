"""Reads for the live backoffice."""

import time

from backoffice.selectors import dashboard as dashboard_selectors
from backoffice.selectors import orders as order_selectors
from shop.models import Vendor


def orders_badge_context(*, vendor: Vendor) -> dict:
    """The navigation's "to ship" counter for `backoffice/base.html#orders-badge`.

    Its version (`data-seq`) is a clock read before counting: a count that started later has
    seen at least as much, so the page keeps the newest even when messages arrive late.
    """
    version = clock_version()
    count = order_selectors.count_vendor_orders(vendor=vendor)["to_ship"]
    return {"vendor": vendor, "orders_to_ship": count, "badge_version": version}


def clock_version() -> int:
    """A counted fragment's `data-seq`: read it before counting (see orders_badge_context)."""
    return time.time_ns() // 1000


def order_counts_context(*, vendor: Vendor) -> dict:
    """The badge (as orders_badge_context) and the order list's unfiltered count for
    `backoffice/orders/list.html#order-count`, from one count."""
    version = clock_version()
    counts = order_selectors.count_vendor_orders(vendor=vendor)
    return {
        "vendor": vendor,
        "orders_to_ship": counts["to_ship"],
        "badge_version": version,
        "order_count": counts["total"],
        "count_version": version,
        "order_count_live": True,
    }


def dashboard_context(*, vendor: Vendor) -> dict:
    """The dashboard's live parts (`#dashboard-tiles`, `#revenue-chart`, `#low-stock`)."""
    version = clock_version()
    dashboard = dashboard_selectors.get_dashboard(vendor=vendor)
    return {
        "vendor": vendor,
        "dashboard": dashboard,
        "tiles": dashboard.tiles,
        "tiles_version": version,
    }
