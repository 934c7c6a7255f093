"""Order reads, scoped to the shopper who placed them."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    CharField,
    Count,
    F,
    FilteredRelation,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Cast, Coalesce, JSONObject
from django.shortcuts import get_object_or_404

from accounts.models import User
from project.events.models import AggregateSequence
from shop.models import (
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    Shipment,
)
from shop.services import payments as payment_services

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

PAID_STATUSES = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED)


class _State(TypedDict):  # what _with_state annotates
    latest_payment: Payment | None
    live_seq: int
    shop_names: list[str]
    shipment_rows: list[dict[str, Any]]


# An order read by _with_state (a lazy alias: WithAnnotations exists for the type checker only).
type StatedOrder = WithAnnotations[Order, _State]


def list_orders_for_customer(*, customer: User) -> QuerySet[Order]:
    """The customer's orders, newest first, each with `line_count` and `item_count`."""
    return (
        Order.objects.filter(customer=customer)
        .annotate(line_count=Count("lines"))
        .order_by("-created_at", "-id")
    )


def access_order(*, user: User, pk: int) -> Order:
    """The user's own order; anyone else's is a 404."""
    return get_object_or_404(Order.objects.filter(customer_id=user.pk), pk=pk)


@dataclass(frozen=True)
class OrderState:
    """An order as it was at one moment, for the order page's live fragment: its status, its
    latest payment and the number of its last event (`live_seq`) come from one SQL statement,
    so they always belong together (see `_with_state`)."""

    order: StatedOrder

    @property
    def live_seq(self) -> int:
        return self.order.live_seq

    @property
    def latest_payment(self) -> Payment | None:
        return getattr(self.order, "latest_payment", None)  # not set when it has none

    @property
    def payment_in_flight(self) -> bool:
        latest = self.latest_payment
        return latest is not None and latest.status in payment_services.IN_FLIGHT

    @property
    def can_pay(self) -> bool:
        """Pay now: the order awaits payment and no charge for it is under way."""
        return self.order.status == OrderStatus.PENDING_PAYMENT and not self.payment_in_flight

    @property
    def payment_progress(self) -> str:
        """Where the latest payment stands, in the words the page has a message for."""
        latest = self.latest_payment
        if latest is None:
            return ""
        if self.payment_in_flight:
            if latest.outcome_unknown_since is not None:
                return "confirming"  # the processor cannot be asked; the charge may exist
            return "retrying" if latest.attempts > 1 else "processing"
        if latest.status == PaymentStatus.FAILED:
            return "declined" if self.order.status == OrderStatus.CANCELLED else "failed"
        if latest.refunded_amount > 0:
            return "refunded"
        if self.order.status in PAID_STATUSES:
            return "captured"
        return "refunding"  # charged for an order that no longer wants it: given back

    @property
    def payment_label(self) -> str:
        """The payment box's word for the latest payment, agreeing with the order's status."""
        return {
            "processing": "Processing",
            "retrying": "Retrying",
            "confirming": "Confirming",
            "captured": "Paid",
            "declined": "Declined",
            "failed": "Failed",
            "refunded": "Refunded",
            "refunding": "Refunding",
        }.get(self.payment_progress, "")

    @property
    def timeline(self) -> list["TimelineStep"]:
        """Placed, paid, shipped by each shop (carrier and tracking), then how it ended."""
        order, status = self.order, self.order.status
        steps = [TimelineStep("Order placed", when=order.created_at, state=DONE)]
        progress = self.payment_progress
        paid = status in PAID_STATUSES or progress in ("refunded", "refunding")
        if paid:
            steps.append(TimelineStep("Payment received", detail=self._card, state=DONE))
        elif status == OrderStatus.PENDING_PAYMENT:
            waiting = {
                "processing": "Processing your payment",
                "retrying": "Retrying your payment",
                "confirming": "Confirming your payment",
            }.get(progress, "Awaiting payment")
            steps.append(TimelineStep(waiting, detail=self._card, state=CURRENT))
        elif progress == "declined":
            steps.append(TimelineStep("Payment declined", detail=self._card, state=FAILED))
        ended = status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED)
        shipped_by = {shipment.vendor_name: shipment for shipment in self.shipments}
        for shop in self.shops if not ended else list(shipped_by):
            shipment = shipped_by.get(shop)
            if shipment is not None:
                detail = f"{shipment.carrier}, tracking number {shipment.tracking_number}"
                steps.append(TimelineStep(f"Shipped by {shop}", detail, shipment.shipped_at, DONE))
            else:
                preparing = status == OrderStatus.PAID
                detail = "Preparing your items" if preparing else ""
                steps.append(
                    TimelineStep(
                        f"Shipped by {shop}", detail, state=CURRENT if preparing else UPCOMING
                    )
                )
        if status == OrderStatus.COMPLETED:
            steps.append(TimelineStep("Delivered", when=order.updated_at, state=DONE))
        elif status == OrderStatus.CANCELLED:
            # A decline's reason is the payment's message, said once below the timeline.
            reason = "" if progress == "declined" else order.cancel_reason
            steps.append(TimelineStep("Cancelled", reason, when=order.updated_at, state=FAILED))
        elif status == OrderStatus.REFUNDED:
            steps.append(TimelineStep("Refunded", when=order.updated_at, state=FAILED))
        else:
            steps.append(TimelineStep("Delivered", state=UPCOMING))
        return steps

    @property
    def shops(self) -> list[str]:
        """The shops on this order, by name: those that shipped (in the order they did),
        then those with items still to ship."""
        shipped = list(dict.fromkeys(shipment.vendor_name for shipment in self.shipments))
        waiting = getattr(self.order, "shop_names", None) or []
        return shipped + [name for name in waiting if name not in shipped]

    @property
    def shipments(self) -> list["ShipmentView"]:
        return [
            ShipmentView(
                vendor_name=row["vendor"],
                carrier=row["carrier"],
                tracking_number=row["tracking_number"],
                shipped_at=_aware(datetime.fromisoformat(row["shipped_at"])),
            )
            for row in getattr(self.order, "shipment_rows", None) or []
        ]

    @property
    def _card(self) -> str:
        payment = self.latest_payment
        if payment is None or not payment.card_last4:
            return ""
        return f"{payment.card_brand} ending {payment.card_last4}"


