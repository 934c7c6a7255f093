"""On a 390 px phone every main page fits the screen: the page itself never scrolls sideways."""

import datetime
import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from shop.models import ReportJob, ReportKind, StockReason
from shop.services import stock as stock_services
from tests import factories
from tests.fixtures import twofactor

PHONE = {"width": 390, "height": 844}

# What pushes the page wider, named so a failure says what to fix: the innermost elements that
# are themselves wider than the window (else the one reaching furthest right), each as
# tag#id.classes inside its parent, with its width and the start of its text.
WIDEST_ELEMENTS = """() => {
  const limit = window.innerWidth;
  const all = [...document.body.querySelectorAll("*")];
  const boxes = new Map(all.map((element) => [element, element.getBoundingClientRect()]));
  const overflowing = all.filter((element) => boxes.get(element).right > limit + 0.5);
  let culprits = overflowing.filter((element) => boxes.get(element).width > limit);
  const inner = (element) => !culprits.some((o) => o !== element && element.contains(o));
  culprits = culprits.filter(inner);
  if (!culprits.length && overflowing.length) {
    const right = Math.max(...overflowing.map((element) => boxes.get(element).right));
    culprits = overflowing.filter((element) => boxes.get(element).right === right).slice(-1);
  }
  const name = (element) => element.tagName.toLowerCase() + (element.id ? "#" + element.id : "")
    + [...element.classList].map((c) => "." + c).join("");
  return culprits.slice(0, 3).map((element) => {
    const box = boxes.get(element);
    const text = (element.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 50);
    return `<${name(element)}> in <${name(element.parentElement)}>, ${Math.round(box.width)}px wide`
      + ` to ${Math.round(box.right)}px: "${text}"`;
  }).join("; ") || "none found";
}"""


@pytest.fixture
def phone(browser):
    # A plain 390 px viewport: mobile emulation would widen the layout viewport to fit wide
    # content (as a phone zooms out), hiding exactly the overflow this test looks for.
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def shop(transactional_db):
    """A shop with long names (they are what overflows), a cart, an order, a stock change,
    an invitation and a report: a row in every table."""
    kitchen = factories.CategoryFactory(name="Kitchen and dining", slug="kitchen")
    vendor = factories.VendorFactory(name="Oak & Iron Woodworkers Cooperative", slug="oak-iron")
    owner = factories.VendorMembershipFactory(
        vendor=vendor, user__email="vera.vendor@example.com", user__full_name="Vera Vendor"
    ).user
    board = factories.ProductFactory(
        name="Extra-large end-grain walnut chopping board with juice groove",
        slug="walnut-chopping-board",
        vendor=vendor,
        category=kitchen,
        price=Decimal("1249.50"),
        stock=40,
    )
    towel = factories.ProductFactory(
        name="Stonewashed linen tea towel",
        slug="linen-tea-towel",
        vendor=vendor,
        category=kitchen,
        price=Decimal("9.00"),
        stock=3,
    )
    shopper = factories.UserFactory(
        email="samantha.shopper@example.com", full_name="Samantha Shopper"
    )
    address = factories.AddressFactory(user=shopper, full_name="Samantha Shopper")
    shopper.default_address = address
    shopper.save(update_fields=["default_address"])
    cart = factories.CartFactory(user=shopper)
    factories.CartItemFactory(cart=cart, product=board, quantity=12)
    factories.CartItemFactory(cart=cart, product=towel, quantity=2)
    payment = factories.CapturedPaymentFactory(
        order__customer=shopper, order__total=Decimal("2508.00")
    )
    order = payment.order
    factories.OrderLineFactory(order=order, product=board, quantity=2)
    factories.OrderLineFactory(order=order, product=towel, quantity=1)
    stock_services.adjust_stock(
        product_id=board.pk,
        vendor=vendor,
        change=12,
        reason=StockReason.RECEIVED,
        note="Delivery 4711 from the Black Forest sawmill, checked and shelved",
        acting_user=owner,
    )
    factories.VendorInvitationFactory(
        vendor=vendor, email="bartholomew.longname-assistant@example.com"
    )
    ReportJob.objects.create(
        kind=ReportKind.VENDOR_SALES_BY_DAY,
        vendor=vendor,
        requested_by=owner,
        date_from=datetime.date(2026, 1, 1),
        date_to=datetime.date(2026, 1, 31),
    )
    return {"owner": owner, "shopper": shopper, "order": order, "board": board}


