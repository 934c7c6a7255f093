"""The vendor's webhooks: its endpoints (add, list, delete) and the delivery log (cursor
pages, retry now). Vendor-scoped: every call runs in the vendor's row-level-security scope,
and another vendor's endpoint or delivery is a 404. docs/webhooks.md."""

import datetime
from typing import Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from api import auth, errors, idempotency, scoping
from api.pagination import DEFAULT_LIMIT, CursorPage, keyset_page
from backoffice.selectors import team as team_selectors
from shop.models import Vendor
from webhooks import selectors, services
from webhooks.models import Delivery, Endpoint

router = Router(tags=["webhooks"])

EventName = Literal["order.paid", "order.cancelled"]


class EndpointIn(Schema):
    url: str = Field(max_length=services.MAX_URL_LENGTH, examples=["https://erp.example/bazaar"])
    events: list[EventName] = Field(min_length=1)
    description: str = Field("", max_length=200)


class EndpointOut(Schema):
    id: int
    url: str
    description: str
    events: list[str]
    is_active: bool
    secret_hint: str
    created_at: datetime.datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="Shown this once: keep it to check the signatures.")


class DeliveryOut(Schema):
    id: int
    delivery_id: str = Field(description="The Bazaar-Delivery header the receiver saw")
    endpoint_id: int
    endpoint_url: str
    event: str
    state: str
    attempts: int
    status_code: int | None
    response_excerpt: str
    error: str
    next_attempt_at: datetime.datetime | None
    last_attempt_at: datetime.datetime | None
    delivered_at: datetime.datetime | None
    created_at: datetime.datetime


def _endpoint_out(endpoint: Endpoint) -> dict:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
        "secret_hint": endpoint.secret_hint,
        "created_at": endpoint.created_at,
    }


def _delivery_out(delivery: Delivery) -> dict:
    return {
        "id": delivery.pk,
        "delivery_id": str(delivery.uuid),
        "endpoint_id": delivery.endpoint_id,
        "endpoint_url": delivery.endpoint.url,
        "event": delivery.event_type,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "status_code": delivery.status_code,
        "response_excerpt": delivery.response_excerpt,
        "error": delivery.error,
        "next_attempt_at": delivery.next_attempt_at,
        "last_attempt_at": delivery.last_attempt_at,
        "delivered_at": delivery.delivered_at,
        "created_at": delivery.created_at,
    }


async def _owner_vendor(request: HttpRequest, *, write: bool = False) -> Vendor:
    """The vendor, for its API keys and its owners: webhooks carry the shop's orders to
    another system, which the backoffice also leaves to owners."""
    vendor = await auth.vendor(request, write=write)
    who = auth.principal(request)
    if who.kind == "access" and not await sync_to_async(team_selectors.is_owner)(
        vendor=vendor, user=who.user
    ):
        raise errors.ApiError(
            403, "Only the shop's owners can manage its webhooks.", code="forbidden"
        )
    return vendor


def _list_endpoints(*, vendor: Vendor) -> list[dict]:
    return [_endpoint_out(endpoint) for endpoint in selectors.list_endpoints(vendor=vendor)]


@router.get(
    "/endpoints",
    response={200: list[EndpointOut], **errors.problems(401, 403)},
    summary="List your webhook endpoints",
)
async def list_endpoints(request: HttpRequest):
    vendor = await _owner_vendor(request)
    return await scoping.in_vendor_scope(vendor, _list_endpoints, vendor=vendor)


def _create_endpoint(*, vendor: Vendor, payload: EndpointIn, request: HttpRequest) -> dict:
    try:
        endpoint = services.create_endpoint(
            vendor=vendor,
            url=payload.url,
            events=payload.events,
            description=payload.description,
            acting_user=auth.principal(request).user,
        )
    except services.InvalidEndpoint as exc:
        raise errors.invalid_input(
            [{"field": exc.field, "message": exc.message}], detail=exc.message
        ) from None
    return {**_endpoint_out(endpoint), "secret": endpoint.secret}


@router.post(
    "/endpoints",
    response={201: EndpointCreated, **errors.problems(401, 403, 409, 422)},
    summary="Add a webhook endpoint (its secret is in this answer only)",
)
@idempotency.idempotent
async def create_endpoint(request: HttpRequest, payload: EndpointIn):
    vendor = await _owner_vendor(request, write=True)
    created = await scoping.in_vendor_scope(
        vendor, _create_endpoint, vendor=vendor, payload=payload, request=request
    )
    return Status(201, created)


def _delete_endpoint(*, vendor: Vendor, endpoint_id: int, request: HttpRequest) -> None:
    endpoint = selectors.access_endpoint(vendor=vendor, pk=endpoint_id)
    services.delete_endpoint(
        vendor=vendor, endpoint_id=endpoint.pk, acting_user=auth.principal(request).user
    )


@router.delete(
    "/endpoints/{endpoint_id}",
    response={204: None, **errors.problems(401, 403, 404)},
    summary="Delete a webhook endpoint and its delivery log",
)
async def delete_endpoint(request: HttpRequest, endpoint_id: int):
    vendor = await _owner_vendor(request, write=True)
    await scoping.in_vendor_scope(
        vendor, _delete_endpoint, vendor=vendor, endpoint_id=endpoint_id, request=request
    )
    return Status(204, None)


def _delivery_page(
    *, vendor: Vendor, endpoint_id: int | None, state: str, cursor: str | None, limit: int
) -> dict:
    queryset = selectors.list_deliveries(vendor=vendor, endpoint_id=endpoint_id, state=state)
    rows, next_cursor = keyset_page(queryset, cursor=cursor, limit=limit)
    return {"items": [_delivery_out(row) for row in rows], "next_cursor": next_cursor}


@router.get(
    "/deliveries",
    response={200: CursorPage[DeliveryOut], **errors.problems(400, 401, 403)},
    summary="Your webhook deliveries, newest first (cursor pages)",
)
async def list_deliveries(
    request: HttpRequest,
    endpoint_id: int | None = None,
    state: Literal["pending", "sending", "delivered", "failed"] | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
):
    vendor = await _owner_vendor(request)
    return await scoping.in_vendor_scope(
        vendor,
        _delivery_page,
        vendor=vendor,
        endpoint_id=endpoint_id,
        state=state or "",
        cursor=cursor,
        limit=limit,
    )


def _retry(*, vendor: Vendor, delivery_id: int, request: HttpRequest) -> dict:
    delivery = selectors.access_delivery(vendor=vendor, pk=delivery_id)
    retried = services.retry_delivery(
        vendor=vendor, delivery_id=delivery.pk, acting_user=auth.principal(request).user
    )
    return _delivery_out(retried)


@router.post(
    "/deliveries/{delivery_id}/retry",
    response={200: DeliveryOut, **errors.problems(401, 403, 404, 409)},
    summary="Send a webhook delivery again now",
)
@idempotency.idempotent
async def retry_delivery(request: HttpRequest, delivery_id: int):
    vendor = await _owner_vendor(request, write=True)
    return await scoping.in_vendor_scope(
        vendor, _retry, vendor=vendor, delivery_id=delivery_id, request=request
    )
