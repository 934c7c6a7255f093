import re

from playwright.sync_api import expect

from tests import factories
from tests.fixtures import twofactor


def test_staff_uses_the_admin_under_the_nonce_csp(site, page, csp_violations):
    boss = factories.UserFactory(email="boss@example.com", is_staff=True, is_superuser=True)
    device = twofactor.enrol(boss)
    factories.ProductFactory(name="Walnut chopping board")

    # The admin sends visitors to the shop's one sign-in path, then to the second step.
    page.goto(f"{site}/admin/")
    page.get_by_label("Email").fill("boss@example.com")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Code").fill(twofactor.fresh_code(device))
    page.get_by_role("button", name="Verify and continue").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    page.goto(f"{site}/admin/shop/product/")
    expect(page.get_by_role("link", name="Walnut chopping board")).to_be_visible()
    # The admin's own scripts work: the action select and "select all" checkbox respond.
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_have_text(re.compile(r"1 of 1 selected"))

    assert csp_violations == []
