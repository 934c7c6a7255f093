"""Order reads, scoped to the shopper who placed them."""

from dataclasses import dataclass

from django.db.models import (
    CharField,
    Count,
    FilteredRelation,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Cast, Coalesce
from django.shortcuts import get_object_or_404

from accounts.models import User
from project.events.models import AggregateSequence
from shop.models import Order, OrderLine, OrderStatus, Payment, PaymentStatus
from shop.services import payments as payment_services

PAID_STATUSES = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED)


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

    order: Order

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


def access_order_state(*, user: User, pk: int, with_lines: bool = False) -> OrderState:
    """The user's own order (anyone else's is a 404) as one consistent state, with its lines
    (and their vendors) when `with_lines` (the full page; its live fragment needs none)."""
    queryset = _with_state(Order.objects.filter(customer_id=user.pk))
    if with_lines:
        lines = OrderLine.objects.select_related("vendor").order_by("vendor__name", "id")
        queryset = queryset.prefetch_related(Prefetch("lines", queryset=lines))
    return OrderState(get_object_or_404(queryset, pk=pk))


def get_order_state(*, order_id: int) -> OrderState | None:
    """An order as one consistent state, for its live fragment (None if there is no such order)."""
    order = _with_state(Order.objects.filter(pk=order_id)).first()
    return None if order is None else OrderState(order)


def _with_state(queryset: QuerySet[Order]) -> QuerySet[Order]:
    """Orders with `latest_payment` (or None) and `live_seq` read in the order's own statement.

    A capture or a decline changes the order and its payment in one commit, and an event's
    number commits with its change: separate queries (in READ COMMITTED, as the event
    dispatcher's transaction is) could straddle such a commit and show a paid order as awaiting
    payment. Shipments come after, but show only once the order is shipped, when no more can
    be added; lines never change.
    """
    latest_payment = Payment.objects.filter(order=OuterRef("pk")).order_by("-created_at", "-id")
    sequence = AggregateSequence.objects.filter(
        aggregate_type=Order._meta.label_lower,
        aggregate_id=Cast(OuterRef("pk"), CharField()),
    )
    return (
        queryset.annotate(
            latest_payment=FilteredRelation(
                "payments",
                condition=Q(payments__pk=Subquery(latest_payment.values("pk")[:1])),
            ),
            live_seq=Coalesce(Subquery(sequence.values("last_sequence")[:1]), 0),
        )
        .select_related("latest_payment")
        .prefetch_related("shipments")
    )
