"""The API's sign-in: token pairs, rotation with reuse detection, logout, the revocation list,
credential stamps, signing-key rotation and whoami, as a client sees them."""

import datetime
import hashlib
import io
import json
import threading

import jwt
import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts import sessions as account_sessions
from api import tokens
from api.models import ApiKey, RefreshToken
from api.services import keys as key_services
from api.services import sessions
from project.audit.models import AuditEntry
from tests import factories
from tests.factories import PASSWORD
from tests.fixtures.twofactor import enrol, fresh_code

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
WHOAMI = "/api/v1/auth/whoami"


def post(client: Client, path: str, body: dict, **headers):
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def sign_in(client: Client, user, **extra) -> dict:
    response = post(client, TOKEN, {"email": user.email, "password": PASSWORD, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def whoami(client: Client, access: str):
    return client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {access}")


@pytest.fixture
def shopper(db):
    return factories.UserFactory(email="ann@example.com")


# --- POST /auth/token ----------------------------------------------------------------------


def test_token_gives_a_pair_whose_access_token_works(client, shopper):
    response = post(client, TOKEN, {"email": "ANN@example.com", "password": PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_expires_in"] == 7 * 24 * 3600
    access = tokens.decode(body["access_token"], token_type=tokens.ACCESS)
    refresh = tokens.decode(body["refresh_token"], token_type=tokens.REFRESH)
    assert access.expires_at - timezone.now() <= datetime.timedelta(minutes=15)
    assert refresh.expires_at - timezone.now() > datetime.timedelta(days=6, hours=23)
    assert access.family == refresh.family
    assert whoami(client, body["access_token"]).json()["email"] == "ann@example.com"


def test_the_refresh_token_is_stored_hashed_never_in_clear(client, shopper):
    body = sign_in(client, shopper)

    row = RefreshToken.objects.get()
    claims = tokens.decode(body["refresh_token"], token_type=tokens.REFRESH)
    assert row.token_id == claims.token_id
    assert row.family == claims.family
    assert row.parent is None
    assert row.user == shopper
    assert row.token_hash == hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    assert body["refresh_token"] not in json.dumps(list(RefreshToken.objects.values()), default=str)


def test_a_wrong_password_is_refused_and_nothing_is_stored(client, shopper):
    response = post(client, TOKEN, {"email": shopper.email, "password": "wrong"})

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/bad-credentials")
    assert RefreshToken.objects.count() == 0


def test_an_inactive_user_is_refused(client, db):
    user = factories.UserFactory(is_active=False)

    response = post(client, TOKEN, {"email": user.email, "password": PASSWORD})

    assert response.status_code == 401
    assert response.json()["type"].endswith("/bad-credentials")
    assert RefreshToken.objects.count() == 0


def test_missing_fields_are_field_errors(client, db):
    response = post(client, TOKEN, {"email": "ann@example.com"})

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "password", "message": "Field required"}]
    assert RefreshToken.objects.count() == 0


def test_two_factor_accounts_need_the_code(client, shopper):
    enrol(shopper)

    response = post(client, TOKEN, {"email": shopper.email, "password": PASSWORD})

    assert response.status_code == 401
    assert response.json()["type"].endswith("/otp-required")
    assert RefreshToken.objects.count() == 0


def test_a_wrong_code_is_refused_and_audited(client, shopper):
    enrol(shopper)

    response = post(client, TOKEN, {"email": shopper.email, "password": PASSWORD, "otp": "000000"})

    assert response.status_code == 401
    assert response.json()["type"].endswith("/bad-otp")
    assert RefreshToken.objects.count() == 0
    assert AuditEntry.objects.filter(action="twofactor.failed", target_id=str(shopper.pk)).exists()


def test_wrong_codes_are_rate_limited_like_the_shops_second_step(client, shopper):
    device = enrol(shopper)
    limit = settings.RATE_LIMITS["twofactor_user"]["limit"]
    body = {"email": shopper.email, "password": PASSWORD, "otp": "000000"}
    for _ in range(limit):
        assert post(client, TOKEN, body).status_code == 401

    response = post(client, TOKEN, {**body, "otp": fresh_code(device)})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert RefreshToken.objects.count() == 0


def test_the_right_code_gives_a_pair_once(client, shopper):
    device = enrol(shopper)
    code = fresh_code(device)

    first = post(client, TOKEN, {"email": shopper.email, "password": PASSWORD, "otp": code})
    again = post(client, TOKEN, {"email": shopper.email, "password": PASSWORD, "otp": code})

    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json()["type"].endswith("/bad-otp")
    assert RefreshToken.objects.count() == 1


def test_owners_and_staff_must_set_up_two_factor_first(client, db):
    owner = factories.VendorMembershipFactory().user

    response = post(client, TOKEN, {"email": owner.email, "password": PASSWORD})

    assert response.status_code == 403
    assert response.json()["type"].endswith("/twofactor-setup-required")
    assert RefreshToken.objects.count() == 0


def test_the_sign_in_rate_limit_applies(client, shopper):
    limit = settings.RATE_LIMITS["login_account_address"]["limit"]
    for _ in range(limit):
        assert post(client, TOKEN, {"email": shopper.email, "password": "x"}).status_code == 401

    response = post(client, TOKEN, {"email": shopper.email, "password": PASSWORD})

    assert response.status_code == 429
    assert response.json()["type"].endswith("/rate-limited")
    assert int(response["Retry-After"]) > 0
    assert RefreshToken.objects.count() == 0


def test_an_account_under_attack_needs_the_unlock_link_even_with_the_right_password(
    client, shopper, settings
):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_account": {"limit": 2, "window": 3600},
    }
    for _ in range(2):
        assert post(client, TOKEN, {"email": shopper.email, "password": "x"}).status_code == 401

    response = post(client, TOKEN, {"email": shopper.email, "password": PASSWORD})

    assert response.status_code == 403
    assert response.json()["type"].endswith("/unlock-required")
    assert RefreshToken.objects.count() == 0


# --- POST /auth/refresh --------------------------------------------------------------------


def test_refresh_rotates_the_pair(client, shopper):
    first = sign_in(client, shopper)

    response = post(client, REFRESH, {"refresh_token": first["refresh_token"]})

    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert whoami(client, second["access_token"]).status_code == 200
    old = RefreshToken.objects.get(token_id=_jti(first["refresh_token"]))
    new = RefreshToken.objects.get(token_id=_jti(second["refresh_token"]))
    assert old.used_at is not None
    assert (new.parent, new.family, new.used_at, new.revoked_at) == (old, old.family, None, None)


def test_a_reused_refresh_token_revokes_the_whole_family(client, shopper):
    first = sign_in(client, shopper)
    second = post(client, REFRESH, {"refresh_token": first["refresh_token"]}).json()
    third = post(client, REFRESH, {"refresh_token": second["refresh_token"]}).json()
    other = sign_in(client, shopper)  # another sign-in: not touched

    reuse = post(client, REFRESH, {"refresh_token": first["refresh_token"]})

    assert reuse.status_code == 401
    assert reuse.json()["type"].endswith("/refresh-token-reused")
    family = _family(first["refresh_token"])
    assert RefreshToken.objects.filter(family=family).count() == 3
    assert not RefreshToken.objects.filter(family=family, revoked_at__isnull=True).exists()
    assert (
        RefreshToken.objects.filter(family=_family(other["refresh_token"])).get().revoked_at is None
    )
    # The newest descendant and every access token of the family are dead too.
    latest = post(client, REFRESH, {"refresh_token": third["refresh_token"]})
    assert latest.status_code == 401
    assert latest.json()["type"].endswith("/revoked")
    for pair in (first, second, third):
        assert whoami(client, pair["access_token"]).status_code == 401
    assert whoami(client, other["access_token"]).status_code == 200
    assert AuditEntry.objects.filter(action="api.refresh_token_reused").count() == 1


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "access", "unknown-jti", "forged-hash"],
)
def test_refresh_refuses_what_is_not_a_live_refresh_token(client, shopper, token):
    pair = sign_in(client, shopper)
    if token == "access":
        token = pair["access_token"]
    elif token == "unknown-jti":
        token, _ = tokens.issue_refresh_token(user=shopper, family=_family(pair["refresh_token"]))
    elif token == "forged-hash":
        # Same jti and family, signed with the key (as if leaked), but not the token handed out.
        payload = jwt.decode(pair["refresh_token"], options={"verify_signature": False})
        payload["iat"] += 1
        key = settings.API_JWT_KEYS[settings.API_JWT_ACTIVE_KID]
        token = jwt.encode(
            payload, key, algorithm="HS256", headers={"kid": settings.API_JWT_ACTIVE_KID}
        )
    before = list(RefreshToken.objects.values())

    response = post(client, REFRESH, {"refresh_token": token})

    assert response.status_code == 401
    assert response.json()["type"].endswith("/bad-refresh-token")
    assert list(RefreshToken.objects.values()) == before


