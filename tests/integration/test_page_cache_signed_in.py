"""Catalogue pages for visitors with a state of their own (signed in, a cart, a message): the
page's <main> (and its title and description) comes from the cache shared by all of them; the
header, banner, messages and CSRF token are each visitor's own; a change a service makes
shows on the very next page."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from backoffice.services import products as product_services
from shop.models import Product, VendorStatus
from shop.services import stock as stock_services
from tests import factories

pytestmark = pytest.mark.django_db

NONCE = re.compile(r'nonce="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
HEADER_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')
MASKED_TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{64}(?![A-Za-z0-9])")
HTMX_RESULTS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "product-results"}
# A hit costs the visitor's own parts only: the user (with the "Backoffice" link's answer), the
# badge.
HIT_QUERIES = 2


@pytest.fixture
def oak_board(db):
    return factories.ProductFactory(
        name="Oak Board", slug="oak-board", price=Decimal("24.50"), stock=20
    )


@pytest.fixture
def other_shopper(db):
    return factories.UserFactory(email="other@example.com", full_name="Olga Other")


def _browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def _pages(product: Product) -> dict[str, str]:
    return {
        "listing": "/products/?sort=price_asc",
        "category": product.category.get_absolute_url(),
        "search": "/products/?q=oak",
        "product": product.get_absolute_url(),
        "home": "/",
    }


def _main(html: str) -> str:
    return html[html.index('<main id="main"') : html.rindex("</main>")]


def _add_by_htmx(browser: Client, product: Product, token: str):
    return browser.post(
        reverse("shop:cart_add"),
        {"product_id": product.pk, "quantity": 1},
        HTTP_X_CSRFTOKEN=token,
        HTTP_HX_REQUEST="true",
    )


def _normalised(html: str) -> str:
    """The page without its per-request values (nonce, CSRF tokens)."""
    for nonce in set(NONCE.findall(html)):
        html = html.replace(nonce, "<nonce>")
    return MASKED_TOKEN.sub("<csrf>", html)


@pytest.mark.parametrize("page", ["listing", "category", "search", "product", "home"])
def test_second_signed_in_visitor_gets_the_shared_page_with_a_few_queries(
    oak_board, shopper, other_shopper, page, django_assert_max_num_queries
):
    url = _pages(oak_board)[page]
    first = _browser(shopper).get(url)
    second_browser = _browser(other_shopper)
    second_browser.get(reverse("accounts:profile"))  # the session is under way

    with django_assert_max_num_queries(HIT_QUERIES):
        second = second_browser.get(url)

    assert first["X-Page-Cache"] == "miss"
    assert second["X-Page-Cache"] == "hit"
    assert second.status_code == 200
    assert "no-store" in second["Cache-Control"]
    assert "Oak Board" in second.text
    assert "Log out" in second.text


@pytest.mark.parametrize("page", ["listing", "category", "search", "product", "home"])
def test_a_page_from_the_cache_is_the_page_the_view_renders(oak_board, shopper, page):
    url = _pages(oak_board)[page]
    browser = _browser(shopper)

    rendered = browser.get(url)
    kept = browser.get(url)

    assert (rendered["X-Page-Cache"], kept["X-Page-Cache"]) == ("miss", "hit")
    assert _normalised(kept.text) == _normalised(rendered.text)
    assert kept["Vary"] == rendered["Vary"]
    assert "page-cache:" not in kept.text


def test_each_visitor_keeps_their_own_header(oak_board, shopper, vendor_member):
    factories.CartItemFactory(cart__user=vendor_member, product=oak_board, quantity=3)
    member = _browser(vendor_member)
    shopper_browser = _browser(shopper)

    members_page = member.get("/products/")
    shoppers_page = shopper_browser.get("/products/")
    members_again = member.get("/products/")

    assert shoppers_page["X-Page-Cache"] == members_again["X-Page-Cache"] == "hit"
    assert 'aria-label="3 items in cart"' in members_page.text
    assert 'aria-label="3 items in cart"' in members_again.text
    assert 'aria-label="0 items in cart"' in shoppers_page.text
    assert "Backoffice" in members_page.text
    assert "Backoffice" in members_again.text
    assert "Backoffice" not in shoppers_page.text
    assert _main(shoppers_page.text) == _main(members_page.text)


@pytest.mark.parametrize(
    ("status", "linked"),
    [
        (VendorStatus.APPROVED, True),
        (VendorStatus.SUSPENDED, True),  # its backoffice opens read-only
        (VendorStatus.PENDING, False),
        (VendorStatus.REJECTED, False),
    ],
)
def test_the_backoffice_link_follows_the_vendors_status_at_no_query_of_its_own(
    oak_board, status, linked, django_assert_max_num_queries
):
    member = factories.VendorMembershipFactory(vendor__status=status).user
    browser = _browser(member)
    browser.get("/products/")

    with django_assert_max_num_queries(HIT_QUERIES):
        page = browser.get("/products/")

    assert page["X-Page-Cache"] == "hit"
    assert ("Backoffice</a>" in page.text) is linked


def test_signed_in_and_anonymous_pages_are_kept_apart(oak_board, shopper):
    Client().get("/products/")
    anonymous_hit = Client().get("/products/")
    signed_in = _browser(shopper).get("/products/")
    anonymous_again = Client().get("/products/")

    assert anonymous_hit["X-Page-Cache"] == "hit"
    assert signed_in["X-Page-Cache"] == "miss"
    assert "Log out" in signed_in.text
    assert "Log out" not in anonymous_again.text
    assert "Log in" in anonymous_again.text


def test_csrf_token_in_a_shared_page_is_the_visitors_own(oak_board, shopper, other_shopper):
    url = oak_board.get_absolute_url()
    first = Client(enforce_csrf_checks=True)
    first.force_login(shopper)
    second = Client(enforce_csrf_checks=True)
    second.force_login(other_shopper)

    first_page = first.get(url)
    second_page = second.get(url)

    assert second_page["X-Page-Cache"] == "hit"
    first_tokens = set(CSRF_INPUT.findall(first_page.text))
    second_tokens = set(CSRF_INPUT.findall(second_page.text))
    # The add-to-cart form (inside <main>) and the log-out form each carry one.
    assert len(CSRF_INPUT.findall(second_page.text)) == 2
    assert not first_tokens & second_tokens
    added = second.post(
        reverse("shop:cart_add"),
        {
            "product_id": oak_board.pk,
            "quantity": 2,
            "csrfmiddlewaretoken": CSRF_INPUT.findall(_main(second_page.text))[0],
        },
    )
    by_htmx = _add_by_htmx(second, oak_board, HEADER_TOKEN.search(second_page.text).group(1))
    assert added.status_code == 302
    assert by_htmx.status_code == 200
    assert 'aria-label="3 items in cart"' in second.get(reverse("shop:cart")).text
    # The first visitor's token is not the second one's: it is refused for the second.
    refused = _add_by_htmx(second, oak_board, HEADER_TOKEN.search(first_page.text).group(1))
    assert refused.status_code == 403


def test_a_message_is_shown_to_its_visitor_only(oak_board, shopper, other_shopper):
    _browser(other_shopper).get("/products/")
    browser = _browser(shopper)
    browser.post(reverse("shop:cart_add"), {"product_id": oak_board.pk, "quantity": 1})

    mine = browser.get("/products/")
    again = browser.get("/products/")
    someone_elses = _browser(other_shopper).get("/products/")

    assert mine["X-Page-Cache"] == "hit"
    assert "Added 1 × Oak Board to your cart." in mine.text
    assert "Added 1 × Oak Board" not in again.text  # shown once
    assert "Added 1 × Oak Board" not in someone_elses.text
    assert 'aria-label="1 item in cart"' in again.text


def test_price_change_shows_at_once_to_a_signed_in_visitor(
    oak_board, shopper, django_capture_on_commit_callbacks
):
    browser = _browser(shopper)
    browser.get("/products/")
    browser.get(oak_board.get_absolute_url())
    assert browser.get("/products/")["X-Page-Cache"] == "hit"

    with django_capture_on_commit_callbacks(execute=True):
        product_services.update_price_and_stock(
            vendor=oak_board.vendor,
            product_id=oak_board.pk,
            price=Decimal("19.00"),
            stock=oak_board.stock,
            expected_stock=oak_board.stock,
            acting_user=None,
        )

    listing = browser.get("/products/")
    page = browser.get(oak_board.get_absolute_url())
    assert listing["X-Page-Cache"] == page["X-Page-Cache"] == "miss"
    assert "€19.00" in listing.text
    assert "€24.50" not in listing.text
    assert '<p class="price">€19.00</p>' in page.text


def test_a_sale_dates_the_signed_in_product_page(
    oak_board, shopper, django_capture_on_commit_callbacks
):
    browser = _browser(shopper)
    browser.get(oak_board.get_absolute_url())

    with django_capture_on_commit_callbacks(execute=True):
        stock_services.set_stock(
            product_id=oak_board.pk, vendor=oak_board.vendor, new_stock=0, acting_user=None
        )

    page = browser.get(oak_board.get_absolute_url())
    assert page["X-Page-Cache"] == "miss"
    assert "Out of stock" in page.text
    assert "disabled" in _main(page.text)


def test_htmx_results_fragment_is_shared_whole(oak_board, shopper, other_shopper):
    first = _browser(shopper).get("/products/?q=oak", **HTMX_RESULTS)
    second = _browser(other_shopper).get("/products/?q=oak", **HTMX_RESULTS)
    page = _browser(other_shopper).get("/products/?q=oak")

    assert (first["X-Page-Cache"], second["X-Page-Cache"]) == ("miss", "hit")
    assert "<html" not in second.text
    assert 'id="product-results"' in second.text
    assert second["HX-Push-Url"] == "/products/?q=oak"
    assert second.text == first.text
    assert page["X-Page-Cache"] == "miss"  # the full page is another entry
    assert "<html" in page.text


def test_unknown_product_is_never_kept(shopper):
    browser = _browser(shopper)

    assert browser.get("/p/nothing-here/").status_code == 404
    assert browser.get("/p/nothing-here/").status_code == 404


def test_signed_in_pages_are_rendered_when_the_cache_is_off(oak_board, shopper, settings):
    settings.PAGE_CACHE_SECONDS = 0
    browser = _browser(shopper)

    browser.get("/products/")
    response = browser.get("/products/")

    assert "X-Page-Cache" not in response
    assert "Oak Board" in response.text


def test_a_message_waiting_stays_out_of_a_shared_fragment(oak_board, shopper):
    browser = _browser(shopper)
    browser.post(reverse("shop:cart_add"), {"product_id": oak_board.pk, "quantity": 1})

    fragment = browser.get("/products/?q=oak", **HTMX_RESULTS)
    other = _browser(shopper).get("/products/?q=oak", **HTMX_RESULTS)

    assert "Added 1" not in fragment.text
    assert "Added 1" not in other.text
    assert "Added 1 × Oak Board" in browser.get("/products/").text
