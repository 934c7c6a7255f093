"""The webhooks API as a vendor's integration uses it: add an endpoint (its secret once),
list, page through the delivery log, retry a delivery, delete; bad input changes nothing."""

import json
import uuid

import pytest

from project.audit.models import AuditEntry
from shop.models import VendorMembership
from tests import factories
from tests.integration.api.conftest import bearer
from webhooks.models import Delivery, DeliveryState, Endpoint

BASE = "/api/v1/vendor/webhooks"
CLOSED_PORT_URL = "http://127.0.0.1:9/hooks"


def post(client, path, body, user, **headers):
    return client.post(
        path, json.dumps(body), content_type="application/json", **bearer(user), **headers
    )


def test_adding_an_endpoint_shows_its_secret_once(api_client, api_world):
    member = api_world.a.member

    response = post(
        api_client,
        f"{BASE}/endpoints",
        {
            "url": "https://erp.example/bazaar",
            "events": ["order.paid", "order.cancelled"],
            "description": "ERP",
        },
        member,
    )

    assert response.status_code == 201
    body = response.json()
    endpoint = Endpoint.objects.get()
    assert body["secret"] == endpoint.secret
    assert body["secret"].startswith("whsec_")
    assert body["url"] == "https://erp.example/bazaar"
    assert body["events"] == ["order.paid", "order.cancelled"]
    assert endpoint.vendor == api_world.a.vendor
    listed = api_client.get(f"{BASE}/endpoints", **bearer(member)).json()
    assert [item["id"] for item in listed] == [endpoint.pk]
    assert "secret" not in listed[0]
    assert listed[0]["secret_hint"] == endpoint.secret_hint
    assert endpoint.secret not in json.dumps(listed)
    entry = AuditEntry.objects.get(action="webhook.endpoint_added")
    assert (entry.actor_id, entry.vendor_id) == (member.pk, api_world.a.vendor.pk)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://erp.example/x", "events": ["order.paid"]}, "url"),
        ({"url": "", "events": ["order.paid"]}, "url"),
        ({"url": "https://erp.example/x", "events": []}, "events"),
        ({"url": "https://erp.example/x", "events": ["order.refunded"]}, "events"),
        ({"events": ["order.paid"]}, "url"),
    ],
)
def test_bad_input_is_a_422_with_field_errors_and_changes_nothing(
    api_client, api_world, body, field
):
    response = post(api_client, f"{BASE}/endpoints", body, api_world.a.member)

    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert {error["field"].split(".")[0] for error in problem["errors"]} == {field}, problem
    assert Endpoint.objects.count() == 0
    assert not AuditEntry.objects.filter(action__startswith="webhook.").exists()


def test_production_refuses_a_private_address(api_client, api_world, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEBHOOKS_REQUIRE_HTTPS = True

    response = post(
        api_client,
        f"{BASE}/endpoints",
        {"url": "https://169.254.169.254/latest", "events": ["order.paid"]},
        api_world.a.member,
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "url", "message": "The URL must name a public host."}
    ]
    assert Endpoint.objects.count() == 0


def endpoint_of(world_vendor, url=CLOSED_PORT_URL) -> Endpoint:
    return Endpoint.objects.create(
        vendor=world_vendor, url=url, events=["order.paid"], secret="whsec_test"
    )


def deliveries_for(endpoint: Endpoint, count: int, **fields) -> list[Delivery]:
    return [
        Delivery.objects.create(
            vendor=endpoint.vendor,
            endpoint=endpoint,
            event_id=uuid.uuid4(),
            event_type="order.paid",
            payload={},
            **fields,
        )
        for _ in range(count)
    ]


def test_the_delivery_log_pages_newest_first_and_shows_only_the_vendors_own(
    api_client, api_world, django_assert_max_num_queries
):
    mine = deliveries_for(endpoint_of(api_world.a.vendor), 5, state=DeliveryState.DELIVERED)
    deliveries_for(endpoint_of(api_world.b.vendor), 3)
    headers = bearer(api_world.a.member)

    with django_assert_max_num_queries(8):
        first = api_client.get(f"{BASE}/deliveries", {"limit": 3}, **headers)
    second = api_client.get(
        f"{BASE}/deliveries", {"limit": 3, "cursor": first.json()["next_cursor"]}, **headers
    )

    assert first.status_code == 200
    ids = [item["id"] for item in first.json()["items"] + second.json()["items"]]
    assert ids == [delivery.pk for delivery in reversed(mine)]
    assert second.json()["next_cursor"] is None
    item = first.json()["items"][0]
    assert item["delivery_id"] == str(mine[-1].uuid)
    assert item["endpoint_url"] == CLOSED_PORT_URL
    assert item["state"] == "delivered"


