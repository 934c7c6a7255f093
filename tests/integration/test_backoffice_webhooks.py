"""The backoffice's webhooks pages, as a shop owner uses them: add an endpoint and copy its
secret (shown once), send a test event to their system, read the delivery log, retry,
rotate, disable, delete; bad input changes nothing; only owners get in."""

# The receiver fixture is imported, then named by each test that uses it.
# ruff: noqa: F811

import uuid

import pytest
from django.urls import reverse

from project.audit.models import AuditEntry
from shop.models import VendorMembership
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor
from tests.fixtures.webhook_receiver import webhook_receiver  # noqa: F401
from webhooks.models import Delivery, DeliveryState, Endpoint

pytestmark = pytest.mark.django_db

LIST = reverse("backoffice:webhook_list")
LOG = reverse("backoffice:webhook_deliveries")


@pytest.fixture
def owner(db):
    return factories.VendorMembershipFactory(user__email="owner@oak.example").user


@pytest.fixture
def signed_in(client, owner):
    sign_in_with_second_factor(client, owner)
    return client


def add_endpoint(client, url, events=("order.paid", "order.cancelled")):
    return client.post(LIST, {"url": url, "events": list(events), "description": "ERP"})


def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(signed_in, owner):
    response = add_endpoint(signed_in, "https://erp.oak.example/hooks")

    assert response.status_code == 302
    endpoint = Endpoint.objects.get()
    assert endpoint.vendor.memberships.get().user == owner
    assert endpoint.events == ["order.paid", "order.cancelled"]
    page = signed_in.get(LIST).content.decode()
    assert endpoint.secret in page
    assert "https://erp.oak.example/hooks" in page
    assert "Endpoint https://erp.oak.example/hooks added." in page
    again = signed_in.get(LIST).content.decode()
    assert endpoint.secret not in again
    assert endpoint.secret_hint in again
    assert AuditEntry.objects.filter(action="webhook.endpoint_added", actor=owner).count() == 1


@pytest.mark.parametrize(
    ("url", "events", "message"),
    [
        ("", ["order.paid"], "This field is required."),
        ("ftp://erp.example/x", ["order.paid"], "The URL must start with https://."),
        ("https://erp.example/x", [], "This field is required."),
        ("https://erp.example/x", ["order.refunded"], "Select a valid choice."),
    ],
)
def test_bad_input_is_shown_and_changes_nothing(signed_in, url, events, message, settings):
    settings.WEBHOOKS_REQUIRE_HTTPS = True

    response = add_endpoint(signed_in, url, events)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert Endpoint.objects.count() == 0
    assert not AuditEntry.objects.filter(action__startswith="webhook.").exists()


def test_a_test_event_reaches_the_vendors_system_and_the_log_shows_it(signed_in, webhook_receiver):
    add_endpoint(signed_in, webhook_receiver.url)
    endpoint = Endpoint.objects.get()
    webhook_receiver.secrets.append(endpoint.secret)

    response = signed_in.post(reverse("backoffice:webhook_test", args=[endpoint.pk]))

    assert response.status_code == 302
    [request] = webhook_receiver.wait_for(1)
    assert request.verified
    assert request.headers["Bazaar-Event"] == "ping"
    log = signed_in.get(response.url).content.decode()
    assert "ping" in log
    assert "Delivered" in log
    assert "HTTP 200" in log


def test_retry_now_sends_a_failed_delivery_again(signed_in, webhook_receiver):
    add_endpoint(signed_in, webhook_receiver.url)
    endpoint = Endpoint.objects.get()
    webhook_receiver.secrets.append(endpoint.secret)
    failed = Delivery.objects.create(
        vendor=endpoint.vendor,
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event_type="order.paid",
        payload={"id": "evt_1"},
        state=DeliveryState.FAILED,
        attempts=8,
    )
    assert "Retry now" in signed_in.get(LOG).content.decode()

    response = signed_in.post(reverse("backoffice:webhook_retry", args=[failed.pk]))

    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.state, failed.attempts, failed.status_code) == (
        DeliveryState.DELIVERED,
        9,
        200,
    )
    assert webhook_receiver.wait_for(1)[0].json == {"id": "evt_1"}


