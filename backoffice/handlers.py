"""Reactions to events on the vendors' side: the live backoffice and the vendor's emails.
Idempotent: the live handler publishes the current row, counts, tiles and a short notice; each email
is sent once per event. Also the report page's live status, pushed as the report task goes."""

import logging

from backoffice import tasks
from backoffice.events import VendorApproved
from backoffice.selectors import live as live_selectors
from backoffice.selectors import orders as order_selectors
from project import live
from shop.events import OrderEvent
from shop.models import Order, OrderLine, ReportJob, Vendor

logger = logging.getLogger(__name__)

ORDER_ROW = "backoffice/orders/list.html#order-row"
ORDERS_BADGE = "backoffice/base.html#orders-badge"
ORDER_COUNT = "backoffice/orders/list.html#order-count"
DASHBOARD = [
    "backoffice/dashboard/index.html#dashboard-tiles",
    "backoffice/dashboard/index.html#revenue-chart",
    "backoffice/dashboard/index.html#low-stock",
]
NOTICE = "components/live_notice.html"
REPORT_STATUS = "backoffice/reports/detail.html#report-status"

NOTICES = {
    "OrderPlaced": "New order {number}, awaiting payment.",
    "PaymentCaptured": "Order {number} is paid and ready to ship.",
    "PaymentFailed": "The payment for order {number} failed.",
    "OrderShipped": "Order {number}: a shipment left.",
    "OrderCancelled": "Order {number} was cancelled.",
}


def publish_vendor_order(event: OrderEvent) -> None:
    """Tell each vendor of the order, page by page (project.live.VENDOR_FEEDS), what that page
    shows, in one message per page: every page the navigation's counter and a notice (which
    replaces the one before); the order list with them its row and count; the dashboard, last,
    its tiles, chart and low stock, the costliest to render. A few queries per vendor, whatever
    the number of orders; nothing rendered for a page nobody has open."""
    assert event.meta is not None  # handlers are given stored events, with their envelope
    order = Order.objects.filter(pk=event.order_id).first()
    if order is None:
        return
    vendor_ids = set(
        OrderLine.objects.filter(order_id=order.pk).values_list("vendor_id", flat=True)
    )
    for vendor in Vendor.objects.filter(pk__in=vendor_ids).order_by("pk"):
        feeds = {feed: live.vendor_feed_group(vendor.pk, feed) for feed in live.VENDOR_FEEDS}
        watched = live.listened(list(feeds.values()))
        if not watched:
            continue  # no backoffice page of this vendor is open
        counts = live_selectors.order_counts_context(vendor=vendor)
        nav = _nav_parts(event, order, counts)
        if feeds["nav"] in watched:
            live.publish(feeds["nav"], nav)
        if feeds["orders"] in watched:
            rows = _order_list_parts(order, vendor, event.meta.sequence, counts)
            live.publish(feeds["orders"], f"{rows}\n{nav}")
        if feeds["dashboard"] in watched:
            dashboard = live.render_fragments(
                DASHBOARD, live_selectors.dashboard_context(vendor=vendor)
            )
            live.publish(feeds["dashboard"], f"{dashboard}\n{nav}")


def _nav_parts(event: OrderEvent, order: Order, counts: dict) -> str:
    """The navigation's counter and the event's notice, if it has one."""
    parts = [live.render_fragments([ORDERS_BADGE], counts)]
    text = NOTICES.get(event.name)
    if text:
        parts.append(live.render_fragments([NOTICE], {"text": text.format(number=order.number)}))
    return "\n".join(parts)


def _order_list_parts(order: Order, vendor: Vendor, sequence: int, counts: dict) -> str:
    """The order's row (none while it is not listed: awaiting payment) and the list's count."""
    row = order_selectors.list_vendor_orders(vendor=vendor).filter(pk=order.pk).first()
    context = {"order": row, "vendor": vendor, "live_seq": sequence}
    parts = [live.render_fragments([ORDER_ROW], context)] if row is not None else []
    parts.append(live.render_fragments([ORDER_COUNT], counts))
    return "\n".join(parts)


def send_vendor_approved_email(event: VendorApproved) -> None:
    """VendorApproved: tell the applicant and owners their shop is open (once per event)."""
    assert event.meta is not None  # handlers are given stored events, with their envelope
    tasks.send_vendor_status_email.enqueue(
        vendor_id=event.vendor_id,
        outcome="approved",
        idempotency_key=f"event:{event.meta.id}:vendor_approved",
    )


def publish_report_status(report_id: int) -> None:
    """Push a vendor report's status (progress, ready with its link, failed) to its vendor's
    pages: the report page and the list show it in place. Progress is no event: the report
    task calls this as it goes. Best effort (the pages poll beside the socket), so a channel
    layer that is down never fails the report."""
    report = ReportJob.objects.filter(pk=report_id, vendor__isnull=False).first()
    if report is None or report.vendor_id is None:
        return
    html = live.render_fragments([REPORT_STATUS], {"report": report})
    try:
        live.publish(live.vendor_group(report.vendor_id), html)
    except Exception:  # Redis away, a publish timing out: the pages' poll carries on
        logger.warning("Could not push report %s's status", report_id, exc_info=True)
