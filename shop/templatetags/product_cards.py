"""`{% for card in products|product_cards %}`: the product grid's cards (shop.selectors.cards)."""

from collections.abc import Iterable

from django import template

from shop.models import Product
from shop.selectors import cards
from shop.selectors.cards import ProductCard

register = template.Library()


@register.filter
def product_cards(products: Iterable[Product]) -> list[ProductCard]:
    return cards.product_cards(products)
