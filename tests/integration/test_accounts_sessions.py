"""Session hygiene: sign out everywhere, password changes, and session lifetimes."""

import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.sessions import LAST_SEEN_KEY, SIGNED_IN_AT_KEY
from project.audit.models import AuditEntry
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

PROFILE_URL = reverse("accounts:profile")
LOGIN_URL = reverse("accounts:login")


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def _sign_in(user) -> Client:
    client = Client()
    response = client.post(LOGIN_URL, {"email": user.email, "password": factories.PASSWORD})
    assert response.status_code == 302
    return client


def _age_session(client: Client, **seconds_ago: float) -> None:
    session = client.session
    for key, ago in seconds_ago.items():
        session[key] = time.time() - ago
    session.save()


def test_sign_out_everywhere_ends_other_sessions_and_keeps_this_one(shopper):
    here = _sign_in(shopper)
    elsewhere = _sign_in(shopper)
    key_before = here.session.session_key

    response = here.post(reverse("accounts:sign_out_everywhere"), follow=True)

    assert "You are signed out everywhere else." in response.content.decode()
    assert here.get(PROFILE_URL).status_code == 200
    assert here.session.session_key != key_before
    assert elsewhere.get(PROFILE_URL).status_code == 302
    assert SESSION_KEY not in elsewhere.session
    assert list(
        AuditEntry.objects.filter(actor_id=shopper.pk, action__startswith="auth.s").values_list(
            "action", flat=True
        )
    ) == ["auth.sessions_revoked"]


def test_password_change_ends_other_sessions_and_keeps_this_one(shopper):
    here = _sign_in(shopper)
    elsewhere = _sign_in(shopper)

    response = here.post(
        reverse("accounts:password_change"),
        {
            "old_password": factories.PASSWORD,
            "new_password1": "a-new-long-passphrase-42",
            "new_password2": "a-new-long-passphrase-42",
        },
    )

    assert response.status_code == 302
    assert here.get(PROFILE_URL).status_code == 200
    assert elsewhere.get(PROFILE_URL).status_code == 302


def test_sign_out_everywhere_needs_a_post(client, shopper):
    client.force_login(shopper)

    assert client.get(reverse("accounts:sign_out_everywhere")).status_code == 405
    shopper.refresh_from_db()
    assert shopper.session_epoch == 0


def test_idle_staff_session_is_signed_out_with_a_message(client, staff, settings):
    sign_in_with_second_factor(client, staff)
    client.get(PROFILE_URL)
    _age_session(client, **{LAST_SEEN_KEY: settings.STAFF_SESSION_IDLE_TIMEOUT + 5})

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[0] == (f"{LOGIN_URL}?next=/admin/", 302)
    assert "You were signed out because you were inactive for a while." in response.content.decode()
    assert SESSION_KEY not in client.session


def test_staff_session_ends_at_its_absolute_age_even_when_busy(client, staff, settings):
    sign_in_with_second_factor(client, staff)
    client.get(PROFILE_URL)
    _age_session(client, **{SIGNED_IN_AT_KEY: settings.STAFF_SESSION_MAX_AGE + 5})
    _age_session(client, **{LAST_SEEN_KEY: 1})

    response = client.get(PROFILE_URL, follow=True)

    assert "Your session has ended because it was open for a long time." in (
        response.content.decode()
    )
    assert SESSION_KEY not in client.session


def test_a_shopper_idle_as_long_stays_signed_in(client, shopper, settings):
    client.force_login(shopper)
    client.get(PROFILE_URL)
    _age_session(client, **{LAST_SEEN_KEY: settings.STAFF_SESSION_IDLE_TIMEOUT + 5})

    assert client.get(PROFILE_URL).status_code == 200


def test_idle_shopper_session_ends_after_the_general_idle_timeout(client, shopper, settings):
    client.force_login(shopper)
    client.get(PROFILE_URL)
    _age_session(client, **{LAST_SEEN_KEY: settings.SESSION_IDLE_TIMEOUT + 5})

    response = client.get(PROFILE_URL)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next=/accounts/profile/"
    assert SESSION_KEY not in client.session


def test_shopper_session_ends_at_the_general_absolute_age(client, shopper, settings):
    client.force_login(shopper)
    client.get(PROFILE_URL)
    _age_session(client, **{SIGNED_IN_AT_KEY: settings.SESSION_MAX_AGE + 5})

    assert client.get(PROFILE_URL).status_code == 302


def test_activity_keeps_a_session_alive(client, staff, settings):
    sign_in_with_second_factor(client, staff)
    client.get(PROFILE_URL)
    _age_session(client, **{LAST_SEEN_KEY: settings.STAFF_SESSION_IDLE_TIMEOUT - 60})

    assert client.get(PROFILE_URL).status_code == 200
    assert time.time() - client.session[LAST_SEEN_KEY] < 5
    assert client.get("/admin/").status_code == 200


def test_session_lifetimes_are_shorter_than_djangos_two_weeks(settings):
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_MAX_AGE <= 7 * 24 * 3600
    assert settings.STAFF_SESSION_MAX_AGE < settings.SESSION_MAX_AGE
    assert settings.STAFF_SESSION_IDLE_TIMEOUT < settings.SESSION_IDLE_TIMEOUT


def test_an_htmx_request_after_the_idle_timeout_redirects_the_whole_page(client, staff, settings):
    sign_in_with_second_factor(client, staff)
    client.get(PROFILE_URL)
    _age_session(client, **{LAST_SEEN_KEY: settings.STAFF_SESSION_IDLE_TIMEOUT + 5})

    response = client.get(PROFILE_URL, headers={"HX-Request": "true"})

    assert response["HX-Redirect"] == f"{LOGIN_URL}?next=/accounts/profile/"
    assert SESSION_KEY not in client.session
