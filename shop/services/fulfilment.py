"""A vendor fulfilling its part of an order: shipping its lines, cancelling one before shipping.

Both services lock the order row first, then the vendor's lines, so a vendor's two
members (or two vendors of one order) cannot race each other into a wrong order status.
"""

from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from backoffice import tasks
from project import events, page_cache
from project.audit import services as audit
from project.db import scope
from project.errors import DomainError
from shop import events as shop_events
from shop.models import (
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Shipment,
    StockAdjustment,
    StockReason,
    Vendor,
)
from shop.services import orders as order_services
from shop.services import refunds as refund_services

CARRIER_MAX_LENGTH = 60
TRACKING_MAX_LENGTH = 80
REASON_MAX_LENGTH = 200


class FulfilmentError(DomainError):
    code = "fulfilment_error"


class OrderNotFulfillable(FulfilmentError):
    code = "order_not_fulfillable"


class NothingToShip(FulfilmentError):
    code = "nothing_to_ship"


class LineNotFound(FulfilmentError):
    code = "line_not_found"


class IllegalLineTransition(FulfilmentError):
    code = "illegal_transition"


def _lock_paid_order(*, order: Order, doing: str) -> Order:
    locked = Order.objects.select_for_update().get(pk=order.pk)
    if locked.status != OrderStatus.PAID:
        raise OrderNotFulfillable(
            f"Order {locked.number} is {locked.get_status_display().lower()}; "
            f"only paid orders can be {doing}."
        )
    return locked


def _settle_order_status(*, order: Order) -> None:
    """Move the order on once none of its lines waits: shipped if any shipped, else cancelled.

    The order's state is every vendor's business: read in the system scope, so a vendor's
    request (row-level security shows it only its own lines) still sees the other lines."""
    with scope.system_scope():
        statuses = set(OrderLine.objects.filter(order=order).values_list("status", flat=True))
        if LineStatus.PENDING in statuses:
            return
        if LineStatus.SHIPPED in statuses:
            order_services.transition_order(order=order, to=OrderStatus.SHIPPED)
        else:
            order_services.transition_order(
                order=order,
                to=OrderStatus.CANCELLED,
                reason="Every item was cancelled by the seller.",
            )


def ship_vendor_lines(
    *,
    order: Order,
    vendor: Vendor,
    carrier: str,
    tracking_number: str,
    acting_user: User | None,
    line_ids: list[int] | None = None,
    base_url: str | None = None,
) -> Shipment:
    """Hand this vendor's pending lines (or the chosen ones) to a carrier in one shipment.

    Locks the order, then the lines. The order becomes shipped when no line of any vendor
    is left to ship. Records OrderShipped (its handler emails the shopper the carrier and
    tracking number).
    Raises OrderNotFulfillable, NothingToShip, LineNotFound or IllegalLineTransition and
    then changes nothing.
    """
    carrier = carrier.strip()
    tracking_number = tracking_number.strip()
    if not carrier or not tracking_number:
        raise FulfilmentError("Give the carrier and the tracking number.")
    if len(carrier) > CARRIER_MAX_LENGTH or len(tracking_number) > TRACKING_MAX_LENGTH:
        raise FulfilmentError("The carrier or the tracking number is too long.")
    with transaction.atomic():
        locked = _lock_paid_order(order=order, doing="shipped")
        lines = OrderLine.objects.select_for_update().filter(order=locked, vendor=vendor)
        if line_ids is not None:
            chosen = {line.pk: line for line in lines.filter(pk__in=line_ids)}
            missing = set(line_ids) - set(chosen)
            if missing:
                raise LineNotFound("That item is not part of your order.")
            for line in chosen.values():
                if line.status != LineStatus.PENDING:
                    raise IllegalLineTransition(
                        f"{line.product_name} is {line.get_status_display().lower()} "
                        "and cannot be shipped."
                    )
            to_ship = list(chosen.values())
        else:
            to_ship = list(lines.filter(status=LineStatus.PENDING))
        if not to_ship:
            raise NothingToShip(f"Nothing of order {locked.number} is left for you to ship.")
        shipment = Shipment.objects.create(
            order=locked,
            vendor=vendor,
            carrier=carrier,
            tracking_number=tracking_number,
            shipped_by=acting_user,
        )
        OrderLine.objects.filter(pk__in=[line.pk for line in to_ship]).update(
            status=LineStatus.SHIPPED, shipment=shipment
        )
        audit.record(
            "order.lines_shipped",
            actor=acting_user,
            vendor=vendor,
            target=locked,
            changes={
                f"line {line.pk} status": [line.status, LineStatus.SHIPPED] for line in to_ship
            },
            metadata={"shipment_id": shipment.pk, "carrier": carrier},
        )
        _settle_order_status(order=locked)
        events.record(
            shop_events.OrderShipped(
                order_id=locked.pk,
                shipment_id=shipment.pk,
                vendor_id=vendor.pk,
                carrier=carrier,
                tracking_number=tracking_number,
                order_status=locked.status,
                base_url=base_url,
            ),
            aggregate=locked,
        )
    order.status = locked.status
    return shipment


