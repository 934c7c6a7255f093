"""Every shop page has a meta description: the product's own words on its page, a
description of the listing on listing pages, the shop's default elsewhere."""

import re
from html import unescape

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


def _description(response) -> str:
    assert response.status_code == 200
    found = re.findall(r'<meta name="description" content="([^"]*)">', response.content.decode())
    assert len(found) == 1
    return unescape(found[0])


def test_the_product_page_describes_the_product_in_at_most_160_characters(client):
    product = factories.ProductFactory(
        name="Oak Board", description="Cut from one piece of oak, oiled by hand. " * 10
    )

    description = _description(client.get(product.get_absolute_url()))

    assert description.startswith("Cut from one piece of oak, oiled by hand.")
    assert len(description) == 160
    assert description.endswith("…")


def test_a_product_without_a_description_names_itself_and_its_shop(client):
    product = factories.ProductFactory(
        name="Oak Board", description="", vendor__name="Fjord & Field"
    )

    description = _description(client.get(product.get_absolute_url()))

    assert description == "Oak Board from Fjord & Field, an independent shop on Bazaar."


def test_a_category_page_uses_the_categorys_description_or_describes_the_listing(client):
    described = factories.CategoryFactory(
        name="Kitchen", slug="kitchen", description="Boards, bowls and knives."
    )
    plain = factories.CategoryFactory(name="Garden", slug="garden")
    factories.ProductFactory.create_batch(2, category=plain)

    assert _description(client.get(described.get_absolute_url())) == "Boards, bowls and knives."
    assert _description(client.get(plain.get_absolute_url())) == (
        "Garden from independent shops on Bazaar: 2 products in one basket, one checkout."
    )


def test_the_listing_and_a_search_describe_what_they_list(client):
    factories.ProductFactory(name="Oak Board")
    factories.ProductFactory(name="Clay Mug")

    assert _description(client.get("/products/")).startswith(
        "All products from Bazaar’s independent shops: 2 products"
    )
    assert _description(client.get("/products/?q=mug")) == (
        "1 product matching “mug” from independent shops on Bazaar."
    )


def test_other_pages_carry_the_shops_default_description(client):
    home = _description(client.get("/"))
    cart = _description(client.get("/cart/"))

    assert home.startswith("Bazaar: things made and chosen with care by independent shops.")
    assert cart.startswith("Bazaar is a marketplace of independent shops")
