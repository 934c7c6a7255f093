"""Vendors' API keys as an integration uses them: the bearer auth takes them, they act for
their vendor only, read keys cannot write, revoked keys are refused, use is noted cheaply."""

import datetime
import hashlib

import pytest
from asgiref.sync import async_to_sync
from django.test import RequestFactory
from django.utils import timezone

from api import auth
from api.errors import ApiError
from api.models import ApiKey, ApiKeyScope
from api.services import keys as key_services
from project.audit.models import AuditEntry
from tests import factories

WHOAMI = "/api/v1/auth/whoami"


@pytest.fixture
def owner(db):
    return factories.VendorMembershipFactory(vendor__name="Lamp Shop").user


@pytest.fixture
def vendor(owner):
    return owner.vendor_memberships.get().vendor


def make_key(vendor, owner, scope=ApiKeyScope.READ_WRITE):
    return key_services.create_key(vendor=vendor, name="Sync", scope=scope, acting_user=owner)


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_new_key_is_shown_once_and_stored_hashed(vendor, owner):
    new = make_key(vendor, owner)

    assert new.secret.startswith("bzk_")
    assert len(new.secret) == 4 + 43
    row = ApiKey.objects.get()
    assert row.key_hash == hashlib.sha256(new.secret.encode()).hexdigest()
    assert row.prefix == new.secret[:12]
    assert new.secret not in str(list(ApiKey.objects.values()))


def test_whoami_with_a_key(client, vendor, owner):
    new = make_key(vendor, owner, scope=ApiKeyScope.READ)

    response = client.get(WHOAMI, **bearer(new.secret))

    assert response.status_code == 200
    assert response.json() == {
        "user_id": owner.pk,
        "email": owner.email,
        "credential": "api_key",
        "roles": ["vendor"],
        "vendor": {"id": vendor.pk, "slug": vendor.slug, "name": "Lamp Shop", "role": "api_key"},
        "can_write": False,
    }


@pytest.mark.parametrize(
    ("scope", "can_write"), [(ApiKeyScope.READ, False), (ApiKeyScope.READ_WRITE, True)]
)
def test_the_principal_of_a_key(vendor, owner, scope, can_write):
    new = make_key(vendor, owner, scope)

    who = async_to_sync(auth.bearer.authenticate)(RequestFactory().get("/"), new.secret)

    assert who is not None
    assert (who.kind, who.key_vendor_id, who.can_write, who.user) == (
        "api_key",
        vendor.pk,
        can_write,
        owner,
    )
    assert who.credential_id == str(new.key.pk)


def test_a_read_key_may_read_but_not_write_as_its_vendor(vendor, owner):
    new = make_key(vendor, owner, ApiKeyScope.READ)
    request = RequestFactory().get("/")
    request.auth = async_to_sync(auth.bearer.authenticate)(request, new.secret)  # type: ignore[attr-defined]

    assert async_to_sync(auth.vendor)(request).pk == vendor.pk
    with pytest.raises(ApiError) as refused:
        async_to_sync(auth.vendor)(request, write=True)
    assert (refused.value.status, refused.value.code) == (403, "read-only-key")
    with pytest.raises(ApiError) as not_a_shopper:
        async_to_sync(auth.shopper)(request)
    assert not_a_shopper.value.status == 403


def test_a_revoked_key_is_refused(client, vendor, owner):
    new = make_key(vendor, owner)
    key_services.revoke_key(vendor=vendor, key_id=new.key.pk, acting_user=owner)

    response = client.get(WHOAMI, **bearer(new.secret))

    assert response.status_code == 401


@pytest.mark.parametrize("secret", ["bzk_", "bzk_not-a-key", "bzk_" + "A" * 43])
def test_unknown_keys_are_refused(client, vendor, owner, secret):
    make_key(vendor, owner)

    assert client.get(WHOAMI, **bearer(secret)).status_code == 401


def test_use_is_noted_at_most_once_a_minute(client, vendor, owner):
    new = make_key(vendor, owner)

    client.get(WHOAMI, **bearer(new.secret))
    first = ApiKey.objects.get().last_used_at
    client.get(WHOAMI, **bearer(new.secret))
    assert first is not None
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.update(last_used_at=first - datetime.timedelta(seconds=61))

    client.get(WHOAMI, **bearer(new.secret))

    assert ApiKey.objects.get().last_used_at > first


def test_a_recent_use_costs_no_write(client, vendor, owner, django_assert_num_queries):
    new = make_key(vendor, owner)
    ApiKey.objects.update(last_used_at=timezone.now())

    # The key with its creator, then whoami's vendor: no UPDATE.
    with django_assert_num_queries(2):
        assert client.get(WHOAMI, **bearer(new.secret)).status_code == 200


def test_revoking_twice_is_refused_and_audited_once(vendor, owner):
    new = make_key(vendor, owner)
    key_services.revoke_key(vendor=vendor, key_id=new.key.pk, acting_user=owner)

    with pytest.raises(key_services.KeyAlreadyRevoked):
        key_services.revoke_key(vendor=vendor, key_id=new.key.pk, acting_user=owner)
    assert AuditEntry.objects.filter(action="api.key_revoked").count() == 1
    assert AuditEntry.objects.filter(action="api.key_created", vendor_id=vendor.pk).count() == 1
