"""A shop owner connects their own system in the browser: adds a webhook endpoint, copies its
secret, sends a test event that their (real, in-test) server receives signed, reads the
delivery log, and deletes the endpoint after confirming; on a desktop and a phone."""

# The receiver fixture is imported, then named by the test.
# ruff: noqa: F811

import os

from playwright.sync_api import expect

from tests import factories
from tests.fixtures.twofactor import sign_in_in_browser
from tests.fixtures.webhook_receiver import webhook_receiver  # noqa: F401
from webhooks.models import Endpoint

SHOTS = os.environ.get("BAZAAR_SCREENSHOTS")  # a directory: also save screenshots there


def fits(page, width: int, name: str) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/backoffice-{name}-{width}.png", full_page=True)


def test_an_owner_connects_a_system_and_reads_the_log(site, page, csp_violations, webhook_receiver):
    owner = factories.UserFactory(email="owner@example.com", full_name="Olga Owner")
    factories.VendorMembershipFactory(user=owner, vendor__name="Pottery Barn")
    sign_in_in_browser(page, site, owner)
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{site}/backoffice/")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Endpoint URL").fill(webhook_receiver.url)
    page.get_by_label("Description (optional)").fill("Warehouse system")
    page.get_by_role("button", name="Add endpoint").click()

    secret = page.get_by_test_id("webhook-secret")
    expect(secret).to_be_visible()
    endpoint = Endpoint.objects.get()
    expect(secret).to_have_text(endpoint.secret)
    webhook_receiver.secrets.append(endpoint.secret)
    for width in (1280, 390):
        fits(page, width, "webhooks")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("button", name="Send test event").click()

    [request] = webhook_receiver.wait_for(1)
    assert request.verified
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ping")
    expect(rows.first).to_contain_text("Delivered")
    expect(rows.first).to_contain_text("HTTP 200")
    for width in (1280, 390):
        fits(page, width, "webhook-deliveries")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="Back to the endpoints").click()
    expect(page.get_by_test_id("webhook-secret")).to_have_count(0)
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    assert Endpoint.objects.count() == 0
    assert csp_violations == []
