import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

import project.settings as project_settings
from project import ratelimit
from tests import factories

RESET_URL = reverse("accounts:password_reset")
NEW_PASSWORD = "lantern-quarry-meadow-77"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def _request_reset(client, capture, email):
    with capture(execute=True):
        return client.post(RESET_URL, {"email": email}, follow=True)


def _main(response) -> str:
    """The page body without the per-request nonce and CSRF token in the layout."""
    content = response.content.decode()
    return content[content.index('<main id="main"') : content.index("</main>")]


def _reset_path(message) -> str:
    match = re.search(r"http://testserver(/accounts/reset/\S+/\S+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_reset_email_sent_only_for_known_user_and_pages_are_identical(
    client, shopper, django_capture_on_commit_callbacks
):
    known = _request_reset(client, django_capture_on_commit_callbacks, "SHOPPER@example.com")
    unknown = _request_reset(client, django_capture_on_commit_callbacks, "ghost@example.com")

    assert known.status_code == unknown.status_code == 200
    assert (
        known.redirect_chain
        == unknown.redirect_chain
        == [(reverse("accounts:password_reset_done"), 302)]
    )
    assert _main(known) == _main(unknown)
    assert "If an account uses that address" in _main(known)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["shopper@example.com"]
    assert message.subject == "Reset your Bazaar password"
    assert message.alternatives[0].mimetype == "text/html"


def test_reset_link_sets_a_new_password_once(client, shopper, django_capture_on_commit_callbacks):
    _request_reset(client, django_capture_on_commit_callbacks, shopper.email)
    link = _reset_path(mail.outbox[0])

    form_page = client.get(link, follow=True)
    set_password_url = form_page.redirect_chain[-1][0]
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(
        set_password_url,
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    assert done.redirect_chain[-1][0] == reverse("accounts:password_reset_complete")
    shopper.refresh_from_db()
    assert shopper.check_password(NEW_PASSWORD)
    reused = client.get(link, follow=True)
    assert "This link is not valid" in reused.content.decode()


def test_reset_with_weak_password_changes_nothing(
    client, shopper, django_capture_on_commit_callbacks
):
    _request_reset(client, django_capture_on_commit_callbacks, shopper.email)
    form_page = client.get(_reset_path(mail.outbox[0]), follow=True)

    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "123", "new_password2": "123"}
    )

    assert response.status_code == 200
    assert "This password is too short." in response.content.decode()
    shopper.refresh_from_db()
    assert shopper.check_password(factories.PASSWORD)


def test_tampered_reset_link_is_rejected(client, shopper, django_capture_on_commit_callbacks):
    _request_reset(client, django_capture_on_commit_callbacks, shopper.email)
    link = _reset_path(mail.outbox[0])

    response = client.get(link[:-4] + "zzz/", follow=True)

    assert "This link is not valid" in response.content.decode()
    shopper.refresh_from_db()
    assert shopper.check_password(factories.PASSWORD)


def test_reset_emails_are_capped_per_account(client, shopper, django_capture_on_commit_callbacks):
    limit, window = ratelimit.rule("password_reset_email")
    for _ in range(limit):
        response = _request_reset(client, django_capture_on_commit_callbacks, shopper.email)
        assert response.redirect_chain[-1][0] == reverse("accounts:password_reset_done")

    refused = _request_reset(client, django_capture_on_commit_callbacks, shopper.email)

    assert refused.status_code == 429
    assert f"Too many attempts. Try again in {window // 60} minutes." in refused.content.decode()
    assert len(mail.outbox) == limit


def test_password_change_requires_old_password(client, shopper):
    client.force_login(shopper)
    url = reverse("accounts:password_change")

    wrong = client.post(
        url,
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    right = client.post(
        url,
        {
            "old_password": factories.PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )

    assert wrong.status_code == 200
    assert "Your old password was entered incorrectly." in wrong.content.decode()
    assert right.status_code == 302
    assert right["Location"] == reverse("accounts:profile")
    shopper.refresh_from_db()
    assert shopper.check_password(NEW_PASSWORD)
    assert int(client.session[SESSION_KEY]) == shopper.pk


def test_argon2_is_the_first_password_hasher_in_project_settings():
    assert project_settings.PASSWORD_HASHERS[0] == (
        "django.contrib.auth.hashers.Argon2PasswordHasher"
    )