def cancel_vendor_line(
    *,
    order: Order,
    vendor: Vendor,
    line_id: int,
    acting_user: User | None,
    reason: str,
    base_url: str | None = None,
) -> OrderLine:
    """Cancel one of this vendor's lines before it ships.

    Locks the order, the line and its product; returns the stock (recorded as a RETURN
    adjustment) and requests a refund of the line. When every line of the order is
    cancelled, the order is cancelled; when the rest has shipped, it is shipped.
    Raises OrderNotFulfillable, LineNotFound, IllegalLineTransition or NothingToRefund
    and then changes nothing.
    """
    reason = reason.strip()
    if not reason:
        raise FulfilmentError("Say why the item is cancelled; the shopper is told.")
    reason = reason[:REASON_MAX_LENGTH]
    with transaction.atomic():
        locked = _lock_paid_order(order=order, doing="changed")
        line = (
            OrderLine.objects.select_for_update()
            .filter(pk=line_id, order=locked, vendor=vendor)
            .first()
        )
        if line is None:
            raise LineNotFound("That item is not part of your order.")
        if line.status != LineStatus.PENDING:
            raise IllegalLineTransition(
                f"{line.product_name} is {line.get_status_display().lower()} "
                "and cannot be cancelled."
            )
        line.status = LineStatus.CANCELLED
        line.cancelled_at = timezone.now()
        line.cancel_reason = reason
        line.save(update_fields=["status", "cancelled_at", "cancel_reason"])
        audit.record(
            "order.line_cancelled",
            actor=acting_user,
            vendor=vendor,
            target=line,
            changes={"status": [LineStatus.PENDING, LineStatus.CANCELLED]},
            metadata={"order": locked.number, "reason": reason},
        )
        if line.product_id is not None:
            _return_stock(
                line=line,
                product_id=line.product_id,
                order=locked,
                vendor=vendor,
                acting_user=acting_user,
            )
        refund_services.request_refund(
            order=locked, lines=[line], vendor=vendor, acting_user=acting_user, reason=reason
        )
        _settle_order_status(order=locked)
        transaction.on_commit(
            partial(tasks.send_line_cancelled_email.enqueue, line_id=line.pk, base_url=base_url)
        )
    order.status = locked.status
    return line


def _return_stock(
    *, line: OrderLine, product_id: int, order: Order, vendor: Vendor, acting_user: User | None
) -> None:
    updated = Product.objects.filter(pk=product_id).update(
        stock=F("stock") + line.quantity, version=F("version") + 1
    )
    if not updated:
        return
    slug, stock_after = Product.objects.filter(pk=product_id).values_list("slug", "stock").get()
    page_cache.stock_changed(slug=slug, before=stock_after - line.quantity, after=stock_after)
    StockAdjustment.objects.create(
        vendor=vendor,
        product_id=product_id,
        change=line.quantity,
        stock_after=stock_after,
        reason=StockReason.RETURN,
        note=f"Order {order.number}: item cancelled",
        created_by=acting_user,
    )
