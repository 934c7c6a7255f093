import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from accounts import services
from tests import factories

User = get_user_model()
REGISTER_URL = reverse("accounts:register")
GOOD_PASSWORD = "plum-orchard-velvet-42"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def _register(client, capture, **overrides):
    data = {
        "email": "new@example.com",
        "full_name": "Nora New",
        "password1": GOOD_PASSWORD,
        "password2": GOOD_PASSWORD,
        **overrides,
    }
    with capture(execute=True):
        return client.post(REGISTER_URL, data)


def test_register_page_has_labelled_fields(client, db):
    response = client.get(REGISTER_URL)

    assert response.status_code == 200
    content = response.content.decode()
    for label in ("Email", "Full name", "Password", "Confirm password"):
        assert f">{label}:</label>" in content or f">{label}</label>" in content


def test_register_creates_unverified_user_and_emails_link_without_signing_in(
    client, db, django_capture_on_commit_callbacks
):
    response = _register(client, django_capture_on_commit_callbacks, email="New@Example.com ")

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:verify_sent")
    user = User.objects.get()
    assert user.email == "new@example.com"
    assert user.full_name == "Nora New"
    assert user.email_verified_at is None
    assert user.password.startswith("md5$")  # tests hash fast; production uses argon2
    assert user.check_password(GOOD_PASSWORD)
    # Not signed in: a duplicate registration must look exactly the same.
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new@example.com"]
    assert message.subject == "Verify your email address"
    assert "http://testserver/accounts/verify/" in message.body
    assert message.alternatives[0].mimetype == "text/html"
    assert "Verify my email address" in message.alternatives[0].content


def test_unverified_user_sees_banner_after_signing_in(
    client, db, django_capture_on_commit_callbacks
):
    _register(client, django_capture_on_commit_callbacks)
    client.force_login(User.objects.get())

    response = client.get(reverse("accounts:verify_sent"))

    content = response.content.decode()
    assert "Check your inbox" in content
    assert "Please verify your email address to check out." in content


def test_duplicate_email_looks_like_success_and_warns_owner(
    client, db, django_capture_on_commit_callbacks
):
    owner = factories.UserFactory(email="taken@example.com", full_name="Olga Owner")
    original_password = owner.password

    response = _register(client, django_capture_on_commit_callbacks, email="TAKEN@example.com")

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:verify_sent")
    assert User.objects.count() == 1
    owner.refresh_from_db()
    assert owner.password == original_password
    assert owner.full_name == "Olga Owner"
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["taken@example.com"]
    assert message.subject == "Someone tried to register with your email address"
    assert "http://testserver/accounts/login/" in message.body
    assert "http://testserver/accounts/password/reset/" in message.body


def test_duplicate_email_response_page_matches_new_registration(
    client, db, django_capture_on_commit_callbacks
):
    factories.UserFactory(email="taken@example.com")

    response = _register(client, django_capture_on_commit_callbacks, email="taken@example.com")
    followed = client.get(response["Location"])

    assert followed.status_code == 200
    assert "Check your inbox" in followed.content.decode()
    assert "already" not in followed.content.decode().lower()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("8412390712", "This password is entirely numeric."),
    ],
)
def test_weak_password_is_rejected_with_message(
    client, db, django_capture_on_commit_callbacks, password, message
):
    response = _register(
        client, django_capture_on_commit_callbacks, password1=password, password2=password
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert User.objects.count() == 0
    assert mail.outbox == []


def test_password_similar_to_email_is_rejected(client, db, django_capture_on_commit_callbacks):
    response = _register(
        client,
        django_capture_on_commit_callbacks,
        email="marmalade.sandwich@example.com",
        password1="marmalade.sandwich",
        password2="marmalade.sandwich",
    )

    assert response.status_code == 200
    assert "The password is too similar to the email address." in response.content.decode()
    assert User.objects.count() == 0


def test_mismatched_passwords_are_rejected(client, db, django_capture_on_commit_callbacks):
    response = _register(client, django_capture_on_commit_callbacks, password2="something-else-9")

    assert response.status_code == 200
    assert "The two passwords do not match." in response.content.decode()
    assert User.objects.count() == 0
    assert mail.outbox == []


def test_invalid_email_and_blank_name_are_rejected(client, db, django_capture_on_commit_callbacks):
    response = _register(client, django_capture_on_commit_callbacks, email="nope", full_name=" ")

    content = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid email address." in content
    assert "This field is required." in content
    assert User.objects.count() == 0


def test_register_service_hashes_with_first_hasher_and_normalises(
    db, django_capture_on_commit_callbacks, settings
):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        user = services.register_user(
            email="  Mixed@Example.COM", password=GOOD_PASSWORD, full_name="  Max  "
        )

    user.refresh_from_db()
    assert user.email == "mixed@example.com"
    assert user.full_name == "Max"
    assert user.password.startswith("argon2$")
    assert len(mail.outbox) == 1


def test_register_service_raises_on_duplicate_and_creates_nothing(
    db, django_capture_on_commit_callbacks
):
    factories.UserFactory(email="dup@example.com")

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(services.EmailAlreadyRegistered),
    ):
        services.register_user(email="DUP@example.com", password=GOOD_PASSWORD, full_name="X")

    assert User.objects.filter(email__iexact="dup@example.com").count() == 1
    assert [m.subject for m in mail.outbox] == ["Someone tried to register with your email address"]


def test_signed_in_user_visiting_register_goes_to_profile(client, shopper):
    client.force_login(shopper)

    response = client.get(REGISTER_URL)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:profile")


def test_email_without_request_uses_site_url_and_is_not_html_escaped(
    db, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://shop.example"
    with django_capture_on_commit_callbacks(execute=True):
        services.register_user(
            email="q@example.com", password=GOOD_PASSWORD, full_name="Zoë O'Neil"
        )

    body = mail.outbox[0].body
    assert "Hello Zoë O'Neil," in body
    assert re.search(r"https://shop\.example/accounts/verify/\S+/", body)
