"""Rate limits on password reset, registration, verification resends, checkout and pay, and
the emails they would otherwise send without end."""

from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shop.models import Cart, Order, Payment
from tests import factories
from tests.integration.payments_support import place_order

RESET_URL = reverse("accounts:password_reset")
REGISTER_URL = reverse("accounts:register")
RESEND_URL = reverse("accounts:verify_resend")
EXPIRY = f"12/{(timezone.now().year + 2) % 100:02d}"
GOOD_CARD = {"card_number": "4242 4242 4242 4242", "expiry": EXPIRY, "cvc": "123"}


def _limit(settings, bucket: str, limit: int, window: int) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, bucket: {"limit": limit, "window": window}}


def _registration(email: str) -> dict:
    return {
        "email": email,
        "full_name": "Someone Else",
        "password1": "correct-horse-battery-9",
        "password2": "correct-horse-battery-9",
    }


def test_password_reset_requests_are_limited_per_email(
    shopper, settings, django_capture_on_commit_callbacks
):
    _limit(settings, "password_reset_email", 2, 3600)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(2):
            sent = Client(REMOTE_ADDR=f"10.0.0.{n + 1}").post(RESET_URL, {"email": shopper.email})
            assert sent.status_code == 302
        refused = Client(REMOTE_ADDR="10.0.0.9").post(RESET_URL, {"email": shopper.email})

    assert refused.status_code == 429
    assert refused["Retry-After"] == "3600"
    assert "Too many attempts. Try again in 60 minutes." in refused.content.decode()
    assert len(mail.outbox) == 2


def test_password_reset_refusal_is_the_same_for_unknown_addresses(db, settings):
    _limit(settings, "password_reset_email", 1, 3600)
    Client(REMOTE_ADDR="10.0.0.1").post(RESET_URL, {"email": "nobody@example.com"})

    refused = Client(REMOTE_ADDR="10.0.0.2").post(RESET_URL, {"email": "nobody@example.com"})

    assert refused.status_code == 429
    assert "Too many attempts. Try again in 60 minutes." in refused.content.decode()
    assert mail.outbox == []


def test_password_reset_requests_are_limited_per_address(db, settings):
    _limit(settings, "password_reset_address", 3, 3600)
    visitor = Client(REMOTE_ADDR="10.0.0.5")
    for n in range(3):
        assert visitor.post(RESET_URL, {"email": f"guess{n}@example.com"}).status_code == 302

    refused = visitor.post(RESET_URL, {"email": "guess9@example.com"})

    assert refused.status_code == 429
    assert "Too many attempts." in refused.content.decode()


def test_registration_is_limited_per_address(db, settings):
    _limit(settings, "register_address", 2, 3600)
    visitor = Client(REMOTE_ADDR="10.0.0.5")
    for n in range(2):
        assert visitor.post(REGISTER_URL, _registration(f"new{n}@example.com")).status_code == 302

    refused = visitor.post(REGISTER_URL, _registration("new9@example.com"))

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 3500
    assert "Too many attempts. Try again in 60 minutes." in refused.content.decode()
    assert not factories.UserFactory._meta.model.objects.filter(email="new9@example.com").exists()


