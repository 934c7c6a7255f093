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
    """Tell each vendor of the order: its row in the order list, the list's count, the
    navigation's counter, the dashboard (tiles, chart, low stock) and a notice, which
    replaces the one before. A few queries per vendor, whatever the number of orders; none
    for a vendor with no backoffice page open."""
    assert event.meta is not None  # handlers are given stored events, with their envelope
    order = Order.objects.filter(pk=event.order_id).first()
    if order is None:
        return
    vendor_ids = set(
        OrderLine.objects.filter(order_id=order.pk).values_list("vendor_id", flat=True)
    )
    for vendor in Vendor.objects.filter(pk__in=vendor_ids).order_by("pk"):
        if not live.has_listeners(live.vendor_group(vendor.pk)):
            continue  # no backoffice page of this vendor is open
        row = order_selectors.list_vendor_orders(vendor=vendor).filter(pk=order.pk).first()
        parts = []
        if row is not None:
            parts.append(
                live.render_fragments(
                    [ORDER_ROW], {"order": row, "vendor": vendor, "live_seq": event.meta.sequence}
                )
            )
        parts.append(
            live.render_fragments(
                [ORDERS_BADGE], live_selectors.orders_badge_context(vendor=vendor)
            )
        )
        parts.append(
            live.render_fragments([ORDER_COUNT], live_selectors.order_count_context(vendor=vendor))
        )
        parts.append(
            live.render_fragments(DASHBOARD, live_selectors.dashboard_context(vendor=vendor))
        )
        text = NOTICES.get(event.name)
        if text:
            parts.append(
                live.render_fragments([NOTICE], {"text": text.format(number=order.number)})
            )
        live.publish(live.vendor_group(vendor.pk), "\n".join(parts))


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
