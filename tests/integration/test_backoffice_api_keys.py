"""The backoffice's API keys page: owners list, make (secret shown once) and revoke keys."""

import pytest
from django.urls import reverse

from api.models import ApiKey, ApiKeyScope
from api.services import keys as key_services
from project.audit.models import AuditEntry
from shop.models import VendorMembership
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

LIST = reverse("backoffice:api_key_list")


@pytest.fixture
def owner(db):
    return factories.VendorMembershipFactory(vendor__name="Lamp Shop")


def test_an_owner_without_keys_sees_the_empty_state(client, owner):
    sign_in_with_second_factor(client, owner.user)

    page = client.get(LIST).content.decode()

    assert "No API keys yet." in page
    assert 'aria-current="page">API keys<' in page


def test_making_a_key_shows_its_secret_once(client, owner):
    sign_in_with_second_factor(client, owner.user)

    response = client.post(LIST, {"name": " Warehouse sync ", "scope": ApiKeyScope.READ})

    assert response.status_code == 302
    key = ApiKey.objects.get()
    assert (key.name, key.scope, key.vendor, key.created_by) == (
        "Warehouse sync",
        "read",
        owner.vendor,
        owner.user,
    )
    page = client.get(LIST).content.decode()
    assert "API key “Warehouse sync” created." in page
    secret = page.split('data-testid="new-api-key">')[1].split("<")[0]
    assert secret.startswith(key.prefix)
    assert ApiKey.objects.get(key_hash=key_services.tokens.digest(secret)) == key
    again = client.get(LIST).content.decode()
    assert secret not in again
    assert f"{key.prefix}…" in again
    entry = AuditEntry.objects.get(action="api.key_created")
    assert (entry.actor_id, entry.vendor_id, entry.target_id) == (
        owner.user.pk,
        owner.vendor.pk,
        str(key.pk),
    )
    assert secret not in str(entry.metadata)


@pytest.mark.parametrize(
    ("data", "field"),
    [({"name": "", "scope": "read"}, "name"), ({"name": "Sync", "scope": "admin"}, "scope")],
)
def test_bad_input_is_refused_and_makes_nothing(client, owner, data, field):
    sign_in_with_second_factor(client, owner.user)

    response = client.post(LIST, data)

    assert response.status_code == 422
    assert field in response.context["form"].errors
    assert ApiKey.objects.count() == 0


def test_revoking_a_key(client, owner):
    new = key_services.create_key(
        vendor=owner.vendor, name="Sync", scope="read_write", acting_user=owner.user
    )
    sign_in_with_second_factor(client, owner.user)

    response = client.post(reverse("backoffice:api_key_revoke", args=[new.key.pk]))

    assert response.status_code == 302
    new.key.refresh_from_db()
    assert new.key.revoked_at is not None
    page = client.get(LIST).content.decode()
    assert "API key “Sync” revoked" in page
    assert "Revoked" in page
    assert AuditEntry.objects.filter(action="api.key_revoked", target_id=str(new.key.pk)).exists()
    assert (
        client.get("/api/v1/auth/whoami", HTTP_AUTHORIZATION=f"Bearer {new.secret}").status_code
        == 401
    )


def test_revoking_a_revoked_key_says_so(client, owner):
    new = key_services.create_key(
        vendor=owner.vendor, name="Sync", scope="read", acting_user=owner.user
    )
    key_services.revoke_key(vendor=owner.vendor, key_id=new.key.pk, acting_user=owner.user)
    sign_in_with_second_factor(client, owner.user)

    response = client.post(reverse("backoffice:api_key_revoke", args=[new.key.pk]), follow=True)

    assert "was revoked already" in response.content.decode()
    assert AuditEntry.objects.filter(action="api.key_revoked").count() == 1


def test_the_revoke_button_asks_first(client, owner):
    key_services.create_key(vendor=owner.vendor, name="Sync", scope="read", acting_user=owner.user)
    sign_in_with_second_factor(client, owner.user)

    page = client.get(LIST).content.decode()

    assert (
        'data-confirm="Revoke the key “Sync”? Integrations using it stop working at once."' in page
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_shop_staff_who_are_not_owners_get_403(client, owner, method):
    member = factories.VendorMembershipFactory(
        vendor=owner.vendor, role=VendorMembership.Role.STAFF
    )
    key = key_services.create_key(
        vendor=owner.vendor, name="Sync", scope="read", acting_user=owner.user
    ).key
    sign_in_with_second_factor(client, member.user)

    list_response = (
        client.get(LIST) if method == "GET" else client.post(LIST, {"name": "X", "scope": "read"})
    )
    revoke = client.post(reverse("backoffice:api_key_revoke", args=[key.pk]))

    assert list_response.status_code == 403
    assert revoke.status_code == 403
    assert list(ApiKey.objects.values_list("pk", "revoked_at")) == [(key.pk, None)]


def test_the_list_shows_only_the_shops_own_keys(client, owner, django_assert_max_num_queries):
    other = factories.VendorMembershipFactory()
    key_services.create_key(
        vendor=other.vendor, name="Their sync", scope="read", acting_user=other.user
    )
    for number in range(5):
        key_services.create_key(
            vendor=owner.vendor, name=f"Our sync {number}", scope="read", acting_user=owner.user
        )
    sign_in_with_second_factor(client, owner.user)

    with django_assert_max_num_queries(12):
        page = client.get(LIST).content.decode()

    assert page.count("<td>Our sync") == 5
    assert "Their sync" not in page


def test_live_keys_come_first_newest_first(client, owner):
    for name in ("Old live", "Revoked", "New live"):
        key_services.create_key(
            vendor=owner.vendor, name=name, scope="read", acting_user=owner.user
        )
    revoked = ApiKey.objects.get(name="Revoked")
    key_services.revoke_key(vendor=owner.vendor, key_id=revoked.pk, acting_user=owner.user)
    sign_in_with_second_factor(client, owner.user)

    keys = client.get(LIST).context["keys"]

    assert [key.name for key in keys] == ["New live", "Old live", "Revoked"]
