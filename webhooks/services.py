"""Every write of the webhooks area: a vendor's endpoints (add, rotate the secret, disable,
delete, send a test event), retrying a delivery, the deliveries an order event makes, and
the purge of old ones.

Vendor actions lock the endpoint (or delivery) row of that vendor, are audited, and take
`acting_user=`. Deliveries are enqueued in the same transaction that creates them.
"""

import datetime
import secrets as secrets_module
import uuid
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from project.audit import services as audit
from project.audit.models import Action
from project.errors import DomainError
from project.housekeeping import delete_in_batches, older_than
from shop.models import Order, OrderLine, Vendor
from webhooks import delivery as delivery_engine
from webhooks import transport
from webhooks.models import SUBSCRIBABLE, Delivery, DeliveryState, Endpoint, EventType

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
# How long the old secret still signs after a rotation.
ROTATION_OVERLAP = datetime.timedelta(hours=24)
MAX_ENDPOINTS = 10
MAX_URL_LENGTH = 500


class WebhookError(DomainError):
    code = "webhook_error"


class InvalidEndpoint(WebhookError):
    code = "invalid_endpoint"

    def __init__(self, message: str, *, field: str = "url") -> None:
        super().__init__(message)
        self.field = field


class TooManyEndpoints(WebhookError):
    code = "too_many_endpoints"


class EndpointDisabled(WebhookError):
    code = "endpoint_disabled"


class DeliveryInFlight(WebhookError):
    code = "delivery_in_flight"


def new_secret() -> str:
    return SECRET_PREFIX + secrets_module.token_urlsafe(32)


def _clean(*, url: str, events: Iterable[str]) -> tuple[str, list[str]]:
    url = (url or "").strip()
    if not url:
        raise InvalidEndpoint("Enter the URL of your endpoint.")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidEndpoint("The URL is too long (500 characters at most).")
    try:
        transport.check_url(url)
    except transport.UnsafeDestination as exc:
        raise InvalidEndpoint(str(exc)) from None
    chosen = list(dict.fromkeys(events))
    unknown = [event for event in chosen if event not in SUBSCRIBABLE]
    if unknown:
        raise InvalidEndpoint(f"Unknown event type {unknown[0]!r}.", field="events")
    if not chosen:
        raise InvalidEndpoint("Choose at least one event.", field="events")
    return url, [str(event) for event in SUBSCRIBABLE if event in chosen]


def create_endpoint(
    *,
    vendor: Vendor,
    url: str,
    events: Iterable[str],
    description: str = "",
    acting_user: User | None,
) -> Endpoint:
    """Add an endpoint with a new secret (the caller shows `endpoint.secret` once). At most
    MAX_ENDPOINTS per vendor: the vendor row is locked while counting."""
    url, chosen = _clean(url=url, events=events)
    with transaction.atomic():
        locked = Vendor.objects.select_for_update().get(pk=vendor.pk)
        if Endpoint.objects.filter(vendor=locked).count() >= MAX_ENDPOINTS:
            raise TooManyEndpoints(f"A shop may have {MAX_ENDPOINTS} webhook endpoints at most.")
        endpoint = Endpoint.objects.create(
            vendor=locked,
            url=url,
            events=chosen,
            description=description.strip()[:200],
            secret=new_secret(),
        )
        audit.record(
            Action.WEBHOOK_ENDPOINT_ADDED,
            actor=acting_user,
            vendor=locked,
            target=endpoint,
            metadata={"url": url, "events": chosen},
        )
    return endpoint


def _lock_endpoint(*, vendor: Vendor, endpoint_id: int) -> Endpoint:
    return Endpoint.objects.select_for_update().get(pk=endpoint_id, vendor=vendor)


def rotate_secret(*, vendor: Vendor, endpoint_id: int, acting_user: User | None) -> Endpoint:
    """A new secret (shown once); the old one keeps signing beside it for ROTATION_OVERLAP."""
    with transaction.atomic():
        endpoint = _lock_endpoint(vendor=vendor, endpoint_id=endpoint_id)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
        endpoint.secret = new_secret()
        endpoint.save()
        audit.record(
            Action.WEBHOOK_SECRET_ROTATED,
            actor=acting_user,
            vendor=vendor,
            target=endpoint,
            changes={"secret": ["", ""]},
        )
    return endpoint


def set_endpoint_active(
    *, vendor: Vendor, endpoint_id: int, active: bool, acting_user: User | None
) -> Endpoint:
    """Disable (no new deliveries; pending ones fail when due) or enable again."""
    with transaction.atomic():
        endpoint = _lock_endpoint(vendor=vendor, endpoint_id=endpoint_id)
        if endpoint.is_active != active:
            endpoint.is_active = active
            endpoint.save(update_fields=["is_active", "updated_at"])
            audit.record(
                Action.WEBHOOK_ENDPOINT_ENABLED if active else Action.WEBHOOK_ENDPOINT_DISABLED,
                actor=acting_user,
                vendor=vendor,
                target=endpoint,
                changes={"is_active": [not active, active]},
            )
    return endpoint


def delete_endpoint(*, vendor: Vendor, endpoint_id: int, acting_user: User | None) -> None:
    """Delete the endpoint and its delivery log (a queued attempt then finds nothing)."""
    with transaction.atomic():
        endpoint = _lock_endpoint(vendor=vendor, endpoint_id=endpoint_id)
        audit.record(
            Action.WEBHOOK_ENDPOINT_DELETED,
            actor=acting_user,
            vendor=vendor,
            target=endpoint,
            metadata={"url": endpoint.url},
        )
        endpoint.delete()


