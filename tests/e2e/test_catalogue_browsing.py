"""Searching and filtering the catalogue in a real browser, on a desktop and on a phone."""

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shop.models import Product
from tests import factories

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def catalogue(transactional_db):
    kitchen = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    oak = factories.VendorFactory(name="Oak & Iron", slug="oak-iron")
    for name, price in [
        ("Walnut Chopping Board", "24.50"),
        ("Walnut Salad Servers", "18.00"),
        ("Enamel Milk Pan", "32.00"),
        ("Linen Tea Towel", "9.00"),
        ("Stoneware Mug", "14.00"),
        ("Beeswax Candle", "12.00"),
    ]:
        factories.ProductFactory(name=name, vendor=oak, category=kitchen, price=Decimal(price))


def _listing_requests(page: Page, site: str) -> list[str]:
    """Every request the page sends to the listing from now on (the URLs, in order)."""
    sent: list[str] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.url) if request.url.startswith(f"{site}/products/") else None
        ),
    )
    return sent


def _mark_page(page: Page) -> None:
    page.evaluate("document.documentElement.dataset.e2eMarker = 'still-here'")


def _assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("document.documentElement.dataset.e2eMarker") == "still-here"


def test_apply_filters_sends_one_request(site, page: Page, catalogue, csp_violations):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{site}/products/")
    filters = page.locator("#product-filters")
    sent = _listing_requests(page, site)

    # Prices, a search, then "Apply filters" at once: one request, not one for each field left,
    # one for the pause in typing and one for the submit. (The search box is filled last: a
    # pause longer than its 300 ms debounce before the click would rightly send its own search.)
    filters.get_by_label("Min").fill("10")
    filters.get_by_label("Max").fill("20")
    filters.get_by_label("Search").fill("walnut")
    filters.get_by_role("button", name="Apply filters").click()

    results = page.locator("#product-results")
    expect(results).to_contain_text("1 product")
    expect(results).to_contain_text("Walnut Salad Servers")
    page.wait_for_timeout(800)  # longer than the search box's pause
    assert len(sent) == 1
    assert "q=walnut" in sent[0]
    assert "min_price=10" in sent[0]
    assert "max_price=20" in sent[0]
    assert csp_violations == []


def test_htmx_search_updates_heading_title_and_header_search_box(
    site, page: Page, catalogue, csp_violations
):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{site}/products/")
    _mark_page(page)

    page.locator("#product-filters").get_by_label("Search").fill("walnut")

    expect(page.get_by_role("heading", level=1)).to_have_text("Results for “walnut”")
    expect(page).to_have_title("Results for “walnut” · Bazaar")
    expect(page.locator("#header-search-q")).to_have_value("walnut")
    expect(page.locator("#product-results")).to_contain_text("2 products")
    # The sort menu goes with the search: best match, now that there is one.
    expect(page).to_have_url(re.compile(r"/products/\?q=walnut&sort=relevance$"))
    _assert_not_reloaded(page)
    assert csp_violations == []


def test_minimum_above_maximum_is_explained_and_the_results_stay(site, page: Page, catalogue):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{site}/products/?q=walnut")
    filters = page.locator("#product-filters")
    results = page.locator("#product-results")
    expect(results).to_contain_text("2 products")

    filters.get_by_label("Min").fill("50")
    filters.get_by_label("Max").fill("10")
    filters.get_by_role("button", name="Apply filters").click()

    expect(filters.get_by_role("alert")).to_have_text(
        "Minimum price cannot be more than the maximum price."
    )
    expect(results).to_contain_text("2 products")
    expect(page).to_have_url(re.compile(r"/products/\?q=walnut$"))
    expect(page).to_have_title("Results for “walnut” · Bazaar")

    # Putting it right applies the range and clears the message.
    filters.get_by_label("Min").fill("5")
    filters.get_by_role("button", name="Apply filters").click()
    expect(results).to_contain_text("0 products")
    expect(filters.get_by_role("alert")).to_have_text("")


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_listing_on_a_phone_has_two_columns_and_folded_filters(site, phone: Page, catalogue):
    phone.goto(f"{site}/products/")

    cards = phone.locator("#product-results .product-card")
    expect(cards).to_have_count(6)
    first, second, third = (cards.nth(n).bounding_box() for n in range(3))
    assert first["y"] == second["y"]
    assert first["x"] < second["x"]
    assert second["x"] + second["width"] <= PHONE["width"]
    assert third["y"] > first["y"] + first["height"] - 1
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # The filters are folded behind "Filters" and open on a tap.
    search = phone.locator("#product-filters").get_by_label("Search")
    expect(search).to_be_hidden()
    phone.get_by_text("Filters", exact=True).click()
    expect(search).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_home_on_a_phone_has_two_columns(site, phone: Page, catalogue):
    phone.goto(site)

    cards = phone.locator("#featured-heading + .product-grid .product-card")
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert first["y"] == second["y"]
    assert first["x"] < second["x"]
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


SHOTS = os.environ.get("BAZAAR_SCREENSHOTS")  # a directory: also save screenshots there


@pytest.fixture
def big_catalogue(transactional_db):
    """A catalogue of 40 pages: chairs, tables and lamps from one shop."""
    vendor = factories.VendorFactory(name="Oak & Iron", slug="oak-iron")
    category = factories.CategoryFactory(name="Furniture", slug="furniture")
    kinds = ["Dining Chair", "Side Table", "Reading Lamp"]
    Product.objects.bulk_create(
        Product(
            vendor=vendor,
            category=category,
            name=f"Oak {kinds[n % 3]} No. {n}",
            slug=f"oak-{n}",
            description="Made by hand.",
            price=Decimal("40.00") + n,
            stock=5,
        )
        for n in range(40 * 24)
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_misspelt_search_and_its_pages(site, page: Page, big_catalogue, csp_violations, viewport):
    page.set_viewport_size(viewport)
    page.goto(f"{site}/products/")
    expect(page.locator(".result-count")).to_have_text("960 products")
    pagination = page.get_by_role("navigation", name="Pagination")
    # 40 pages, linked as 1 2 3 … 40: not every number.
    expect(pagination.get_by_role("link", name="Page 40")).to_be_visible()
    expect(pagination.get_by_role("link", name="Page 20")).to_have_count(0)
    _shoot(page, f"listing-{viewport['width']}")

    search = page.locator("#product-filters").get_by_label("Search")
    if not search.is_visible():
        page.locator(".filters-toggle").click()
    search.fill("chiar")
    expect(page.get_by_role("status")).to_have_text(
        "No products match “chiar”: showing results for “chair”."
    )
    expect(page.locator(".result-count")).to_have_text("320 products")
    expect(page.locator("#filter-sort")).to_have_value("relevance")
    expect(page.locator(".product-grid h3").first).to_contain_text("Dining Chair")

    pagination.get_by_role("link", name="Page 14").click()
    expect(pagination.locator('[aria-current="page"]')).to_have_text("14")
    expect(page).to_have_url(re.compile(r"q=chiar.*page=14|page=14.*q=chiar"))
    expect(page.locator(".product-grid h3")).to_have_count(320 - 13 * 24)
    pagination.get_by_role("link", name="Previous").click()
    expect(pagination.locator('[aria-current="page"]')).to_have_text("13")
    expect(page.locator(".product-grid h3")).to_have_count(24)
    _shoot(page, f"search-{viewport['width']}")
    assert csp_violations == []


def _shoot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        # caret="initial": hiding the caret would inject a style element the CSP refuses.
        page.screenshot(path=Path(SHOTS) / f"{name}.png", full_page=True, caret="initial")
