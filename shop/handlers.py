"""Reactions to order events on the shopper's side: emails and the live order page.

Idempotent: the order email tasks send once per order, payment or vendor (their own
guard), the shipment email once per event (the key passed here), and the live handler
publishes the order's current state, so a redelivery only repeats the same fragment.
"""

from backoffice import tasks as backoffice_tasks
from project import live
from shop.events import (
    OrderEvent,
    OrderShipped,
    PaymentCaptured,
    PaymentFailed,
    RefundIssued,
)
from shop.forms import checkout as checkout_forms
from shop.models import OrderLine
from shop.selectors import orders as order_selectors
from shop.tasks import emails as email_tasks

# The order page's live fragment: its status, payment, message and actions, all in one.
ORDER_LIVE_FRAGMENT = "shop/orders/detail.html#order-status"


def order_status_context(state: order_selectors.OrderState) -> dict:
    """What the order page's live fragment needs (the same names as the page's view). Its
    Pay now form has no CSRF token here (no request); the page's script supplies it."""
    return {"order": state.order, "state": state, "card_form": checkout_forms.CardForm()}


def publish_order_status(event: OrderEvent) -> None:
    """Push the order page's live fragment to the order's shopper, rendered from the order as
    it is now (one consistent state, numbered with the last event that state includes);
    nothing when the order's page is not open."""
    if not live.has_listeners(live.order_group(event.order_id)):
        return
    state = order_selectors.get_order_state(order_id=event.order_id)
    if state is None:
        return
    html = live.render_fragments([ORDER_LIVE_FRAGMENT], order_status_context(state))
    live.publish(live.order_group(state.order.pk), html)


def send_order_emails(event: PaymentCaptured) -> None:
    """PaymentCaptured: the shopper's confirmation and each vendor's new-order notice."""
    email_tasks.send_order_confirmation.enqueue(event.order_id)
    vendor_ids = sorted(
        set(OrderLine.objects.filter(order_id=event.order_id).values_list("vendor_id", flat=True))
    )
    for vendor_id in vendor_ids:
        email_tasks.send_vendor_new_order.enqueue(event.order_id, vendor_id)


def send_payment_failed_email(event: PaymentFailed) -> None:
    """PaymentFailed: tell the shopper (the task words it for a decline or a processing error)."""
    email_tasks.send_payment_failed.enqueue(event.order_id)


def send_refund_email(event: RefundIssued) -> None:
    """RefundIssued: tell the shopper about a refund they did not ask for (a charge captured
    after its order stopped awaiting payment, or staff refunding the whole order); the task
    sends only for those, once per refund."""
    email_tasks.send_refund_notice.enqueue(event.refund_id)


def send_shipment_email(event: OrderShipped) -> None:
    """OrderShipped: the carrier and tracking number, to the shopper (once per event)."""
    assert event.meta is not None  # handlers are given stored events, with their envelope
    backoffice_tasks.send_shipment_email.enqueue(
        shipment_id=event.shipment_id,
        base_url=event.base_url,
        idempotency_key=f"event:{event.meta.id}:shipment",
    )
