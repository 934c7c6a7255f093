"""Permission rows of the webhooks endpoints. The endpoint and delivery in a row's path are
vendor A's, made when the row runs (B must get 404 for them)."""

import uuid

from tests.integration.api.permissions.rows import Row
from webhooks import services
from webhooks.models import Delivery, Endpoint

BASE = "/api/v1/vendor/webhooks"
# A closed local port: an attempt the row triggers fails at once (tests allow local addresses).
URL = "http://127.0.0.1:9/hooks"


def vendor_only(ok: int, *, vendor_b: int | None = None) -> dict[str, int]:
    return {
        "anonymous": 401,
        "shopper": 403,
        "vendor_a": ok,
        "vendor_b": ok if vendor_b is None else vendor_b,
        "staff": 403,
    }


def a_endpoint(world) -> Endpoint:
    return services.create_endpoint(
        vendor=world.a.vendor, url=URL, events=["order.paid"], acting_user=world.a.member
    )


def a_delivery(world) -> Delivery:
    endpoint = a_endpoint(world)
    return Delivery.objects.create(
        vendor=world.a.vendor,
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event_type="order.paid",
        payload={"id": "evt"},
        state="failed",
        attempts=8,
    )


ROWS: list[Row] = [
    Row("GET", f"{BASE}/endpoints", vendor_only(200)),
    Row(
        "POST",
        f"{BASE}/endpoints",
        vendor_only(201),
        body=lambda world: {"url": "https://erp.example/bazaar", "events": ["order.paid"]},
    ),
    Row(
        "DELETE",
        f"{BASE}/endpoints/{{endpoint_id}}",
        vendor_only(204, vendor_b=404),
        params=lambda world: {"endpoint_id": a_endpoint(world).pk},
    ),
    Row("GET", f"{BASE}/deliveries", vendor_only(200)),
    Row(
        "POST",
        f"{BASE}/deliveries/{{delivery_id}}/retry",
        vendor_only(200, vendor_b=404),
        params=lambda world: {"delivery_id": a_delivery(world).pk},
    ),
]
