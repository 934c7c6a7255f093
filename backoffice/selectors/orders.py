"""A vendor's view of orders: only orders holding its lines, and only its part of them.

Orders awaiting payment are not shown: nothing is to be done until the shopper has paid,
and most of them are cancelled by a failed payment. An order cancelled before it was ever
paid is left out for the same reason; one cancelled after payment (e.g. every item
cancelled by its sellers) stays, so the vendor can see what happened.
"""

import datetime
from typing import TYPE_CHECKING, TypedDict

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.http import Http404
from django.shortcuts import get_object_or_404

from shop.models import (
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    Shipment,
    Vendor,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _VendorParts(TypedDict):
    vendor_lines: list[OrderLine]
    vendor_shipments: list[Shipment]


# An order as access_vendor_order gives it: with only this vendor's lines and shipments
# (a lazy alias: WithAnnotations exists for the type checker only).
type VendorOrder = WithAnnotations[Order, _VendorParts]

FULFILMENT_ORDER_STATUSES = (
    OrderStatus.PAID,
    OrderStatus.SHIPPED,
    OrderStatus.COMPLETED,
    OrderStatus.REFUNDED,
)
FULFILMENT_STATES = ("to_ship", "shipped", "cancelled")


def _visible_orders(*, vendor: Vendor) -> QuerySet[Order]:
    has_vendor_lines = Exists(OrderLine.objects.filter(order=OuterRef("pk"), vendor=vendor))
    was_paid = Exists(
        Payment.objects.filter(
            order=OuterRef("pk"), status__in=[PaymentStatus.CAPTURED, PaymentStatus.REFUNDED]
        )
    )
    return Order.objects.filter(has_vendor_lines).filter(
        Q(status__in=FULFILMENT_ORDER_STATUSES) | (Q(status=OrderStatus.CANCELLED) & was_paid)
    )


def list_vendor_orders(
    *,
    vendor: Vendor,
    status: str | None = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> QuerySet[Order]:
    """Orders with this vendor's lines, newest first, in one query, each annotated with the
    vendor's `vendor_item_count`, `vendor_subtotal` and `fulfilment` ("to_ship", "shipped"
    or "cancelled"). `status` filters on `fulfilment`; dates on the day the order was placed.
    """
    mine = Q(lines__vendor=vendor)
    orders = (
        _visible_orders(vendor=vendor)
        .select_related("customer")
        .annotate(
            vendor_item_count=Sum("lines__quantity", filter=mine),
            vendor_subtotal=Sum("lines__line_total", filter=mine),
            vendor_pending=Count("lines", filter=mine & Q(lines__status=LineStatus.PENDING)),
            vendor_shipped=Count("lines", filter=mine & Q(lines__status=LineStatus.SHIPPED)),
        )
        .annotate(
            fulfilment=Case(
                When(status=OrderStatus.PAID, vendor_pending__gt=0, then=Value("to_ship")),
                When(vendor_shipped__gt=0, then=Value("shipped")),
                default=Value("cancelled"),
                output_field=CharField(),
            )
        )
        .order_by("-created_at", "-id")
    )
    if status in FULFILMENT_STATES:
        orders = orders.filter(fulfilment=status)
    if date_from is not None:
        orders = orders.filter(created_at__date__gte=date_from)
    if date_to is not None:
        orders = orders.filter(created_at__date__lte=date_to)
    return orders


class OrderCounts(TypedDict):
    total: int
    to_ship: int


def count_vendor_orders(*, vendor: Vendor) -> OrderCounts:
    """How many orders `list_vendor_orders(vendor=vendor)` lists, and how many of them are
    "to_ship", in one plain query: the list's per-order sums are not needed to count it (a
    count of the annotated list groups every order and costs milliseconds to compile)."""
    to_ship = Q(status=OrderStatus.PAID) & Q(
        Exists(
            OrderLine.objects.filter(order=OuterRef("pk"), vendor=vendor, status=LineStatus.PENDING)
        )
    )
    counts = _visible_orders(vendor=vendor).aggregate(
        total=Count("pk"), to_ship=Count("pk", filter=to_ship)
    )
    return {"total": counts["total"], "to_ship": counts["to_ship"]}


def access_vendor_order(*, vendor: Vendor, pk: int) -> VendorOrder:
    """One order this vendor may fulfil, with the shopper; anything else is a 404.

    `vendor_lines` (with their shipment and refunds) and `vendor_shipments` are prefetched
    and hold this vendor's rows only.
    """
    queryset = (
        _visible_orders(vendor=vendor)
        .select_related("customer")
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=OrderLine.objects.filter(vendor=vendor)
                .select_related("shipment", "product")
                .prefetch_related("refunds")
                .order_by("id"),
                to_attr="vendor_lines",
            ),
            Prefetch(
                "shipments",
                queryset=Shipment.objects.filter(vendor=vendor)
                .select_related("shipped_by")
                .order_by("shipped_at", "id"),
                to_attr="vendor_shipments",
            ),
        )
    )
    return get_object_or_404(queryset, pk=pk)


def access_vendor_line(*, order: VendorOrder, line_pk: int) -> OrderLine:
    """One of the vendor's lines on an order fetched with access_vendor_order; else a 404."""
    for line in order.vendor_lines:
        if line.pk == line_pk:
            return line
    raise Http404("No such item on this order.")


def list_vendor_orders_with_lines(
    *,
    vendor: Vendor,
    status: str | None = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> QuerySet[Order]:
    """list_vendor_orders with this vendor's lines prefetched as `vendor_lines` (one more
    query for a whole page): the API lists each order's part, not only its totals."""
    return list_vendor_orders(
        vendor=vendor, status=status, date_from=date_from, date_to=date_to
    ).prefetch_related(
        Prefetch(
            "lines",
            queryset=OrderLine.objects.filter(vendor=vendor).order_by("id"),
            to_attr="vendor_lines",
        )
    )