def send_test_event(*, vendor: Vendor, endpoint_id: int, acting_user: User | None) -> Delivery:
    """Queue a `ping` delivery to the endpoint now (signed like any event)."""
    with transaction.atomic():
        endpoint = _lock_endpoint(vendor=vendor, endpoint_id=endpoint_id)
        if not endpoint.is_active:
            raise EndpointDisabled("Enable the endpoint before sending it a test event.")
        event_id = uuid.uuid4()
        test = _create_delivery(
            endpoint=endpoint,
            event_id=event_id,
            event_type=EventType.PING,
            data={"message": "A test event from Bazaar.", "vendor_id": vendor.pk},
        )
        audit.record(
            Action.WEBHOOK_TEST_SENT,
            actor=acting_user,
            vendor=vendor,
            target=endpoint,
            metadata={"delivery": str(test.uuid)},
        )
    return test


def retry_delivery(*, vendor: Vendor, delivery_id: int, acting_user: User | None) -> Delivery:
    """Make a pending or failed delivery due now and enqueue it (a failed one gets one more
    attempt). Refused while an attempt is in flight; a delivered one is sent again."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .get(pk=delivery_id, vendor=vendor)
        )
        if delivery.state == DeliveryState.SENDING:
            raise DeliveryInFlight("This delivery is being sent right now.")
        if not delivery.endpoint.is_active:
            raise EndpointDisabled("Enable the endpoint before retrying its deliveries.")
        previous = delivery.state
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["state", "next_attempt_at"])
        delivery_engine.schedule(delivery)
        audit.record(
            Action.WEBHOOK_DELIVERY_RETRIED,
            actor=acting_user,
            vendor=vendor,
            target=delivery.endpoint,
            metadata={"delivery": str(delivery.uuid), "was": previous},
        )
    delivery.refresh_from_db()
    return delivery


def _payload(*, event_id: uuid.UUID, event_type: str, data: dict) -> dict:
    return {
        "id": str(event_id),
        "type": str(event_type),
        "created": timezone.now().isoformat(),
        "data": data,
    }


def _create_delivery(
    *, endpoint: Endpoint, event_id: uuid.UUID, event_type: str, data: dict
) -> Delivery:
    created = Delivery.objects.create(
        vendor_id=endpoint.vendor_id,
        endpoint=endpoint,
        event_id=event_id,
        event_type=event_type,
        payload=_payload(event_id=event_id, event_type=event_type, data=data),
        next_attempt_at=timezone.now(),
    )
    delivery_engine.schedule(created)
    return created


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _order_data(*, order: Order, lines: list[OrderLine], vendor_id: int, reason: str) -> dict:
    """The vendor's view of the order: its own lines, its subtotal, where to ship."""
    summary: dict[str, object] = {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "vendor_subtotal": _money(sum((line.line_total for line in lines), Decimal("0"))),
        "lines": [
            {
                "id": line.pk,
                "product_id": line.product_id,
                "product_name": line.product_name,
                "quantity": line.quantity,
                "unit_price": _money(line.unit_price),
                "line_total": _money(line.line_total),
                "status": line.status,
            }
            for line in lines
        ],
        "shipping_address": {
            "name": order.ship_name,
            "line1": order.ship_line1,
            "line2": order.ship_line2,
            "city": order.ship_city,
            "postal_code": order.ship_postal_code,
            "country": order.ship_country,
        },
    }
    if reason:
        summary["cancel_reason"] = reason
    return {"vendor_id": vendor_id, "order": summary}


def record_order_event(
    *, event_id: uuid.UUID, event_type: str, order_id: int, reason: str = ""
) -> list[Delivery]:
    """One delivery per active endpoint subscribed to `event_type`, of each vendor with lines
    in the order, carrying only that vendor's lines; each enqueued. Idempotent: an event
    delivered again finds its deliveries (one per event and endpoint) and adds none."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return []
    lines_by_vendor: dict[int, list[OrderLine]] = {}
    for line in OrderLine.objects.filter(order=order).order_by("pk"):
        lines_by_vendor.setdefault(line.vendor_id, []).append(line)
    endpoints = [
        endpoint
        for endpoint in Endpoint.objects.filter(
            vendor_id__in=lines_by_vendor, is_active=True
        ).order_by("pk")
        if event_type in endpoint.events
    ]
    done = set(
        Delivery.objects.filter(event_id=event_id, endpoint__in=endpoints).values_list(
            "endpoint_id", flat=True
        )
    )
    created = []
    for endpoint in endpoints:
        if endpoint.pk in done:
            continue
        data = _order_data(
            order=order,
            lines=lines_by_vendor[endpoint.vendor_id],
            vendor_id=endpoint.vendor_id,
            reason=reason,
        )
        try:
            with transaction.atomic():
                created.append(
                    _create_delivery(
                        endpoint=endpoint, event_id=event_id, event_type=event_type, data=data
                    )
                )
        except IntegrityError:
            continue  # the same event handled concurrently: that one made the delivery
    return created


def purge_old_deliveries(*, dry_run: bool = False) -> int:
    """Delete deliveries delivered or failed more than PURGE_WEBHOOK_DELIVERIES_AFTER_DAYS ago;
    pending and sending ones stay."""
    old = Delivery.objects.filter(
        state__in=[DeliveryState.DELIVERED, DeliveryState.FAILED],
        created_at__lt=older_than(settings.PURGE_WEBHOOK_DELIVERIES_AFTER_DAYS),
    )
    return delete_in_batches(old, dry_run=dry_run)
