"""Cached catalogue pages in a real browser and over real HTTP: the page another visitor's
request put in the cache runs its scripts under this response's CSP, its forms post with this
visitor's CSRF token, and a revalidated page (304, which carries no CSP header to replace the
one the browser kept with the page) keeps working."""

import http.client
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests import factories


@pytest.fixture
def board(transactional_db):
    return factories.ProductFactory(
        name="Walnut Chopping Board",
        slug="walnut-chopping-board",
        price=Decimal("24.50"),
        stock=8,
    )


def _get(site: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    parts = urlsplit(site)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_add_to_cart_from_a_page_served_from_the_cache(site, page: Page, board, csp_violations):
    assert _get(site, "/p/walnut-chopping-board/").headers["X-Page-Cache"] == "miss"

    response = page.goto(f"{site}/p/walnut-chopping-board/")
    assert response.headers["x-page-cache"] == "hit"
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add to cart").click()

    expect(page.locator("#add-to-cart-result")).to_contain_text("Added 2")
    expect(page.locator("#cart-badge")).to_contain_text("2")
    # With a cart the visitor's header is their own, rendered around the shared page.
    response = page.goto(f"{site}/products/")
    assert response.headers["x-page-cache"] == "miss"
    assert "no-store" in response.headers["cache-control"]
    expect(page.locator("#cart-badge")).to_contain_text("2")
    assert csp_violations == []


NAVIGATION = "performance.getEntriesByType('navigation')[0]"


def test_a_revalidated_page_keeps_its_scripts_working(site, page: Page, board, csp_violations):
    page.goto(f"{site}/p/walnut-chopping-board/")
    first = page.evaluate(f"{NAVIGATION}.toJSON()")
    page.goto(f"{site}/products/")
    page.goto(f"{site}/p/walnut-chopping-board/")
    again = page.evaluate(f"{NAVIGATION}.toJSON()")

    # Asked the server (bytes went over the wire), got only headers back (304): the body is
    # the one the browser kept.
    assert first["transferSize"] > first["encodedBodySize"] > 0
    assert 0 < again["transferSize"] < again["encodedBodySize"] == first["encodedBodySize"]
    # The kept page still works: htmx runs and posts with the token the page was given.
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#add-to-cart-result")).to_contain_text("Added 1")
    expect(page.locator("#cart-badge")).to_contain_text("1")
    assert csp_violations == []


def test_conditional_get_over_http(site, board):
    first = _get(site, "/products/")
    cookie = first.headers["Set-Cookie"].split(";", 1)[0]

    again = _get(site, "/products/", {"Cookie": cookie, "If-None-Match": first.headers["ETag"]})

    assert first.status == 200
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert again.status == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Content-Length"] in (None, "0")
    assert "Content-Security-Policy" not in again.headers
