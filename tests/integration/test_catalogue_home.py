"""The home page: category chips, featured and new products."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from shop.models import Product
from tests import factories

pytestmark = pytest.mark.django_db


def _section(content: str, heading_id: str) -> str:
    start = content.index(f'id="{heading_id}"')
    end = content.find("</section>", start)
    return content[start:end]


def test_home_shows_categories_featured_and_new_products(client):
    kitchen = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    factories.CategoryFactory(name="Garden", slug="garden")
    for number, stock in enumerate([3, 40, 0, 12], start=1):
        product = factories.ProductFactory(name=f"Thing {number}", category=kitchen, stock=stock)
        Product.objects.filter(pk=product.pk).update(
            created_at=timezone.now() - timedelta(days=number)
        )

    response = client.get(reverse("shop:home"))

    content = response.content.decode()
    assert response.status_code == 200
    assert '<a href="/c/kitchen/">Kitchen</a>' in content
    assert '<a href="/c/garden/">Garden</a>' in content
    featured = _section(content, "featured-heading")
    new = _section(content, "new-heading")
    # Featured: in stock only, best stocked first. New: newest first, whatever the stock.
    assert featured.index("Thing 2") < featured.index("Thing 4") < featured.index("Thing 1")
    assert "Thing 3" not in featured
    assert new.index("Thing 1") < new.index("Thing 2") < new.index("Thing 3") < new.index("Thing 4")


def test_home_without_products_still_renders(client):
    response = client.get(reverse("shop:home"))

    assert response.status_code == 200
    assert "No products yet." in response.content.decode()