DONE, CURRENT, UPCOMING, FAILED = "done", "current", "upcoming", "failed"


@dataclass(frozen=True)
class TimelineStep:
    title: str
    detail: str = ""
    when: datetime | None = None
    state: str = UPCOMING


@dataclass(frozen=True)
class ShipmentView:
    vendor_name: str
    carrier: str
    tracking_number: str
    shipped_at: datetime


def access_order_state(*, user: User, pk: int, with_lines: bool = False) -> OrderState:
    """The user's own order (anyone else's is a 404) as one consistent state, with its lines
    (their vendors and products, for the pictures) when `with_lines` (the full page; its live
    fragment needs none)."""
    queryset = _with_state(Order.objects.filter(customer_id=user.pk))
    if with_lines:
        lines = OrderLine.objects.select_related("vendor", "product").order_by("vendor__name", "id")
        queryset = queryset.prefetch_related(Prefetch("lines", queryset=lines))
    return OrderState(get_object_or_404(queryset, pk=pk))


def get_order_state(*, order_id: int) -> OrderState | None:
    """An order as one consistent state, for its live fragment (None if there is no such order)."""
    order = _with_state(Order.objects.filter(pk=order_id)).first()
    return None if order is None else OrderState(order)


class ListSubquery(ArraySubquery):
    """The values of a one-column subquery (aliased `item`) as a list: PostgreSQL's ARRAY(...)
    or, on the embedded SQLite, a JSON array of them (`json_items`: the values are JSON
    objects, kept as objects rather than strings)."""

    def __init__(self, queryset: QuerySet[Any], *, json_items: bool = False, **extra: Any):
        super().__init__(queryset, **extra)
        self.json_items = json_items

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        template = (
            "(SELECT json_group_array(json(items.item)) FROM (%(subquery)s) AS items)"
            if self.json_items
            else "(SELECT json_group_array(items.item) FROM (%(subquery)s) AS items)"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def get_db_converters(self, connection: Any) -> list[Any]:
        if connection.vendor == "sqlite":
            return [lambda value, expression, connection: json.loads(value) if value else []]
        return super().get_db_converters(connection)


def _aware(moment: datetime) -> datetime:
    """A shipment's time as read from a JSON object: SQLite's has no offset (it stores UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _with_state(queryset: QuerySet[Order]) -> QuerySet[StatedOrder]:
    """Orders with `latest_payment` (or None) and `live_seq` read in the order's own statement.

    A capture or a decline changes the order and its payment in one commit, and an event's
    number commits with its change: separate queries (in READ COMMITTED, as the event
    dispatcher's transaction is) could straddle such a commit and show a paid order as awaiting
    payment. The timeline's shops (`shop_names`) and shipments (`shipment_rows`) are read in
    the same statement, so a shop's shipment shows with the event that recorded it.
    """
    latest_payment = Payment.objects.filter(order=OuterRef("pk")).order_by("-created_at", "-id")
    sequence = AggregateSequence.objects.filter(
        aggregate_type=Order._meta.label_lower,
        aggregate_id=Cast(OuterRef("pk"), CharField()),
    )
    shops = (
        OrderLine.objects.filter(order=OuterRef("pk"))
        .exclude(status=LineStatus.CANCELLED)
        .values(item=F("vendor__name"))
        .distinct()
        .order_by("vendor__name")
    )
    shipments = (
        Shipment.objects.filter(order=OuterRef("pk"))
        .order_by("shipped_at", "id")
        .values(
            item=JSONObject(
                vendor=F("vendor__name"),
                carrier=F("carrier"),
                tracking_number=F("tracking_number"),
                shipped_at=F("shipped_at"),
            )
        )
    )
    # The stubs do not know that select_related() may follow a FilteredRelation alias.
    return queryset.annotate(  # type: ignore[misc]
        latest_payment=FilteredRelation(
            "payments",
            condition=Q(payments__pk=Subquery(latest_payment.values("pk")[:1])),
        ),
        live_seq=Coalesce(Subquery(sequence.values("last_sequence")[:1]), 0),
        shop_names=ListSubquery(shops),
        shipment_rows=ListSubquery(shipments, json_items=True),
    ).select_related("latest_payment")
