"""Sign-in limits on every sign-in path, and the account-under-attack unlock link."""

import html
import re

import pytest
from django.contrib.auth import SESSION_KEY, authenticate
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import tokens
from accounts.ratelimit import UNLOCK_COOKIE, UNLOCK_REQUIRED_MESSAGE
from project.audit.models import AuditEntry
from tests import factories

LOGIN_URL = reverse("accounts:login")
ADMIN_LOGIN_URL = reverse("admin:login")


def _limit(settings, bucket: str, limit: int, window: int = 900) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, bucket: {"limit": limit, "window": window}}


def _admin_login(client: Client, email: str, password: str):
    return client.post(
        ADMIN_LOGIN_URL, {"username": email, "password": password, "next": "/admin/"}
    )


def test_admin_login_page_signs_nobody_in_and_sends_staff_to_the_limited_form(staff):
    # The outside review's finding: 30 wrong guesses at /admin/login/, then the right password
    # worked. Now /admin/login/ authenticates nothing; it sends everyone to the shop's form.
    attacker = Client(REMOTE_ADDR="10.0.0.1")
    for n in range(30):
        _admin_login(attacker, staff.email, f"guess-{n}")

    response = _admin_login(attacker, staff.email, factories.PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next=%2Fadmin%2F"
    assert SESSION_KEY not in attacker.session


def test_staff_sign_in_for_the_admin_is_limited_and_counted(staff, settings):
    _limit(settings, "login_account_address", 3)
    attacker = Client(REMOTE_ADDR="10.0.0.1")
    for _ in range(3):
        failed = attacker.post(
            f"{LOGIN_URL}?next=/admin/", {"email": staff.email, "password": "wrong-password-1"}
        )
        assert failed.status_code == 200

    refused = attacker.post(
        f"{LOGIN_URL}?next=/admin/", {"email": staff.email, "password": factories.PASSWORD}
    )

    assert refused.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in refused.content.decode()
    assert SESSION_KEY not in attacker.session
    assert AuditEntry.objects.filter(action="auth.locked_out", target_id=str(staff.pk)).count() == 1


def test_any_authenticate_call_with_a_request_is_limited(staff, settings, rf):
    # Whatever sign-in path is added later calls authenticate(); the backend limits it too.
    _limit(settings, "login_account_address", 2)
    request = rf.post("/anywhere/", REMOTE_ADDR="10.0.0.2")
    for _ in range(2):
        assert authenticate(request, email=staff.email, password="wrong-password-1") is None

    assert authenticate(request, email=staff.email, password=factories.PASSWORD) is None
    assert request.login_refusal.message == "Too many attempts. Try again in 15 minutes."
    other = rf.post("/anywhere/", REMOTE_ADDR="10.0.0.3")
    assert authenticate(other, email=staff.email, password=factories.PASSWORD) == staff


def test_tripping_a_limit_is_audited_once(shopper, settings):
    _limit(settings, "login_account_address", 3)
    attacker = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(5):
        attacker.post(LOGIN_URL, {"email": shopper.email, "password": "wrong-password-1"})

    entries = AuditEntry.objects.filter(action="auth.locked_out")
    assert [(e.target_id, e.metadata["limit"], e.ip) for e in entries] == [
        (str(shopper.pk), "login_account_address", "10.0.0.7")
    ]


def _attack_from_many_addresses(email: str, attempts: int) -> None:
    for n in range(attempts):
        Client(REMOTE_ADDR=f"10.0.1.{n + 1}").post(
            LOGIN_URL, {"email": email, "password": "wrong-password-1"}
        )


def test_account_under_attack_asks_new_browsers_for_an_emailed_link(
    shopper, settings, django_capture_on_commit_callbacks
):
    _limit(settings, "login_account", 5, 3600)
    _attack_from_many_addresses(shopper.email, 5)

    owner = Client(REMOTE_ADDR="192.0.2.10")
    with django_capture_on_commit_callbacks(execute=True):
        right = owner.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})
        wrong = Client(REMOTE_ADDR="10.0.2.1").post(
            LOGIN_URL, {"email": shopper.email, "password": "wrong-password-2"}
        )

    # The same answer whether the password was right or wrong: it tells a guesser nothing.
    assert right.status_code == wrong.status_code == 200
    assert UNLOCK_REQUIRED_MESSAGE in html.unescape(right.content.decode())
    assert UNLOCK_REQUIRED_MESSAGE in html.unescape(wrong.content.decode())
    assert SESSION_KEY not in owner.session
    # Only the right password sends the link.
    assert [m.to for m in mail.outbox] == [[shopper.email]]
    assert mail.outbox[0].subject == "Unlock sign-in to your Bazaar account"


