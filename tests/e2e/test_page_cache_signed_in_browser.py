"""Signed-in catalogue pages in a real browser: the page whose <main> comes from the cache
(another shopper's request put it there) looks exactly like the page the view renders, at
desktop and phone widths, and its add-to-cart form posts with this shopper's CSRF token."""

import io
import os
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from playwright.sync_api import Page, expect

from tests import factories

SHOTS = os.environ.get("BAZAAR_SCREENSHOTS")  # a directory: also save screenshots there
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def catalogue(transactional_db):
    category = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    for n in range(6):
        factories.ProductFactory(
            name=f"Walnut Board No. {n}",
            slug=f"walnut-board-{n}",
            category=category,
            price=Decimal("24.50") + n,
            stock=8 - n,
        )
    return {
        "shopper": factories.UserFactory(email="shopper@example.com"),
        "other": factories.UserFactory(email="other@example.com"),
    }


def _sign_in(page: Page, site: str, email: str) -> None:
    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _shot(page: Page, name: str) -> bytes:
    # caret="initial": hiding the caret would inject a style element the CSP refuses.
    png = page.screenshot(full_page=True, caret="initial")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        (Path(SHOTS) / f"{name}.png").write_bytes(png)
    return png


def _same_picture(first: bytes, second: bytes) -> bool:
    one, two = Image.open(io.BytesIO(first)), Image.open(io.BytesIO(second))
    return (
        one.size == two.size
        and ImageChops.difference(one.convert("RGB"), two.convert("RGB")).getbbox() is None
    )


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_signed_in_pages_from_the_cache_look_as_rendered(
    site, browser, catalogue, csp_violations, viewport
):
    other = browser.new_context(viewport=VIEWPORTS[viewport]).new_page()
    mine = browser.new_context(viewport=VIEWPORTS[viewport]).new_page()
    _sign_in(other, site, "other@example.com")
    _sign_in(mine, site, "shopper@example.com")

    for name, path in [("listing", "/products/"), ("product", "/p/walnut-board-2/")]:
        rendered = mine.goto(f"{site}{path}")
        assert rendered.headers["x-page-cache"] == "miss"
        expect(mine.locator("main h1")).to_be_visible()
        before = _shot(mine, f"signed-in-{name}-{VIEWPORTS[viewport]['width']}-rendered")

        kept = other.goto(f"{site}{path}")  # the other shopper's page from the cache
        assert kept.headers["x-page-cache"] == "hit"
        again = mine.goto(f"{site}{path}")
        assert again.headers["x-page-cache"] == "hit"
        expect(mine.locator("main h1")).to_be_visible()
        after = _shot(mine, f"signed-in-{name}-{VIEWPORTS[viewport]['width']}-cached")

        assert _same_picture(before, after), f"{name} at {viewport} looks different from the cache"

    mine.get_by_label("Quantity").fill("2")
    mine.get_by_role("button", name="Add to cart").click()
    expect(mine.locator("#add-to-cart-result")).to_contain_text("Added 2")
    expect(mine.locator("#cart-badge")).to_contain_text("2")
    other.reload()
    expect(other.locator("#cart-badge")).to_contain_text("0")
    assert csp_violations == []
