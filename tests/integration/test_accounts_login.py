import pytest
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.forms import LOGIN_FAILED_MESSAGE
from shop.selectors import cart as cart_selectors
from shop.services import cart as cart_services
from tests import factories

LOGIN_URL = reverse("accounts:login")
FAILED_HTML = "Email or password is incorrect."


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def test_login_page_has_labelled_fields(client, db):
    response = client.get(LOGIN_URL)

    content = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_email">Email:</label>' in content
    assert '<label for="id_password">Password:</label>' in content


def test_login_with_right_password_signs_in_and_goes_home(client, shopper):
    response = client.post(
        LOGIN_URL, {"email": "Shopper@Example.com", "password": factories.PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("shop:home")
    assert int(client.session[SESSION_KEY]) == shopper.pk


def test_wrong_password_and_unknown_email_get_identical_answers(client, shopper):
    wrong_password = client.post(LOGIN_URL, {"email": shopper.email, "password": "nope-nope-1"})
    unknown_email = client.post(
        LOGIN_URL, {"email": "nobody@example.com", "password": "nope-nope-1"}
    )

    assert wrong_password.status_code == unknown_email.status_code == 200
    assert FAILED_HTML in wrong_password.content.decode()
    assert FAILED_HTML in unknown_email.content.decode()
    assert (
        wrong_password.context["form"].errors
        == unknown_email.context["form"].errors
        == {"__all__": [LOGIN_FAILED_MESSAGE]}
    )
    assert SESSION_KEY not in client.session


def test_inactive_user_gets_the_same_message(client, db):
    factories.UserFactory(email="gone@example.com", is_active=False)

    response = client.post(LOGIN_URL, {"email": "gone@example.com", "password": factories.PASSWORD})

    assert response.context["form"].errors == {"__all__": [LOGIN_FAILED_MESSAGE]}
    assert SESSION_KEY not in client.session


def _limit(settings, bucket: str, limit: int, window: int = 900) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, bucket: {"limit": limit, "window": window}}


def test_failures_from_one_address_refuse_that_address_even_the_right_password(shopper, settings):
    _limit(settings, "login_account_address", 3)
    attacker = Client(REMOTE_ADDR="10.0.0.1")
    for _ in range(3):
        attacker.post(LOGIN_URL, {"email": shopper.email, "password": "wrong-password-1"})

    response = attacker.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert response.status_code == 429
    assert 890 <= int(response["Retry-After"]) <= 900
    assert "Too many attempts. Try again in 15 minutes." in response.content.decode()
    assert SESSION_KEY not in attacker.session


def test_owner_at_another_address_is_not_locked_out_by_failures_elsewhere(shopper, settings):
    _limit(settings, "login_account_address", 3)
    for ip in ("10.0.0.1", "10.0.0.2"):
        attacker = Client(REMOTE_ADDR=ip)
        for _ in range(5):
            attacker.post(LOGIN_URL, {"email": shopper.email, "password": "bad-pass-1"})

    owner = Client(REMOTE_ADDR="10.0.0.3")
    response = owner.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert response.status_code == 302
    assert int(owner.session[SESSION_KEY]) == shopper.pk


def test_rate_limit_per_address_spans_email_addresses(shopper, settings):
    _limit(settings, "login_address", 3)
    attacker = Client(REMOTE_ADDR="10.9.9.9")
    for n in range(3):
        attacker.post(LOGIN_URL, {"email": f"guess{n}@example.com", "password": "bad-pass-1"})

    blocked = attacker.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})
    other_ip = Client(REMOTE_ADDR="10.1.1.1").post(
        LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD}
    )

    assert blocked.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in blocked.content.decode()
    assert other_ip.status_code == 302


def test_failures_below_the_limit_still_allow_sign_in(client, shopper, settings):
    _limit(settings, "login_account_address", 3)
    for _ in range(2):
        client.post(LOGIN_URL, {"email": shopper.email, "password": "wrong-password-1"})

    response = client.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert response.status_code == 302


def test_a_successful_sign_in_forgives_that_address_its_failures(client, shopper, settings):
    _limit(settings, "login_account_address", 3)
    for _ in range(2):
        client.post(LOGIN_URL, {"email": shopper.email, "password": "wrong-password-1"})
    client.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})
    client.post(reverse("accounts:logout"))

    for _ in range(2):
        client.post(LOGIN_URL, {"email": shopper.email, "password": "wrong-password-1"})
    response = client.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert response.status_code == 302


def test_safe_next_is_honoured(client, shopper):
    response = client.post(
        f"{LOGIN_URL}?next=/accounts/profile/",
        {"email": shopper.email, "password": factories.PASSWORD},
    )

    assert response["Location"] == "/accounts/profile/"


def test_next_is_carried_through_the_form(client, shopper):
    page = client.get(f"{LOGIN_URL}?next=/cart/")
    assert '<input type="hidden" name="next" value="/cart/">' in page.content.decode()

    response = client.post(
        LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD, "next": "/cart/"}
    )

    assert response["Location"] == "/cart/"


@pytest.mark.parametrize(
    "evil",
    ["https://evil.example/", "//evil.example/", "https:///evil.example", "\\\\evil.example"],
)
def test_open_redirect_next_is_ignored(client, shopper, evil):
    response = client.post(
        LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD, "next": evil}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("shop:home")


def test_login_merges_guest_cart_captured_before_login(client, shopper, monkeypatch):
    session = client.session
    session[cart_selectors.SESSION_CART_KEY] = 4242
    session.save()
    calls = []
    monkeypatch.setattr(
        cart_services,
        "merge_guest_cart",
        lambda *, guest_cart_id, user: calls.append((guest_cart_id, user.pk)),
    )

    client.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert calls == [(4242, shopper.pk)]


def test_login_enforces_csrf(shopper):
    csrf_client = Client(enforce_csrf_checks=True)

    response = csrf_client.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert response.status_code == 403
    assert SESSION_KEY not in csrf_client.session


def test_login_with_csrf_token_works(shopper):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.get(LOGIN_URL)
    token = csrf_client.cookies["csrftoken"].value

    response = csrf_client.post(
        LOGIN_URL,
        {"email": shopper.email, "password": factories.PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302


def test_logout_requires_post(client, shopper):
    client.force_login(shopper)

    get_response = client.get(reverse("accounts:logout"))

    assert get_response.status_code == 405
    assert int(client.session[SESSION_KEY]) == shopper.pk

    post_response = client.post(reverse("accounts:logout"))

    assert post_response.status_code == 302
    assert post_response["Location"] == reverse("shop:home")
    assert SESSION_KEY not in client.session


def test_invalid_email_format_is_a_field_error(client, db):
    response = client.post(LOGIN_URL, {"email": "not-an-email", "password": "x"})

    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
