"""A shop owner makes an API key, copies it once, and revokes it, on a desktop and a phone."""

import os

from playwright.sync_api import expect

from api.models import ApiKey
from api.services import keys as key_services
from tests import factories
from tests.fixtures.twofactor import sign_in_in_browser

SHOTS = os.environ.get("BAZAAR_SCREENSHOTS")  # a directory: also save screenshots there


def _fits(page, width: int, name: str) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
    # nothing wider than the screen: on a phone each key is a stack of labelled lines
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/backoffice-api-keys-{name}-{width}.png", full_page=True)


def test_an_owner_makes_copies_and_revokes_a_key(site, page, csp_violations):
    owner = factories.UserFactory(email="owner@example.com", full_name="Olga Owner")
    vendor = factories.VendorMembershipFactory(user=owner, vendor__name="Pottery Barn").vendor
    sign_in_in_browser(page, site, owner)
    page.goto(f"{site}/backoffice/")
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_text("No API keys yet.")).to_be_visible()
    for width in (1280, 390):
        _fits(page, width, "empty")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_label("Name").fill("Warehouse sync")
    page.get_by_label("Access").select_option("read_write")
    page.get_by_role("button", name="Make key").click()

    expect(page.get_by_text("API key “Warehouse sync” created.")).to_be_visible()
    secret = page.get_by_test_id("new-api-key").inner_text()
    assert ApiKey.objects.get(key_hash=key_services.tokens.digest(secret)).vendor == vendor
    key_services.create_key(
        vendor=vendor, name="Accounting export", scope="read", acting_user=owner
    )
    for width in (1280, 390):
        _fits(page, width, "new")
    page.reload()
    expect(page.get_by_test_id("new-api-key")).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(2)
    for width in (1280, 390):
        _fits(page, width, "list")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke Warehouse sync").click()

    expect(page.get_by_text("API key “Warehouse sync” revoked")).to_be_visible()
    assert ApiKey.objects.get(name="Warehouse sync").revoked_at is not None
    assert ApiKey.objects.get(name="Accounting export").revoked_at is None
    for width in (1280, 390):
        _fits(page, width, "revoked")
    assert csp_violations == []
