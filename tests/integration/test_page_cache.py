"""Anonymous catalogue pages from the cache (project.page_cache): what a visitor sees is never
another visitor's, and never older than the last change a service made."""

import io
import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from backoffice.services import onboarding as onboarding_services
from backoffice.services import products as product_services
from shop.models import Product
from shop.services import stock as stock_services
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

NONCE = re.compile(r'<script [^>]*nonce="([^"]+)"')
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
HTMX_RESULTS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "product-results"}


@pytest.fixture
def oak_board(db):
    return factories.ProductFactory(
        name="Oak Board", slug="oak-board", price=Decimal("24.50"), stock=20
    )


def _visit(url: str, **headers):
    """One page for a first-time visitor (a browser of its own)."""
    return Client().get(url, **headers)


def _text(response) -> str:
    return response.content.decode()


def _change_price(product: Product, price: Decimal) -> None:
    """The vendor's inline edit in the product list, stock left as it is."""
    product_services.update_price_and_stock(
        vendor=product.vendor,
        product_id=product.pk,
        price=price,
        stock=product.stock,
        expected_stock=product.stock,
        acting_user=None,
    )


def _damage(product: Product, units: int) -> None:
    stock_services.adjust_stock(
        product_id=product.pk,
        vendor=product.vendor,
        change=-units,
        reason="damaged",
        acting_user=None,
    )


def test_second_visitor_gets_the_page_from_the_cache_without_a_query(
    oak_board, django_assert_max_num_queries
):
    first = _visit("/products/")
    with django_assert_max_num_queries(0):
        second = _visit("/products/")

    assert first["X-Page-Cache"] == "miss"
    assert second["X-Page-Cache"] == "hit"
    assert second.status_code == 200
    assert "Oak Board" in _text(second)
    assert "€24.50" in _text(second)


@pytest.mark.parametrize("url", ["/", "/products/?q=oak&sort=price_asc", "/p/oak-board/"])
def test_every_catalogue_page_is_kept(oak_board, url, django_assert_max_num_queries):
    oak_board.category.slug  # noqa: B018 - loaded before the budget
    _visit(url)
    with django_assert_max_num_queries(0):
        response = _visit(url)

    assert response["X-Page-Cache"] == "hit"
    assert "Oak Board" in _text(response)


def test_category_page_is_kept(oak_board, django_assert_max_num_queries):
    url = oak_board.category.get_absolute_url()
    _visit(url)
    with django_assert_max_num_queries(0):
        response = _visit(url)

    assert response["X-Page-Cache"] == "hit"
    assert "Oak Board" in _text(response)


def test_htmx_results_fragment_is_kept_apart_from_the_page(oak_board):
    _visit("/products/?q=oak")
    _visit("/products/?q=oak", **HTMX_RESULTS)
    fragment = _visit("/products/?q=oak", **HTMX_RESULTS)
    page = _visit("/products/?q=oak")

    assert fragment["X-Page-Cache"] == page["X-Page-Cache"] == "hit"
    assert "<html" not in _text(fragment)
    assert 'id="product-results"' in _text(fragment)
    assert fragment["HX-Push-Url"] == "/products/?q=oak"
    assert "<html" in _text(page)


def test_vendor_price_change_shows_on_the_very_next_page(
    oak_board, django_capture_on_commit_callbacks
):
    _visit("/products/")
    _visit(oak_board.get_absolute_url())

    with django_capture_on_commit_callbacks(execute=True):
        _change_price(oak_board, Decimal("19.00"))

    listing = _visit("/products/")
    page = _visit(oak_board.get_absolute_url())
    assert "€19.00" in _text(listing)
    assert "€24.50" not in _text(listing)
    assert '<p class="price">€19.00</p>' in _text(page)


def test_sold_out_shows_out_of_stock_at_once(oak_board, django_capture_on_commit_callbacks):
    _visit("/products/")
    _visit(oak_board.get_absolute_url())

    with django_capture_on_commit_callbacks(execute=True):
        stock_services.set_stock(
            product_id=oak_board.pk, vendor=oak_board.vendor, new_stock=0, acting_user=None
        )

    assert "Out of stock" in _text(_visit("/products/"))
    assert "Out of stock" in _text(_visit(oak_board.get_absolute_url()))


def test_a_sale_that_leaves_plenty_refreshes_the_product_page_only(
    oak_board, django_capture_on_commit_callbacks
):
    _visit("/products/")
    _visit(oak_board.get_absolute_url())

    with django_capture_on_commit_callbacks(execute=True):
        _damage(oak_board, 3)

    page = _visit(oak_board.get_absolute_url())
    listing = _visit("/products/")
    assert page["X-Page-Cache"] == "miss"
    assert 'max="17"' in _text(page)
    # The cards say "In stock" either way: the listing stays cached.
    assert listing["X-Page-Cache"] == "hit"


