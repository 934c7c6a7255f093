"""What a person sees in the browser when a sign-in limit or the unlock-link rule applies."""

import os

from playwright.sync_api import expect

from accounts.ratelimit import UNLOCK_REQUIRED_MESSAGE
from tests import factories

SHOTS = os.environ.get("BAZAAR_SCREENSHOTS")  # a directory: also save screenshots there


def _sign_in(page, site: str, email: str, password: str) -> None:
    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _shot(page, name: str) -> None:
    if SHOTS:
        for width, height in ((1366, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)


def test_too_many_wrong_passwords_show_when_to_try_again(site, page, settings, csp_violations):
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "login_account_address": {"limit": 2, "window": 900},
    }
    user = factories.UserFactory(email="owner@example.com")
    for _ in range(2):
        _sign_in(page, site, user.email, "wrong-password-1")
        expect(page.locator(".errorlist.nonfield")).to_contain_text(
            "Email or password is incorrect."
        )

    _sign_in(page, site, user.email, factories.PASSWORD)

    expect(page.locator(".errorlist.nonfield")).to_have_text(
        "Too many attempts. Try again in 15 minutes."
    )
    _shot(page, "login-too-many")
    assert csp_violations == []


def test_an_account_under_attack_asks_for_the_unlock_link(site, page, settings, csp_violations):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_account": {"limit": 1, "window": 3600}}
    user = factories.UserFactory(email="owner@example.com")
    _sign_in(page, site, user.email, "wrong-password-1")

    _sign_in(page, site, user.email, factories.PASSWORD)

    expect(page.locator(".errorlist.nonfield")).to_have_text(UNLOCK_REQUIRED_MESSAGE)
    _shot(page, "login-unlock-needed")
    assert csp_violations == []