def test_an_expired_refresh_token_is_refused(client, shopper, settings):
    settings.API_REFRESH_TOKEN_SECONDS = -10
    pair = sign_in(client, shopper)

    response = post(client, REFRESH, {"refresh_token": pair["refresh_token"]})

    assert response.status_code == 401
    assert RefreshToken.objects.get().used_at is None


# --- Credentials changed: password, sign out everywhere ------------------------------------


def test_a_password_change_ends_access_and_refresh_tokens(client, shopper):
    pair = sign_in(client, shopper)

    account_services.set_password(user=shopper, password="a-new-long-password-42", via_reset=False)

    assert whoami(client, pair["access_token"]).status_code == 401
    response = post(client, REFRESH, {"refresh_token": pair["refresh_token"]})
    assert response.status_code == 401
    assert response.json()["type"].endswith("/revoked")
    assert RefreshToken.objects.get().revoked_at is not None


def test_signing_out_everywhere_ends_access_tokens(client, shopper):
    pair = sign_in(client, shopper)
    assert whoami(client, pair["access_token"]).status_code == 200

    account_sessions.revoke_other_sessions(user=shopper)

    assert whoami(client, pair["access_token"]).status_code == 401
    assert post(client, REFRESH, {"refresh_token": pair["refresh_token"]}).status_code == 401


