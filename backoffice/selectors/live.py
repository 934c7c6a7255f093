"""Reads for the live backoffice."""

import time

from backoffice.selectors import orders as order_selectors
from shop.models import Vendor


def orders_badge_context(*, vendor: Vendor) -> dict:
    """The navigation's "to ship" counter for `backoffice/base.html#orders-badge`.

    Its version (`data-seq`) is a clock read before counting: a count that started later has
    seen at least as much, so the page keeps the newest even when messages arrive late.
    """
    version = time.time_ns() // 1000
    count = order_selectors.list_vendor_orders(vendor=vendor, status="to_ship").count()
    return {"vendor": vendor, "orders_to_ship": count, "badge_version": version}
