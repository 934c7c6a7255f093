"""A vendor lists a product, a shopper buys it, the vendor ships it: two browsers, one shop."""

import re
from decimal import Decimal

import pytest
from django.core import mail
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from shop.models import LineStatus, Order, OrderStatus, Product, Shipment
from tests import factories
from tests.fixtures import twofactor


@pytest.fixture
def shop_world(transactional_db):
    factories.CategoryFactory(name="Kitchen", slug="kitchen")
    vendor = factories.VendorFactory(name="Oak & Iron", slug="oak-iron")
    owner = factories.VendorMembershipFactory(
        vendor=vendor, user__email="vera@example.com", user__full_name="Vera Vendor"
    ).user
    shopper = factories.UserFactory(email="sam@example.com", full_name="Sam Shopper")
    address = factories.AddressFactory(user=shopper, full_name="Sam Shopper")
    shopper.default_address = address
    shopper.save(update_fields=["default_address"])
    return {"vendor": vendor, "owner": owner, "shopper": shopper}


@pytest.fixture
def product_image(tmp_path):
    path = tmp_path / "mug.png"
    Image.new("RGB", (64, 64), (180, 90, 40)).save(path, format="PNG")
    return path


def _watch_csp(page: Page, violations: list[str]) -> Page:
    def record(message):
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(message.text)

    page.on("console", record)
    page.set_default_timeout(10_000)
    return page


def _log_in(page: Page, site: str, email: str) -> None:
    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_vendor_lists_a_product_a_shopper_buys_it_and_the_vendor_ships_it(
    site, browser: Browser, shop_world, product_image
):
    violations: list[str] = []
    vendor_context, shopper_context = browser.new_context(), browser.new_context()
    vendor_page = _watch_csp(vendor_context.new_page(), violations)
    shopper_page = _watch_csp(shopper_context.new_page(), violations)

    # The vendor creates a product with an image, then receives stock for it.
    twofactor.sign_in_in_browser(vendor_page, site, shop_world["owner"])  # owners: two factors
    vendor_page.get_by_role("link", name="Backoffice").click()
    vendor_page.get_by_role("navigation", name="Backoffice").get_by_role(
        "link", name="Products"
    ).click()
    vendor_page.get_by_role("link", name="New product").first.click()
    vendor_page.get_by_label("Name").fill("Glazed Stoneware Mug")
    vendor_page.get_by_label("Category").select_option(label="Kitchen")
    vendor_page.get_by_label("Price").fill("14.50")
    vendor_page.get_by_label("Stock").fill("0")
    vendor_page.get_by_label("Image").set_input_files(product_image)
    vendor_page.get_by_role("button", name="Create product").click()
    expect(vendor_page.get_by_text("Glazed Stoneware Mug was created.")).to_be_visible()
    product = Product.objects.get(name="Glazed Stoneware Mug")
    assert product.vendor == shop_world["vendor"]
    assert product.image.name.endswith(".png")

    vendor_page.get_by_role("link", name="Stock history of Glazed Stoneware Mug").click()
    vendor_page.get_by_label("Change").fill("5")
    vendor_page.get_by_label("Reason").select_option(label="Received")
    vendor_page.get_by_role("button", name="Save adjustment").click()
    expect(vendor_page.locator(".stats")).to_contain_text("5")
    assert Product.objects.get(pk=product.pk).stock == 5

    # In a second browser, a shopper finds it and pays by card.
    _log_in(shopper_page, site, "sam@example.com")
    shopper_page.get_by_role("searchbox", name="Search products").fill("stoneware")
    shopper_page.get_by_role("searchbox", name="Search products").press("Enter")
    shopper_page.locator("#product-results").get_by_role(
        "link", name=re.compile("Glazed Stoneware Mug")
    ).click()
    expect(shopper_page.get_by_role("img").first).to_be_visible()
    shopper_page.get_by_label("Quantity").fill("2")
    shopper_page.get_by_role("button", name="Add to cart").click()
    expect(shopper_page.locator("#add-to-cart-result")).to_contain_text("Added")
    shopper_page.locator("#cart-badge").click()
    shopper_page.get_by_role("link", name="Check out").click()
    shopper_page.get_by_role("button", name="Continue to review").click()
    shopper_page.get_by_label("Card number").fill("4242 4242 4242 4242")
    shopper_page.get_by_label("Expiry (MM/YY)").fill("12/34")
    shopper_page.get_by_label("CVC").fill("123")
    shopper_page.get_by_role("button", name=re.compile(r"^Place order and pay")).click()
    expect(
        shopper_page.get_by_text(re.compile(r"Thank you, your order BZ-\d{6} is confirmed\."))
    ).to_be_visible()
    order = Order.objects.get(customer=shop_world["shopper"])
    assert order.status == OrderStatus.PAID
    assert order.total == Decimal("29.00")

    # The vendor finds the order and marks it shipped.
    vendor_page.get_by_role("navigation", name="Backoffice").get_by_role(
        "link", name=re.compile("^Orders")
    ).click()
    vendor_page.get_by_label("State").select_option(label="To ship")
    vendor_page.get_by_role("link", name=order.number).click()
    expect(vendor_page.get_by_role("heading", name=f"Order {order.number}")).to_be_visible()
    expect(vendor_page.locator("main")).to_contain_text("Sam Shopper")
    vendor_page.get_by_label("Carrier").fill("DHL")
    vendor_page.get_by_label("Tracking number").fill("JJD0099887766")
    vendor_page.get_by_role("button", name="Mark shipped").click()
    expect(
        vendor_page.get_by_text("Marked shipped with DHL, tracking number JJD0099887766.")
    ).to_be_visible()
    shipment = Shipment.objects.get(order=order)
    assert (shipment.carrier, shipment.tracking_number) == ("DHL", "JJD0099887766")
    assert list(order.lines.values_list("status", flat=True)) == [LineStatus.SHIPPED]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SHIPPED

    # The shopper was emailed and sees the order shipped.
    shipped_mail = [
        m for m in mail.outbox if m.subject == f"Your order {order.number} is on its way"
    ]
    assert [m.to for m in shipped_mail] == [["sam@example.com"]]
    assert "JJD0099887766" in shipped_mail[0].body
    shopper_page.goto(f"{site}{order.get_absolute_url()}")
    expect(shopper_page.locator("#order-status")).to_contain_text("Shipped")
    expect(shopper_page.locator("main")).to_contain_text("JJD0099887766")

    assert violations == []
    vendor_context.close()
    shopper_context.close()