def test_a_deactivated_user_loses_access(client, shopper):
    pair = sign_in(client, shopper)
    shopper.is_active = False
    shopper.save(update_fields=["is_active"])

    assert whoami(client, pair["access_token"]).status_code == 401
    assert post(client, REFRESH, {"refresh_token": pair["refresh_token"]}).status_code == 401


# --- POST /auth/logout ---------------------------------------------------------------------


def test_logout_revokes_the_access_token_and_the_family(client, shopper):
    pair = sign_in(client, shopper)
    rotated = post(client, REFRESH, {"refresh_token": pair["refresh_token"]}).json()

    response = post(client, LOGOUT, {}, HTTP_AUTHORIZATION=f"Bearer {rotated['access_token']}")

    assert response.status_code == 204
    assert whoami(client, rotated["access_token"]).status_code == 401
    assert whoami(client, pair["access_token"]).status_code == 401
    refused = post(client, REFRESH, {"refresh_token": rotated["refresh_token"]})
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/revoked")
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


def test_logout_takes_no_body_or_another_refresh_token_of_the_user(client, shopper):
    pair = sign_in(client, shopper)
    other = sign_in(client, shopper)
    strangers = sign_in(client, factories.UserFactory())

    empty = client.post(
        LOGOUT,
        b"",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}",
    )
    with_refresh = post(
        client,
        LOGOUT,
        {"refresh_token": strangers["refresh_token"]},
        HTTP_AUTHORIZATION=f"Bearer {other['access_token']}",
    )

    assert (empty.status_code, with_refresh.status_code) == (204, 204)
    # another user's refresh token is not this user's to revoke
    assert post(client, REFRESH, {"refresh_token": strangers["refresh_token"]}).status_code == 200