def test_owner_opens_the_unlock_link_and_signs_in_while_the_attack_goes_on(
    shopper, settings, django_capture_on_commit_callbacks
):
    _limit(settings, "login_account", 5, 3600)
    _attack_from_many_addresses(shopper.email, 5)
    owner = Client(REMOTE_ADDR="192.0.2.10")
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})
    link = re.search(r"https?://\S+/accounts/login/unlock/\S+/", mail.outbox[-1].body).group(0)

    unlocked = owner.get(link, follow=True)
    assert "This browser is unlocked for your account. Sign in again now." in (
        unlocked.content.decode()
    )
    _attack_from_many_addresses(shopper.email, 5)
    response = owner.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert response.status_code == 302
    assert int(owner.session[SESSION_KEY]) == shopper.pk
    # The attacker's browsers are still asked for the link.
    attacker = Client(REMOTE_ADDR="10.0.3.1")
    still = attacker.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})
    assert UNLOCK_REQUIRED_MESSAGE in html.unescape(still.content.decode())


def test_unlock_emails_are_throttled(shopper, settings, django_capture_on_commit_callbacks):
    _limit(settings, "login_account", 2, 3600)
    _attack_from_many_addresses(shopper.email, 2)

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            Client(REMOTE_ADDR="192.0.2.10").post(
                LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD}
            )

    assert len(mail.outbox) == 1


@pytest.mark.parametrize("token", ["garbage", "x" * 80])
def test_a_bad_unlock_link_unlocks_nothing(client, shopper, token):
    response = client.get(reverse("accounts:login_unlock", kwargs={"token": token}), follow=True)

    assert "This unlock link is not valid any more." in response.content.decode()
    assert UNLOCK_COOKIE not in client.cookies


def test_an_unlock_link_is_worthless_after_a_password_change(client, shopper, settings):
    token = tokens.make_login_unlock_token(shopper)
    shopper.set_password("a-new-password-42")
    shopper.save()

    response = client.get(reverse("accounts:login_unlock", kwargs={"token": token}), follow=True)

    assert "This unlock link is not valid any more." in response.content.decode()
    assert UNLOCK_COOKIE not in client.cookies


def test_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_limit(shopper, settings):
    settings.TRUSTED_PROXIES = []
    _limit(settings, "login_account_address", 3)
    for n in range(3):
        Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").post(
            LOGIN_URL, {"email": shopper.email, "password": "wrong-password-1"}
        )

    response = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.99").post(
        LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD}
    )

    assert response.status_code == 429


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(shopper, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    _limit(settings, "login_account_address", 3)
    for _ in range(3):
        # The attacker writes a left-most entry of its own; the proxy appends what it saw.
        Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.10, 203.0.113.5").post(
            LOGIN_URL, {"email": shopper.email, "password": "wrong-password-1"}
        )

    attacker = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.10, 203.0.113.5")
    owner = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.10")
    refused = attacker.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})
    signed_in = owner.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert refused.status_code == 429
    assert signed_in.status_code == 302
    entry = AuditEntry.objects.get(action="auth.locked_out")
    assert entry.ip == "203.0.113.5"


def test_in_production_the_unlock_cookie_is_a_host_cookie(client, shopper, settings):
    settings.SESSION_COOKIE_SECURE = True
    token = tokens.make_login_unlock_token(shopper)

    client.get(reverse("accounts:login_unlock", kwargs={"token": token}), secure=True)

    cookie = client.cookies[f"__Host-{UNLOCK_COOKIE}"]
    assert (cookie["secure"], cookie["httponly"], cookie["path"]) == (True, True, "/")
    assert cookie["samesite"] == "Lax"


def test_a_browser_that_signed_in_before_is_not_asked_for_the_link(shopper, settings):
    _limit(settings, "login_account", 3, 3600)
    owner = Client(REMOTE_ADDR="192.0.2.10")
    owner.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})
    owner.post(reverse("accounts:logout"))
    assert owner.cookies[UNLOCK_COOKIE]["max-age"] == 30 * 24 * 3600

    _attack_from_many_addresses(shopper.email, 5)
    response = owner.post(LOGIN_URL, {"email": shopper.email, "password": factories.PASSWORD})

    assert response.status_code == 302
    assert int(owner.session[SESSION_KEY]) == shopper.pk


def test_a_failed_sign_in_sets_no_unlock_cookie(client, shopper):
    client.post(LOGIN_URL, {"email": shopper.email, "password": "wrong-password-1"})

    assert UNLOCK_COOKIE not in client.cookies
