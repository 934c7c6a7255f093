"""Product cards: what a card in a product grid shows, computed once per product in Python.

A card's template used to look up about twenty values through the product (its URL by
`reverse`, its picture, its price through the `money` filter, its stock state), each
lookup costing the template engine far more than the attribute itself. Here each card is
shaped once; the grid (templates/components/product_grid.html) only prints the fields.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.urls import reverse

from shop.models import Picture, Product
from shop.templatetags.money import money

_SLUG = "__slug__"


@dataclass(frozen=True, slots=True)
class ProductCard:
    url: str
    name: str
    initial: str
    vendor_name: str
    price: str
    picture: Picture | None
    stock: int
    in_stock: bool
    is_low_stock: bool


def product_cards(products: Iterable[Product]) -> list[ProductCard]:
    """Cards for product rows shaped by the catalogue selectors (vendor loaded)."""
    # One reverse for the whole grid: a product's URL differs from another's only by slug.
    before, _, after = reverse("shop:product", kwargs={"slug": _SLUG}).partition(_SLUG)
    return [
        ProductCard(
            url=f"{before}{product.slug}{after}",
            name=product.name,
            initial=product.name[:1].upper(),
            vendor_name=product.vendor.name,
            price=money(product.price),
            picture=product.card_picture,
            stock=product.stock,
            in_stock=product.in_stock,
            is_low_stock=product.is_low_stock,
        )
        for product in products
    ]