def test_low_stock_count_on_cards_follows_every_sale(oak_board, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        stock_services.set_stock(
            product_id=oak_board.pk, vendor=oak_board.vendor, new_stock=4, acting_user=None
        )
    assert "Only 4 left" in _text(_visit("/products/"))

    with django_capture_on_commit_callbacks(execute=True):
        _damage(oak_board, 1)

    assert "Only 3 left" in _text(_visit("/products/"))


def test_suspended_vendor_disappears_at_once(oak_board, staff, django_capture_on_commit_callbacks):
    _visit("/products/")
    _visit(oak_board.get_absolute_url())

    with django_capture_on_commit_callbacks(execute=True):
        onboarding_services.suspend_vendor(
            vendor=oak_board.vendor, acting_user=staff, note="Unpaid fees."
        )

    assert "Oak Board" not in _text(_visit("/products/"))
    assert _visit(oak_board.get_absolute_url()).status_code == 404


def test_signed_in_shopper_gets_their_own_header_around_the_shared_page(oak_board, shopper):
    _visit("/products/")
    _visit("/products/")
    factories.CartItemFactory(cart__user=shopper, product=oak_board, quantity=2)
    client = Client()
    client.force_login(shopper)

    response = client.get("/products/")

    # Not the anonymous visitors' page: the shared part of signed-in pages is kept apart
    # (tests/integration/test_page_cache_signed_in.py).
    assert response["X-Page-Cache"] == "miss"
    assert "no-store" in response["Cache-Control"]
    assert "ETag" not in response
    assert 'aria-label="2 items in cart"' in _text(response)
    assert "Log out" in _text(response)


def test_visitor_with_a_cart_sees_their_own_count(oak_board):
    _visit("/products/")
    client = Client()
    client.post(reverse("shop:cart_add"), {"product_id": oak_board.pk, "quantity": 1})

    mine = client.get("/products/")
    someone_elses = _visit("/products/")

    assert "no-store" in mine["Cache-Control"]
    assert 'aria-label="1 item in cart"' in _text(mine)
    assert someone_elses["X-Page-Cache"] == "hit"
    assert 'aria-label="0 items in cart"' in _text(someone_elses)


def test_cached_page_carries_the_nonce_of_its_own_csp_header(oak_board):
    first = _visit(oak_board.get_absolute_url())
    second = _visit(oak_board.get_absolute_url())

    assert second["X-Page-Cache"] == "hit"
    nonces = set(NONCE.findall(_text(second)))
    assert len(nonces) == 1
    nonce = nonces.pop()
    assert f"'nonce-{nonce}'" in second["Content-Security-Policy"]
    assert nonce not in _text(first)
    assert "page-cache:" not in _text(second)


def test_add_to_cart_from_a_cached_page_passes_the_csrf_check(oak_board):
    _visit(oak_board.get_absolute_url())
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(oak_board.get_absolute_url())
    assert page["X-Page-Cache"] == "hit"
    token = CSRF_INPUT.search(_text(page)).group(1)
    header_token = re.search(r'"X-CSRFToken": "([^"]+)"', _text(page)).group(1)

    added = browser.post(
        reverse("shop:cart_add"),
        {"product_id": oak_board.pk, "quantity": 1, "csrfmiddlewaretoken": token},
    )
    by_htmx = browser.post(
        reverse("shop:cart_add"),
        {"product_id": oak_board.pk, "quantity": 1},
        HTTP_X_CSRFTOKEN=header_token,
        HTTP_HX_REQUEST="true",
    )

    assert added.status_code == 302
    assert by_htmx.status_code == 200
    assert 'aria-label="2 items in cart"' in _text(browser.get(reverse("shop:cart")))


def test_repeat_visit_with_its_etag_gets_304_without_a_body(oak_board):
    browser = Client()
    first = browser.get("/products/")
    etag = first["ETag"]
    assert first["Cache-Control"] == "private, no-cache"

    again = browser.get("/products/", HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert "Content-Security-Policy" not in again


def test_etag_changes_when_the_page_does(oak_board, django_capture_on_commit_callbacks):
    browser = Client()
    etag = browser.get("/products/")["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        _change_price(oak_board, Decimal("30.00"))

    response = browser.get("/products/", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert response["ETag"] != etag
    assert "€30.00" in _text(response)


def test_etag_of_another_browser_is_not_honoured(oak_board):
    etag = Client().get("/products/")["ETag"]

    response = Client().get("/products/", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200


def test_category_renamed_in_the_admin_shows_at_once(
    oak_board, staff, client, django_capture_on_commit_callbacks
):
    category = oak_board.category
    _visit("/products/")
    sign_in_with_second_factor(client, staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/shop/category/{category.pk}/change/",
            {"name": "Woodwork", "slug": category.slug, "description": ""},
        )

    assert response.status_code == 302
    assert ">Woodwork</a>" in _text(_visit("/products/"))


def test_bump_page_cache_command_dates_pages_after_a_change_around_the_services(oak_board):
    _visit("/products/")
    Product.objects.filter(pk=oak_board.pk).update(price=Decimal("11.00"))
    assert "€24.50" in _text(_visit("/products/"))  # nothing told the cache

    output = io.StringIO()
    call_command("bump_page_cache", stdout=output)

    assert "€11.00" in _text(_visit("/products/"))
    assert "out of date" in output.getvalue()


def test_pages_are_rendered_when_the_cache_is_down(oak_board, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "project.redis_cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }

    response = _visit("/products/")

    assert response.status_code == 200
    assert "Oak Board" in _text(response)
    assert response["X-Page-Cache"] == "miss"


@pytest.mark.parametrize(
    ("redis_url", "seconds"), [("redis://127.0.0.1:6379/5", "600"), (None, "0")]
)
def test_page_cache_is_on_with_redis_and_off_in_the_embedded_shape(redis_url, seconds):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "REDIS_SENTINELS", "PAGE_CACHE_SECONDS")
    }
    if redis_url:
        environment["REDIS_URL"] = redis_url
    environment["DJANGO_SETTINGS_MODULE"] = "project.settings"

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.PAGE_CACHE_SECONDS)",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == seconds