def test_ten_registrations_with_an_existing_address_email_its_owner_once(
    shopper, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        pages = [
            Client(REMOTE_ADDR=f"10.0.1.{n}").post(REGISTER_URL, _registration(shopper.email))
            for n in range(10)
        ]

    # Every visitor sees the same page as a new registration; the owner gets one notice.
    assert {page.status_code for page in pages} == {302}
    assert {page["Location"] for page in pages} == {reverse("accounts:verify_sent")}
    assert [m.subject for m in mail.outbox] == ["Someone tried to register with your email address"]


def test_ten_resend_clicks_send_one_email_and_say_why(
    client, shopper, django_capture_on_commit_callbacks
):
    shopper.email_verified_at = None
    shopper.save()
    client.force_login(shopper)

    with django_capture_on_commit_callbacks(execute=True):
        responses = [client.post(RESEND_URL) for _ in range(10)]

    assert responses[0].status_code == 302
    assert {r.status_code for r in responses[1:]} == {429}
    page = responses[1].content.decode()
    assert "Too many attempts. Try again in" in page
    assert "The links we sent before still work: check your inbox and your spam folder." in page
    assert 1 <= int(responses[1]["Retry-After"]) <= 60
    assert len(mail.outbox) == 1


def test_resends_are_capped_per_day(client, shopper, settings, django_capture_on_commit_callbacks):
    _limit(settings, "verification_resend_minute", 100, 60)
    _limit(settings, "verification_resend_day", 3, 86400)
    shopper.email_verified_at = None
    shopper.save()
    client.force_login(shopper)

    with django_capture_on_commit_callbacks(execute=True):
        statuses = [client.post(RESEND_URL).status_code for _ in range(5)]

    assert statuses == [302, 302, 302, 429, 429]
    assert len(mail.outbox) == 3


@pytest.fixture
def _own_ledger(settings, tmp_path):
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"


def _ready_to_pay(client, shopper):
    product = factories.ProductFactory(price=Decimal("30.00"), stock=50)
    cart = Cart.objects.get_or_create(user=shopper)[0]
    factories.CartItemFactory(cart=cart, product=product, quantity=1)
    address = factories.AddressFactory(user=shopper)
    client.post(reverse("shop:checkout"), {"address": str(address.pk)})


@pytest.mark.usefixtures("_own_ledger")
def test_checkout_attempts_are_limited_per_user(client, shopper, settings):
    _limit(settings, "checkout_user", 1, 600)
    client.force_login(shopper)
    _ready_to_pay(client, shopper)
    assert client.post(reverse("shop:checkout_review"), GOOD_CARD).status_code == 302
    _ready_to_pay(client, shopper)

    refused = client.post(reverse("shop:checkout_review"), GOOD_CARD)

    assert refused.status_code == 429
    assert refused["Retry-After"] in {"599", "600"}
    assert "Too many attempts. Try again in 10 minutes." in refused.content.decode()
    assert Order.objects.filter(customer=shopper).count() == 1


@pytest.mark.usefixtures("_own_ledger")
def test_pay_again_attempts_are_limited_per_user(
    client, shopper, settings, django_capture_on_commit_callbacks
):
    _limit(settings, "pay_user", 2, 600)
    order = place_order(shopper, (factories.ProductFactory(price=Decimal("30.00"), stock=5), 1))
    client.force_login(shopper)
    url = reverse("shop:order_pay", args=[order.pk])

    with django_capture_on_commit_callbacks(execute=False):
        first = client.post(url, GOOD_CARD)
        second = client.post(url, GOOD_CARD)
        refused = client.post(url, GOOD_CARD)

    assert (first.status_code, second.status_code) == (302, 302)
    assert refused.status_code == 429
    assert "Too many attempts. Try again in 10 minutes." in refused.content.decode()
    assert Payment.objects.filter(order=order).count() == 1


def test_guessing_the_current_password_on_the_change_form_is_limited(client, shopper, settings):
    _limit(settings, "password_change_user", 3, 900)
    client.force_login(shopper)
    url = reverse("accounts:password_change")
    new = "lantern-quarry-meadow-77"
    for n in range(3):
        wrong = client.post(
            url, {"old_password": f"guess-{n}", "new_password1": new, "new_password2": new}
        )
        assert "Your old password was entered incorrectly." in wrong.content.decode()

    refused = client.post(
        url, {"old_password": factories.PASSWORD, "new_password1": new, "new_password2": new}
    )

    page = refused.content.decode()
    assert refused.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in page
    # The refusal does not say whether this guess was right.
    assert "Your old password was entered incorrectly." not in page
    shopper.refresh_from_db()
    assert shopper.check_password(factories.PASSWORD)
