"""A new visitor's whole journey, from registering to a paid order, in a real browser."""

import re
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from shop.models import Order, OrderStatus, Payment, Product
from tests import factories

PASSWORD = "plum-orchard-velvet-42"


@pytest.fixture
def catalogue(transactional_db):
    kitchen = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    textiles = factories.CategoryFactory(name="Textiles", slug="textiles")
    oak = factories.VendorFactory(name="Oak & Iron", slug="oak-iron")
    flax = factories.VendorFactory(name="Flax House", slug="flax-house")
    board = factories.ProductFactory(
        name="Walnut Chopping Board",
        slug="walnut-chopping-board",
        vendor=oak,
        category=kitchen,
        price=Decimal("24.50"),
        stock=5,
    )
    factories.ProductFactory(
        name="Walnut Wall Shelf",
        slug="walnut-wall-shelf",
        vendor=oak,
        category=textiles,
        price=Decimal("80.00"),
    )
    towel = factories.ProductFactory(
        name="Linen Tea Towel",
        slug="linen-tea-towel",
        vendor=flax,
        category=textiles,
        price=Decimal("9.00"),
        stock=10,
    )
    return {"board": board, "towel": towel}


def _mark_page(page: Page) -> None:
    """Marks the loaded document, so a later check can tell a swap from a reload."""
    page.evaluate("document.documentElement.dataset.e2eMarker = 'still-here'")


def _assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("document.documentElement.dataset.e2eMarker") == "still-here"


def _register_and_verify(page: Page, site: str) -> None:
    page.goto(site)
    page.get_by_role("link", name="Register").click()
    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_label("Full name").fill("Nina Newcomer")
    page.get_by_label(re.compile(r"^Password")).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    # The link that was actually emailed.
    assert [message.to for message in mail.outbox] == [["nina@example.com"]]
    link = re.search(r"https?://\S+/accounts/verify/\S+/", mail.outbox[0].body).group(0)
    page.goto(link)
    expect(page.get_by_text("Your email address is verified. Log in to continue.")).to_be_visible()
    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_text("Please verify your email address to check out.")).to_have_count(0)


def _add_to_cart(page: Page, quantity: int = 1) -> None:
    page.get_by_label("Quantity").fill(str(quantity))
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#add-to-cart-result")).to_contain_text("Added")


def _check_out(page: Page, card_number: str, *, new_address: bool) -> None:
    page.get_by_role("link", name="Check out").click()
    if new_address:
        page.get_by_label("A new address").check()
        page.get_by_label("Full name").fill("Nina Newcomer")
        page.get_by_label("Address line 1").fill("12 Rosenthaler Strasse")
        page.get_by_label("City").fill("Berlin")
        page.get_by_label("Postal code").fill("10119")
        page.get_by_label("Country").select_option(label="Germany")
        page.get_by_label("Save to my address book").check()
    page.get_by_role("button", name="Continue to review").click()
    expect(page.get_by_role("heading", name="Shipping to")).to_be_visible()
    page.get_by_label("Card number").fill(card_number)
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=re.compile(r"^Place order and pay")).click()


def test_new_visitor_registers_searches_buys_and_finds_the_order(
    site, page: Page, catalogue, csp_violations
):
    _register_and_verify(page, site)

    # Search from the header, then narrow by category: only the grid is swapped.
    page.get_by_role("searchbox", name="Search products").fill("walnut")
    page.get_by_role("searchbox", name="Search products").press("Enter")
    results = page.locator("#product-results")
    expect(results).to_contain_text("Walnut Chopping Board")
    expect(results).to_contain_text("Walnut Wall Shelf")
    _mark_page(page)
    page.locator("#product-filters").get_by_label("Category").select_option("kitchen")
    expect(results).not_to_contain_text("Walnut Wall Shelf")
    expect(results).to_contain_text("Walnut Chopping Board")
    expect(page).to_have_url(re.compile(r"category=kitchen"))
    _assert_not_reloaded(page)

    # Products from two vendors.
    results.get_by_role("link", name=re.compile("Walnut Chopping Board")).click()
    expect(page.get_by_text("Oak & Iron").first).to_be_visible()
    _add_to_cart(page)
    expect(page.locator("#cart-badge .badge")).to_have_text("1")
    page.get_by_role("searchbox", name="Search products").fill("linen")
    page.get_by_role("searchbox", name="Search products").press("Enter")
    page.locator("#product-results").get_by_role("link", name=re.compile("Linen Tea Towel")).click()
    _add_to_cart(page)
    expect(page.locator("#cart-badge .badge")).to_have_text("2")

    # Change a quantity: the line, the totals and the badge change in one swap.
    page.locator("#cart-badge").click()
    _mark_page(page)
    page.get_by_label("Quantity of Walnut Chopping Board").fill("2")
    page.locator(f"#cart-line-{catalogue['board'].pk}").get_by_role("button", name="Update").click()
    expect(page.locator("#cart-summary")).to_contain_text("€58.00")  # 2 × 24.50 + 9.00
    expect(page.locator("#cart-badge .badge")).to_have_text("3")
    _assert_not_reloaded(page)

    _check_out(page, "4242 4242 4242 4242", new_address=True)

    expect(
        page.get_by_text(re.compile(r"Thank you, your order BZ-\d{6} is confirmed\."))
    ).to_be_visible()
    expect(page.get_by_text("Paid").first).to_be_visible()
    order = Order.objects.get(customer__email="nina@example.com")
    assert order.status == OrderStatus.PAID
    assert order.total == Decimal("58.00")
    assert sorted(order.lines.values_list("vendor__name", flat=True)) == [
        "Flax House",
        "Oak & Iron",
    ]
    assert Product.objects.get(pk=catalogue["board"].pk).stock == 3

    page.get_by_role("navigation", name="Account").get_by_role("link", name="My orders").click()
    expect(page.get_by_role("link", name=order.number)).to_be_visible()
    expect(page.locator("main")).to_contain_text("€58.00")
    assert csp_violations == []


def test_a_declined_card_shows_a_clear_error_and_leaves_no_paid_order(
    site, page: Page, catalogue, csp_violations
):
    shopper = factories.UserFactory(email="dora@example.com", full_name="Dora Decline")
    factories.AddressFactory(user=shopper, full_name="Dora Decline")
    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Email").fill("dora@example.com")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{site}{catalogue['board'].get_absolute_url()}")
    _add_to_cart(page, quantity=2)
    page.locator("#cart-badge").click()
    _check_out(page, "4000 0000 0000 0002", new_address=False)

    expect(page.get_by_text("Your card was declined.").first).to_be_visible()
    assert not Order.objects.filter(customer=shopper, status=OrderStatus.PAID).exists()
    assert Payment.objects.filter(order__customer=shopper, status="captured").count() == 0
    assert Product.objects.get(pk=catalogue["board"].pk).stock == 5  # returned
    assert csp_violations == []
