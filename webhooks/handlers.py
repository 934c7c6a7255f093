"""Order events to the vendors' webhook endpoints: each handler makes one delivery per
subscribed endpoint of each vendor in the order (only that vendor's lines) and enqueues it.

Idempotent: the deliveries are unique per (event id, endpoint), so an event delivered again
by the outbox makes none twice.
"""

from shop.events import OrderCancelled, PaymentCaptured
from webhooks import services
from webhooks.models import EventType


def deliver_order_paid(event: PaymentCaptured) -> None:
    """PaymentCaptured: `order.paid` to each vendor of the order."""
    assert event.meta is not None  # handlers are given stored events, with their envelope
    services.record_order_event(
        event_id=event.meta.id, event_type=EventType.ORDER_PAID, order_id=event.order_id
    )


def deliver_order_cancelled(event: OrderCancelled) -> None:
    """OrderCancelled: `order.cancelled` to each vendor of the order."""
    assert event.meta is not None
    services.record_order_event(
        event_id=event.meta.id,
        event_type=EventType.ORDER_CANCELLED,
        order_id=event.order_id,
        reason=event.reason,
    )
