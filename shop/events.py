"""What happens to orders. Every one of these is recorded with aggregate=the order, so an
order's events carry one sequence (the `data-seq` of its live fragments) and are handled
in that order."""

from dataclasses import dataclass
from decimal import Decimal

from project.events import Event


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(Event):
    order_id: int
    customer_id: int
    vendor_ids: tuple[int, ...]
    total: Decimal
    currency: str


@dataclass(frozen=True, kw_only=True)
class PaymentCaptured(Event):
    order_id: int
    payment_id: int
    amount: Decimal
    currency: str


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(Event):
    order_id: int
    payment_id: int
    failure_code: str
    failure_message: str
    # True when the decline is final (the order is cancelled); False when it may be retried.
    final: bool


@dataclass(frozen=True, kw_only=True)
class OrderShipped(Event):
    """One vendor's shipment left; `order_status` says whether the whole order is shipped."""

    order_id: int
    shipment_id: int
    vendor_id: int
    carrier: str
    tracking_number: str
    order_status: str
    # The request's origin, for links in the email (SITE_URL when absent).
    base_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(Event):
    order_id: int
    reason: str
    vendor_ids: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class RefundIssued(Event):
    order_id: int
    refund_id: int
    amount: Decimal
    currency: str
    vendor_id: int | None


# Any event of an order (each carries its order_id): what the live order pages react to.
OrderEvent = (
    OrderPlaced | PaymentCaptured | PaymentFailed | OrderShipped | OrderCancelled | RefundIssued
)