def _sign_in(page: Page, site: str, email: str) -> None:
    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _checkout_review(page: Page, site: str) -> None:
    page.goto(f"{site}/checkout/")
    page.get_by_role("button", name="Continue to review").click()
    expect(page.get_by_role("button", name=re.compile(r"^Place order and pay"))).to_be_visible()


# Each page: who is signed in (None, "shopper" or "owner") and how to reach it.
PAGES = {
    "shop home": (None, lambda page, site, shop: page.goto(f"{site}/")),
    "product listing": (None, lambda page, site, shop: page.goto(f"{site}/products/")),
    "product page": (
        None,
        lambda page, site, shop: page.goto(f"{site}{shop['board'].get_absolute_url()}"),
    ),
    "cart": ("shopper", lambda page, site, shop: page.goto(f"{site}/cart/")),
    "checkout address": ("shopper", lambda page, site, shop: page.goto(f"{site}/checkout/")),
    "checkout review": ("shopper", lambda page, site, shop: _checkout_review(page, site)),
    "order page": (
        "shopper",
        lambda page, site, shop: page.goto(f"{site}{shop['order'].get_absolute_url()}"),
    ),
    "my orders": ("shopper", lambda page, site, shop: page.goto(f"{site}/orders/")),
    "account": ("shopper", lambda page, site, shop: page.goto(f"{site}/accounts/profile/")),
    "backoffice dashboard": ("owner", lambda page, site, shop: page.goto(f"{site}/backoffice/")),
    "backoffice products": (
        "owner",
        lambda page, site, shop: page.goto(f"{site}/backoffice/products/"),
    ),
    "backoffice product form": (
        "owner",
        lambda page, site, shop: page.goto(f"{site}/backoffice/products/{shop['board'].pk}/edit/"),
    ),
    "backoffice orders": (
        "owner",
        lambda page, site, shop: page.goto(f"{site}/backoffice/orders/"),
    ),
    "backoffice order detail": (
        "owner",
        lambda page, site, shop: page.goto(f"{site}/backoffice/orders/{shop['order'].pk}/"),
    ),
    "backoffice reports": (
        "owner",
        lambda page, site, shop: page.goto(f"{site}/backoffice/reports/"),
    ),
    "backoffice stock": (
        "owner",
        lambda page, site, shop: page.goto(f"{site}/backoffice/products/{shop['board'].pk}/stock/"),
    ),
    "backoffice team": ("owner", lambda page, site, shop: page.goto(f"{site}/backoffice/team/")),
    "backoffice activity": (
        "owner",
        lambda page, site, shop: page.goto(f"{site}/backoffice/activity/"),
    ),
    "backoffice api keys": (
        "owner",
        lambda page, site, shop: page.goto(f"{site}/backoffice/api-keys/"),
    ),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_a_phone_screen(site, phone: Page, shop, name):
    who, visit = PAGES[name]
    if who == "shopper":
        _sign_in(phone, site, shop["shopper"].email)
    elif who == "owner":
        twofactor.sign_in_in_browser(phone, site, shop["owner"])

    visit(phone, site, shop)
    phone.wait_for_load_state("load")

    expect(phone.locator("h1").first).to_be_visible()
    scroll_width, inner_width = phone.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert inner_width == PHONE["width"]
    assert scroll_width <= inner_width, (
        f"{name} ({phone.url}) scrolls sideways on a phone: {scroll_width}px of content in a"
        f" {inner_width}px window; widest elements: {phone.evaluate(WIDEST_ELEMENTS)}"
    )