def test_the_delivery_log_filters_by_state_and_refuses_a_forged_cursor(api_client, api_world):
    endpoint = endpoint_of(api_world.a.vendor)
    [failed] = deliveries_for(endpoint, 1, state=DeliveryState.FAILED)
    deliveries_for(endpoint, 2, state=DeliveryState.DELIVERED)
    headers = bearer(api_world.a.member)

    filtered = api_client.get(f"{BASE}/deliveries", {"state": "failed"}, **headers)
    forged = api_client.get(f"{BASE}/deliveries", {"cursor": "123"}, **headers)

    assert [item["id"] for item in filtered.json()["items"]] == [failed.pk]
    assert forged.status_code == 400
    assert forged.json()["errors"][0]["field"] == "cursor"


def test_retry_sends_a_failed_delivery_again_now(api_client, api_world):
    [failed] = deliveries_for(
        endpoint_of(api_world.a.vendor), 1, state=DeliveryState.FAILED, attempts=8
    )

    response = post(api_client, f"{BASE}/deliveries/{failed.pk}/retry", {}, api_world.a.member)

    assert response.status_code == 200
    body = response.json()
    # Sent at once (tasks run inline here); the closed port refuses it, the last attempt is over.
    assert (body["state"], body["attempts"], body["error"]) == ("failed", 9, "Connection refused.")
    failed.refresh_from_db()
    assert failed.attempts == 9


def test_retry_of_a_delivery_being_sent_is_a_conflict(api_client, api_world):
    [sending] = deliveries_for(endpoint_of(api_world.a.vendor), 1, state=DeliveryState.SENDING)

    response = post(api_client, f"{BASE}/deliveries/{sending.pk}/retry", {}, api_world.a.member)

    assert response.status_code == 409
    assert response.json()["detail"] == "This delivery is being sent right now."
    sending.refresh_from_db()
    assert (sending.state, sending.attempts) == (DeliveryState.SENDING, 0)


def test_deleting_an_endpoint_removes_it_and_its_log_and_not_anothers(api_client, api_world):
    endpoint = endpoint_of(api_world.a.vendor)
    deliveries_for(endpoint, 2)
    other = endpoint_of(api_world.b.vendor)

    refused = api_client.delete(f"{BASE}/endpoints/{other.pk}", **bearer(api_world.a.member))
    response = api_client.delete(f"{BASE}/endpoints/{endpoint.pk}", **bearer(api_world.a.member))

    assert refused.status_code == 404
    assert response.status_code == 204
    assert list(Endpoint.objects.all()) == [other]
    assert Delivery.objects.count() == 0
    assert AuditEntry.objects.filter(action="webhook.endpoint_deleted").count() == 1


def test_listing_endpoints_costs_the_same_for_many(
    api_client, api_world, django_assert_max_num_queries
):
    for number in range(6):
        endpoint_of(api_world.a.vendor, url=f"https://erp.example/{number}")
    endpoint_of(api_world.b.vendor)

    with django_assert_max_num_queries(8):
        response = api_client.get(f"{BASE}/endpoints", **bearer(api_world.a.member))

    assert response.status_code == 200
    assert [item["url"] for item in response.json()] == [
        f"https://erp.example/{number}" for number in reversed(range(6))
    ]


def test_a_member_who_is_not_an_owner_gets_403(api_client, api_world):
    endpoint_of(api_world.a.vendor)
    staff_member = factories.VendorMembershipFactory(
        vendor=api_world.a.vendor, role=VendorMembership.Role.STAFF
    ).user

    listed = api_client.get(f"{BASE}/endpoints", **bearer(staff_member))
    added = post(
        api_client,
        f"{BASE}/endpoints",
        {"url": "https://erp.example/x", "events": ["order.paid"]},
        staff_member,
    )

    assert (listed.status_code, added.status_code) == (403, 403)
    assert listed.json()["detail"] == "Only the shop's owners can manage its webhooks."
    assert Endpoint.objects.count() == 1