def test_logout_with_an_api_key_is_refused(client, db):
    membership = factories.VendorMembershipFactory()
    new = key_services.create_key(
        vendor=membership.vendor, name="Sync", scope="read", acting_user=membership.user
    )

    response = post(client, LOGOUT, {}, HTTP_AUTHORIZATION=f"Bearer {new.secret}")

    assert response.status_code == 403
    assert ApiKey.objects.get().revoked_at is None


def test_logout_lists_the_token_until_it_expires(client, shopper):
    pair = sign_in(client, shopper)
    claims = tokens.decode(pair["access_token"], token_type=tokens.ACCESS)

    post(client, LOGOUT, {}, HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")

    key = cache.make_and_validate_key(f"api:revoked:jti:{claims.token_id}")
    ttl = cache._cache.get_client(key, write=False).ttl(key)  # type: ignore[attr-defined]
    assert 850 < ttl <= 902


def test_logout_without_a_token_is_refused(client, db):
    response = post(client, LOGOUT, {})

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


# --- The revocation list when Redis is away ------------------------------------------------


@pytest.fixture
def dead_redis(settings):
    """The revocation list on a Redis nobody listens on (connection refused at once)."""
    settings.CACHES = {
        **settings.CACHES,
        "dead-redis": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    settings.API_REVOCATION_CACHE = "dead-redis"


def test_without_redis_the_database_still_refuses_revoked_families(client, shopper, dead_redis):
    live = sign_in(client, shopper)
    reused = sign_in(client, shopper)
    post(client, REFRESH, {"refresh_token": reused["refresh_token"]})
    post(client, REFRESH, {"refresh_token": reused["refresh_token"]})  # reuse: family revoked

    assert whoami(client, live["access_token"]).status_code == 200
    assert whoami(client, reused["access_token"]).status_code == 401


def test_without_redis_a_token_without_family_is_refused(client, shopper, dead_redis):
    access, _ = tokens.issue_access_token(user=shopper)

    assert whoami(client, access).status_code == 401


def test_without_redis_logout_answers_503_and_changes_nothing(client, shopper, dead_redis):
    pair = sign_in(client, shopper)

    response = post(client, LOGOUT, {}, HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")

    assert response.status_code == 503
    assert response.json()["type"].endswith("/revocation-unavailable")
    assert RefreshToken.objects.get().revoked_at is None


# --- Signing keys --------------------------------------------------------------------------

NEW_KEY = "n" * 10 + "Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w"
OLD_KEY = "o" * 10 + "Yp3uM7sQ1wK5oV9rA2lX6bI0gJ4cE8fZ-tD_nH1mP6v"


def test_tokens_of_a_previous_key_work_while_it_is_configured(client, shopper, settings):
    settings.API_JWT_KEYS = {"2026-06": OLD_KEY}
    settings.API_JWT_ACTIVE_KID = "2026-06"
    old = sign_in(client, shopper)
    settings.API_JWT_KEYS = {"2026-12": NEW_KEY, "2026-06": OLD_KEY}
    settings.API_JWT_ACTIVE_KID = "2026-12"

    assert whoami(client, old["access_token"]).status_code == 200
    rotated = post(client, REFRESH, {"refresh_token": old["refresh_token"]}).json()
    assert jwt.get_unverified_header(rotated["access_token"])["kid"] == "2026-12"
    assert jwt.get_unverified_header(rotated["refresh_token"])["kid"] == "2026-12"


def test_tokens_of_a_removed_key_are_refused(client, shopper, settings):
    settings.API_JWT_KEYS = {"2026-06": OLD_KEY}
    settings.API_JWT_ACTIVE_KID = "2026-06"
    old = sign_in(client, shopper)
    settings.API_JWT_KEYS = {"2026-12": NEW_KEY}
    settings.API_JWT_ACTIVE_KID = "2026-12"

    assert whoami(client, old["access_token"]).status_code == 401
    assert post(client, REFRESH, {"refresh_token": old["refresh_token"]}).status_code == 401


def test_a_token_signed_with_another_secret_under_a_known_kid_is_refused(client, shopper):
    payload = jwt.decode(
        sign_in(client, shopper)["access_token"], options={"verify_signature": False}
    )
    forged = jwt.encode(
        payload, "x" * 64, algorithm="HS256", headers={"kid": settings.API_JWT_ACTIVE_KID}
    )

    assert whoami(client, forged).status_code == 401


def test_the_embedded_default_derives_a_development_key():
    assert list(settings.API_JWT_KEYS) == [settings.API_JWT_ACTIVE_KID]
    assert len(settings.API_JWT_KEYS[settings.API_JWT_ACTIVE_KID]) == 64
    assert settings.API_JWT_KEYS[settings.API_JWT_ACTIVE_KID] != settings.SECRET_KEY


# --- GET /auth/whoami ----------------------------------------------------------------------


def test_whoami_of_a_shopper(client, shopper):
    body = whoami(client, sign_in(client, shopper)["access_token"]).json()

    assert body == {
        "user_id": shopper.pk,
        "email": "ann@example.com",
        "credential": "access",
        "roles": ["shopper"],
        "vendor": None,
        "can_write": True,
    }


def test_whoami_of_a_vendor_owner_with_two_factor(client, db):
    membership = factories.VendorMembershipFactory(vendor__name="Lamp Shop")
    device = enrol(membership.user)
    pair = sign_in(client, membership.user, otp=fresh_code(device))

    body = whoami(client, pair["access_token"]).json()

    assert body["roles"] == ["shopper", "vendor"]
    assert body["vendor"] == {
        "id": membership.vendor.pk,
        "slug": membership.vendor.slug,
        "name": "Lamp Shop",
        "role": "owner",
    }


def test_whoami_of_staff(client, db):
    staff = factories.UserFactory(is_staff=True)
    pair = sign_in(client, staff, otp=fresh_code(enrol(staff)))

    assert whoami(client, pair["access_token"]).json()["roles"] == ["shopper", "staff"]


def _jti(token: str) -> str:
    return tokens.decode(token, token_type=tokens.REFRESH).token_id


def _family(token: str) -> str:
    family = tokens.decode(token, token_type=tokens.REFRESH).family
    assert family is not None
    return family


# --- Housekeeping --------------------------------------------------------------------------


def test_the_purge_deletes_rows_expired_over_a_day_and_keeps_their_live_children(shopper):
    old = sessions.start_session(user=shopper)
    RefreshToken.objects.update(expires_at=timezone.now() - datetime.timedelta(days=2))
    child = sessions.rotate(refresh_token=old.refresh_token)  # expires in 7 days
    sessions.start_session(user=shopper)
    RefreshToken.objects.filter(token_id=child.refresh_claims.token_id).update(
        expires_at=timezone.now() + datetime.timedelta(days=7)
    )
    out = io.StringIO()

    call_command("purge", "--only", "api-refresh-tokens", stdout=out)

    assert RefreshToken.objects.count() == 2
    assert not RefreshToken.objects.filter(token_id=old.refresh_claims.token_id).exists()
    assert RefreshToken.objects.get(token_id=child.refresh_claims.token_id).parent is None


# --- Concurrency ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_of_one_token_rotate_once_and_count_as_reuse():
    user = factories.UserFactory()
    pair = sessions.start_session(user=user)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def refresh() -> None:
        barrier.wait()
        try:
            sessions.rotate(refresh_token=pair.refresh_token)
            outcomes.append("rotated")
        except sessions.RefreshRefused as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["refresh-token-reused", "rotated"]
    assert RefreshToken.objects.count() == 2
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()
