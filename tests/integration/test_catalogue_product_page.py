"""The product page: vendor, price, stock state and the add-to-cart form."""

import re
from decimal import Decimal

import pytest

from tests import factories

pytestmark = pytest.mark.django_db

DISABLED_BUTTON = '<button type="submit" class="button" disabled>Add to cart</button>'
ENABLED_BUTTON = '<button type="submit" class="button">Add to cart</button>'


def _page(client, **fields) -> str:
    product = factories.ProductFactory(**fields)
    response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def test_shows_name_vendor_category_price_and_description(client):
    vendor = factories.VendorFactory(name="Fjord & Field", slug="fjord-field")
    category = factories.CategoryFactory(name="Kitchen", slug="kitchen")

    content = _page(
        client,
        name="Oak Board",
        vendor=vendor,
        category=category,
        price=Decimal("1234.5"),
        description="Cut from one piece of oak.",
    )

    assert "<h1>Oak Board</h1>" in content
    assert "Fjord &amp; Field" in content
    assert 'href="/products/?vendor=fjord-field"' in content
    assert '<a href="/c/kitchen/">Kitchen</a>' in content
    assert '<p class="price">€1,234.50</p>' in content
    assert "Cut from one piece of oak." in content


def test_plenty_of_stock_reads_in_stock_and_can_be_added(client):
    content = _page(client, stock=20)

    assert "In stock" in content
    assert "left" not in content
    assert ENABLED_BUTTON in content
    assert 'max="20"' in content


@pytest.mark.parametrize("stock", [1, 3, 5])
def test_low_stock_says_how_many_are_left(client, stock):
    content = _page(client, stock=stock)

    assert f"Only {stock} left" in content
    assert ENABLED_BUTTON in content


def test_six_in_stock_is_not_low_stock(client):
    content = _page(client, stock=6)

    assert "Only 6 left" not in content
    assert "In stock" in content


def test_out_of_stock_disables_the_add_button(client):
    content = _page(client, stock=0)

    assert "Out of stock" in content
    assert DISABLED_BUTTON in content
    assert ENABLED_BUTTON not in content


def test_add_to_cart_form_posts_to_the_cart_with_and_without_htmx(client):
    product = factories.ProductFactory(stock=4)

    content = client.get(product.get_absolute_url()).content.decode()

    form = re.search(r'<form class="add-to-cart"(.*?)</form>', content, re.S).group(0)
    assert 'method="post" action="/cart/add/"' in form
    assert 'hx-post="/cart/add/" hx-target="#add-to-cart-result" hx-swap="innerHTML"' in form
    assert 'name="csrfmiddlewaretoken"' in form
    assert f'<input type="hidden" name="product_id" value="{product.pk}">' in form
    assert '<label for="quantity">Quantity</label>' in form
    assert '<input id="quantity" type="number" name="quantity" min="1" max="4" value="1">' in form
    assert '<div id="add-to-cart-result" aria-live="polite"></div>' in content


def test_product_card_in_listing_shows_stock_state(client):
    factories.ProductFactory(name="Few", stock=3)
    factories.ProductFactory(name="None", stock=0)

    content = client.get("/products/").content.decode()

    assert '<p class="stock-state stock-low">Only 3 left</p>' in content
    assert '<p class="stock-state stock-out">Out of stock</p>' in content
