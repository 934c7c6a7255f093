"""A shop owner reads the shop's activity (its part of the audit log) on a desktop and a phone."""

import os
from decimal import Decimal

from playwright.sync_api import expect

from project import request_context
from project.audit import services as audit
from tests import factories
from tests.fixtures.twofactor import sign_in_in_browser

SHOTS = os.environ.get("BAZAAR_SCREENSHOTS")  # a directory: also save screenshots there


def test_an_owner_reads_the_activity_on_desktop_and_phone(site, page, csp_violations):
    owner = factories.UserFactory(email="owner@example.com", full_name="Olga Owner")
    vendor = factories.VendorMembershipFactory(user=owner, vendor__name="Pottery Barn").vendor
    mug = factories.ProductFactory(vendor=vendor, name="Stoneware Mug", price=Decimal("12.00"))
    audit.record(
        "product.price_changed",
        actor=owner,
        vendor=vendor,
        target=mug,
        changes={"price": ["12.00", "14.50"]},
    )
    audit.record(
        "stock.changed",
        actor=owner,
        vendor=vendor,
        target=mug,
        changes={"stock": [10, 7]},
        metadata={"reason": "damaged"},
    )
    token = request_context.current_client_ip.set("203.0.113.7")
    try:
        audit.record("team.invited", actor=owner, vendor=vendor, changes={"role": [None, "staff"]})
    finally:
        request_context.current_client_ip.reset(token)
    sign_in_in_browser(page, site, owner)

    page.goto(f"{site}/backoffice/")
    page.get_by_role("link", name="Activity").click()

    rows = page.locator(".activity-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Team member invited")
    expect(rows.first).to_contain_text("203.0.113.7")
    expect(page.get_by_text("12.00 → 14.50")).to_be_visible()
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        # nothing wider than the screen: on a phone each entry is a stack of labelled lines
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/backoffice-activity-{width}.png", full_page=True)
    page.get_by_label("Show").select_option("stock")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Stock changed")
    assert csp_violations == []


def test_staff_read_an_entry_in_the_admin(site, page, csp_violations):
    staff = factories.UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    vendor = factories.VendorFactory(name="Pottery Barn")
    mug = factories.ProductFactory(vendor=vendor, name="Stoneware Mug")
    entry = audit.record(
        "product.price_changed",
        actor=staff,
        vendor=vendor,
        target=mug,
        changes={"price": ["12.00", "14.50"]},
    )
    sign_in_in_browser(page, site, staff)

    page.goto(f"{site}/admin/audit/auditentry/")
    expect(page.locator("#result_list")).to_contain_text("Price changed")
    page.goto(f"{site}/admin/audit/auditentry/{entry.pk}/change/")

    expect(page.locator(".field-changes_display table")).to_contain_text("12.00")
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        if SHOTS:
            page.screenshot(path=f"{SHOTS}/admin-audit-entry-{width}.png", full_page=True)
    assert csp_violations == []
