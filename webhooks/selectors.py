"""Reads of the webhooks area, always for one vendor: never another vendor's rows."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from shop.models import Vendor
from webhooks.models import Delivery, DeliveryState, Endpoint

LOG_FIELDS = (
    "id",
    "uuid",
    "vendor_id",
    "endpoint_id",
    "endpoint__url",
    "event_type",
    "state",
    "attempts",
    "next_attempt_at",
    "last_attempt_at",
    "status_code",
    "response_excerpt",
    "error",
    "duration_ms",
    "created_at",
    "delivered_at",
)


def list_endpoints(*, vendor: Vendor) -> QuerySet[Endpoint]:
    return Endpoint.objects.filter(vendor=vendor).order_by("-created_at", "-id")


def access_endpoint(*, vendor: Vendor, pk: int) -> Endpoint:
    """The vendor's endpoint, else 404."""
    return get_object_or_404(Endpoint, pk=pk, vendor=vendor)


def list_deliveries(
    *, vendor: Vendor, endpoint_id: int | None = None, state: str = ""
) -> QuerySet[Delivery]:
    """The vendor's delivery log, newest first, with each row's endpoint URL in one query
    (the payload is left out: the log does not show it)."""
    deliveries = Delivery.objects.filter(vendor=vendor)
    if endpoint_id is not None:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    if state in DeliveryState.values:
        deliveries = deliveries.filter(state=state)
    return deliveries.select_related("endpoint").only(*LOG_FIELDS).order_by("-id")


def access_delivery(*, vendor: Vendor, pk: int) -> Delivery:
    return get_object_or_404(Delivery.objects.select_related("endpoint"), pk=pk, vendor=vendor)
