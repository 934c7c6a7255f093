"""`{% for card in products|product_cards %}`, `{% for link in categories|category_links %}`:
a product grid's cards and a category list's links (shop.selectors.cards)."""

from collections.abc import Iterable

from django import template

from shop.models import Category, Product
from shop.selectors import cards
from shop.selectors.cards import CategoryLink, ProductCard

register = template.Library()


@register.filter
def product_cards(products: Iterable[Product]) -> list[ProductCard]:
    return cards.product_cards(products)


@register.filter
def category_links(categories: Iterable[Category]) -> list[CategoryLink]:
    return cards.category_links(categories)
