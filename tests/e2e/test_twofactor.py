"""Two-factor sign-in in the browser: set-up from the shown key, signing in with a code or a
recovery code, and the admin refusing a session without a second factor."""

import re

import pyotp
from django.conf import settings
from django.test import Client
from playwright.sync_api import Page, expect

from accounts.models import TotpDevice
from tests import factories
from tests.fixtures import twofactor

CODE_RE = re.compile(r"^[a-z0-9]{5}-[a-z0-9]{5}$")


def _password_step(page: Page, site: str, email: str, next_path: str = "") -> None:
    page.goto(f"{site}/accounts/login/{'?next=' + next_path if next_path else ''}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _enter_code(page: Page, code: str) -> None:
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Verify and continue").click()


def _set_up_from_the_page(page: Page) -> tuple[str, list[str]]:
    """Read the key shown for manual entry, answer with the app's code, read the codes."""
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.locator("svg.qr-code")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    page.get_by_label("6-digit code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").locator("code").all_inner_texts()
    return secret, codes


def _log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_shopper_sets_up_two_factor_and_signs_in_with_a_code(site, page, csp_violations):
    shopper = factories.UserFactory(email="sam@example.com", full_name="Sam Shopper")
    _password_step(page, site, shopper.email)
    page.goto(f"{site}/accounts/profile/")
    page.get_by_role("link", name="Set up two-factor sign-in").click()

    secret, codes = _set_up_from_the_page(page)
    page.get_by_role("link", name="I have saved my codes, continue").click()

    assert len(codes) == 10
    assert all(CODE_RE.match(code) for code in codes)
    expect(page.get_by_text("Recovery codes left: 10 of 10.")).to_be_visible()
    assert TotpDevice.objects.get(user=shopper).secret == secret

    _log_out(page)
    _password_step(page, site, shopper.email)
    expect(page.get_by_role("heading", name="Enter your sign-in code")).to_be_visible()
    _enter_code(page, twofactor.fresh_code(TotpDevice.objects.get(user=shopper)))

    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    assert csp_violations == []


def test_signing_in_with_a_recovery_code_uses_it_up(site, page, csp_violations):
    shopper = factories.UserFactory(email="rita@example.com")
    _password_step(page, site, shopper.email)
    page.goto(f"{site}/accounts/two-factor/set-up/")
    _, codes = _set_up_from_the_page(page)
    page.get_by_role("link", name="I have saved my codes, continue").click()
    _log_out(page)

    _password_step(page, site, shopper.email)
    page.get_by_text("No access to your app?").click()
    _enter_code(page, codes[3])

    expect(page.get_by_text("You signed in with a recovery code; 9 left.")).to_be_visible()
    _log_out(page)
    _password_step(page, site, shopper.email)
    _enter_code(page, codes[3])
    expect(page.get_by_text("That code is not right, or it has been used already.")).to_be_visible()
    assert csp_violations == []


def test_staff_without_an_app_set_it_up_before_reaching_the_admin(site, page, csp_violations):
    factories.UserFactory(email="boss@example.com", is_staff=True, is_superuser=True)

    page.goto(f"{site}/admin/")
    page.get_by_label("Email").fill("boss@example.com")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(
        page.get_by_text("Staff and shop owners must sign in with a second factor.")
    ).to_be_visible()
    page.goto(f"{site}/admin/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()  # still signed out

    page.goto(f"{site}/accounts/two-factor/set-up/?next=/admin/")
    _set_up_from_the_page(page)
    page.get_by_role("link", name="I have saved my codes, continue").click()

    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    assert csp_violations == []


def test_admin_refuses_a_signed_in_staff_session_without_a_second_factor(site, page, context):
    boss = factories.UserFactory(email="boss@example.com", is_staff=True, is_superuser=True)
    device = twofactor.enrol(boss)
    client = Client()
    client.force_login(boss)  # a session with the password factor only
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": site,
            }
        ]
    )

    page.goto(f"{site}/admin/shop/product/")

    expect(page.get_by_role("heading", name="Enter your sign-in code")).to_be_visible()
    expect(page.get_by_role("heading", name="Site administration")).to_have_count(0)
    _enter_code(page, twofactor.fresh_code(device))
    expect(page.get_by_role("heading", name="Select product to change")).to_be_visible()
