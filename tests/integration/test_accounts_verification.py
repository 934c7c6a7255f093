import re
import time
import types

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.cache import SessionStore
from django.core import mail, signing
from django.core.cache import cache
from django.http import HttpResponse
from django.urls import reverse

from accounts import services, tasks, tokens
from accounts.decorators import verified_email_required
from accounts.models import User
from tests import factories

GOOD_PASSWORD = "plum-orchard-velvet-42"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def _link_from(message) -> str:
    match = re.search(r"http://testserver(/accounts/verify/\S+/)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.fixture
def registered(client, db, django_capture_on_commit_callbacks):
    """A visitor who registered and then logged in: unverified, with the email in the outbox."""
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("accounts:register"),
            {
                "email": "nora@example.com",
                "full_name": "Nora New",
                "password1": GOOD_PASSWORD,
                "password2": GOOD_PASSWORD,
            },
        )
    user = User.objects.get(email="nora@example.com")
    client.force_login(user)
    return user


def _shift_signing_clock(monkeypatch, seconds: int) -> None:
    fake_time = types.SimpleNamespace(time=lambda: time.time() + seconds)
    monkeypatch.setattr(signing, "time", fake_time)


def test_link_from_email_verifies_the_address(client, registered):
    link = _link_from(mail.outbox[0])

    response = client.get(link, follow=True)

    registered.refresh_from_db()
    assert registered.email_verified_at is not None
    assert response.redirect_chain[-1][0] == reverse("shop:home")
    content = response.content.decode()
    assert "Your email address is verified." in content
    assert "Please verify your email address to check out." not in content


def test_link_works_without_being_signed_in(client, registered):
    link = _link_from(mail.outbox[0])
    client.logout()

    response = client.get(link)

    assert response.status_code == 302
    registered.refresh_from_db()
    assert registered.is_verified


def test_using_the_link_twice_keeps_the_first_timestamp(client, registered):
    link = _link_from(mail.outbox[0])
    client.get(link)
    registered.refresh_from_db()
    first = registered.email_verified_at

    response = client.get(link)

    registered.refresh_from_db()
    assert response.status_code == 302
    assert registered.email_verified_at == first


def test_expired_link_changes_nothing_and_offers_new_link(
    client, registered, monkeypatch, settings
):
    link = _link_from(mail.outbox[0])
    _shift_signing_clock(monkeypatch, settings.EMAIL_VERIFICATION_MAX_AGE + 60)

    response = client.get(link)

    content = response.content.decode()
    assert response.status_code == 400
    assert "This verification link has expired. Send yourself a new one." in content
    assert f'action="{reverse("accounts:verify_resend")}"' in content
    assert "Send a new link" in content
    registered.refresh_from_db()
    assert registered.email_verified_at is None


def test_link_just_inside_max_age_still_works(client, registered, monkeypatch, settings):
    link = _link_from(mail.outbox[0])
    _shift_signing_clock(monkeypatch, settings.EMAIL_VERIFICATION_MAX_AGE - 60)

    response = client.get(link)

    assert response.status_code == 302
    registered.refresh_from_db()
    assert registered.is_verified


def test_tampered_link_changes_nothing(client, registered):
    link = _link_from(mail.outbox[0])
    token = link.split("/")[-2]
    other = factories.UserFactory(email_verified_at=None)
    forged_payload = signing.dumps({"user": other.pk, "email": other.email}, salt="wrong-salt")
    tampered_links = [
        link.replace(token, token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")),
        reverse("accounts:verify", kwargs={"token": forged_payload}),
        reverse("accounts:verify", kwargs={"token": "not-a-token"}),
    ]

    for tampered in tampered_links:
        response = client.get(tampered)
        assert response.status_code == 400
        assert "This verification link is not valid." in response.content.decode()

    registered.refresh_from_db()
    other.refresh_from_db()
    assert registered.email_verified_at is None
    assert other.email_verified_at is None


def test_link_for_an_address_changed_since_is_rejected(client, db):
    user = factories.UserFactory(email="old@example.com", email_verified_at=None)
    token = tokens.make_verification_token(user)
    user.email = "new@example.com"
    user.save()

    with pytest.raises(services.VerificationLinkInvalid):
        services.verify_email(token=token)

    user.refresh_from_db()
    assert user.email_verified_at is None


def test_resend_page_requires_login(client, db):
    response = client.get(reverse("accounts:verify_resend"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_resend_sends_a_fresh_working_link(client, registered, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    page = client.get(reverse("accounts:verify_resend"))
    assert page.status_code == 200
    assert "Send a new link" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:verify_resend"), follow=True)

    assert "We&#x27;ve sent a new verification link to nora@example.com." in (
        response.content.decode()
    )
    assert len(mail.outbox) == 1
    client.get(_link_from(mail.outbox[0]))
    registered.refresh_from_db()
    assert registered.is_verified


def test_resend_for_verified_user_sends_nothing(
    client, shopper, django_capture_on_commit_callbacks
):
    client.force_login(shopper)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:verify_resend"))

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:profile")
    assert mail.outbox == []


def test_verification_task_skips_already_verified_user(db, shopper):
    result = tasks.send_verification_email.enqueue(user_id=shopper.pk)

    assert result.return_value is False
    assert mail.outbox == []


# --- verified_email_required -------------------------------------------------


@verified_email_required
def _protected(request):
    return HttpResponse("secret checkout")


def _request_for(rf, user, *, htmx: bool = False):
    request = rf.get("/checkout/?step=1")
    request.user = user or AnonymousUser()
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    request.htmx = htmx
    return request


def test_verified_email_required_redirects_anonymous_to_login(rf, db):
    response = _protected(_request_for(rf, None))

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/checkout/%3Fstep%3D1"


def test_verified_email_required_sends_unverified_user_to_resend_page(rf, db):
    user = factories.UserFactory(email_verified_at=None)
    request = _request_for(rf, user)

    response = _protected(request)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:verify_resend")
    assert [str(m) for m in request._messages] == [
        "Please verify your email address before checking out."
    ]


def test_verified_email_required_uses_client_redirect_for_htmx(rf, db):
    user = factories.UserFactory(email_verified_at=None)

    response = _protected(_request_for(rf, user, htmx=True))

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("accounts:verify_resend")


def test_verified_email_required_lets_verified_user_through(rf, shopper):
    response = _protected(_request_for(rf, shopper))

    assert response.status_code == 200
    assert response.content == b"secret checkout"


def test_link_opened_while_signed_out_verifies_and_asks_to_log_in(client, registered):
    client.logout()
    link = _link_from(mail.outbox[0])

    response = client.get(link, follow=True)

    registered.refresh_from_db()
    assert registered.email_verified_at is not None
    assert response.redirect_chain[-1][0] == reverse("accounts:login")
    assert "Your email address is verified. Log in to continue." in response.content.decode()