def test_rotate_disable_and_delete(signed_in, owner):
    add_endpoint(signed_in, "https://erp.oak.example/hooks")
    endpoint = Endpoint.objects.get()
    old = endpoint.secret
    signed_in.get(LIST)  # the first secret's one showing

    signed_in.post(reverse("backoffice:webhook_rotate", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.secret in signed_in.get(LIST).content.decode()

    signed_in.post(reverse("backoffice:webhook_toggle", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert "Disabled" in signed_in.get(LIST).content.decode()
    refused = signed_in.post(reverse("backoffice:webhook_test", args=[endpoint.pk]))
    assert (
        "Enable the endpoint before sending it a test event."
        in signed_in.get(refused.url).content.decode()
    )

    signed_in.post(reverse("backoffice:webhook_delete", args=[endpoint.pk]))
    assert Endpoint.objects.count() == 0
    assert list(
        AuditEntry.objects.filter(action__startswith="webhook.")
        .order_by("id")
        .values_list("action", flat=True)
    ) == [
        "webhook.endpoint_added",
        "webhook.secret_rotated",
        "webhook.endpoint_disabled",
        "webhook.endpoint_deleted",
    ]


def test_the_log_pages_25_at_a_time_in_few_queries(signed_in, owner, django_assert_max_num_queries):
    vendor = VendorMembership.objects.get(user=owner).vendor
    endpoint = Endpoint.objects.create(
        vendor=vendor, url="https://erp.oak.example/h", events=["order.paid"], secret="whsec_x"
    )
    Delivery.objects.bulk_create(
        Delivery(
            vendor=vendor,
            endpoint=endpoint,
            event_id=uuid.uuid4(),
            event_type="order.paid",
            payload={},
            state=DeliveryState.DELIVERED,
            status_code=200,
        )
        for _ in range(30)
    )
    signed_in.get(LOG)  # warm the session

    with django_assert_max_num_queries(16):
        first = signed_in.get(LOG)
    second = signed_in.get(LOG, {"page": 2})

    assert first.content.decode().count("HTTP 200") == 25
    assert second.content.decode().count("HTTP 200") == 5


def test_members_who_are_not_owners_get_403(client, owner):
    staff_member = factories.VendorMembershipFactory(
        vendor=VendorMembership.objects.get(user=owner).vendor,
        role=VendorMembership.Role.STAFF,
    ).user
    sign_in_with_second_factor(client, staff_member)

    assert client.get(LIST).status_code == 403
    assert client.get(LOG).status_code == 403
    assert add_endpoint(client, "https://erp.example/x").status_code == 403
    assert Endpoint.objects.count() == 0


def test_staff_see_endpoints_and_deliveries_in_the_admin_without_secrets(client, owner, staff):
    vendor = VendorMembership.objects.get(user=owner).vendor
    endpoint = Endpoint.objects.create(
        vendor=vendor, url="https://erp.oak.example/h", events=["order.paid"], secret="whsec_xyz"
    )
    Delivery.objects.create(
        vendor=vendor,
        endpoint=endpoint,
        event_id=uuid.uuid4(),
        event_type="order.paid",
        payload={},
        state=DeliveryState.FAILED,
        status_code=500,
    )
    sign_in_with_second_factor(client, staff)

    deliveries = client.get(
        reverse("admin:webhooks_delivery_changelist"), {"state__exact": "failed"}
    )
    detail = client.get(reverse("admin:webhooks_endpoint_change", args=[endpoint.pk]))

    assert deliveries.status_code == 200
    assert "https://erp.oak.example/h" in deliveries.content.decode()
    assert detail.status_code == 200
    assert "whsec_xyz" not in detail.content.decode()
