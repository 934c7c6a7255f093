"""Only active products of approved vendors are visible, everywhere a shopper looks."""

import pytest
from django.urls import reverse

from shop.models import VendorStatus
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    kitchen = factories.CategoryFactory(name="Kitchen", slug="kitchen")
    approved = factories.VendorFactory(name="Good Shop", status=VendorStatus.APPROVED)
    suspended = factories.VendorFactory(name="Gone Shop", status=VendorStatus.SUSPENDED)
    pending = factories.VendorFactory(name="New Shop", status=VendorStatus.PENDING)
    return {
        "visible": factories.ProductFactory(
            name="Visible Teapot", slug="visible-teapot", vendor=approved, category=kitchen
        ),
        "inactive": factories.ProductFactory(
            name="Inactive Teapot",
            slug="inactive-teapot",
            vendor=approved,
            category=kitchen,
            is_active=False,
        ),
        "suspended": factories.ProductFactory(
            name="Suspended Teapot", slug="suspended-teapot", vendor=suspended, category=kitchen
        ),
        "pending": factories.ProductFactory(
            name="Pending Teapot", slug="pending-teapot", vendor=pending, category=kitchen
        ),
    }


@pytest.mark.parametrize(
    "url",
    [
        reverse("shop:home"),
        reverse("shop:product_list"),
        reverse("shop:product_list") + "?q=teapot",
        reverse("shop:category", kwargs={"slug": "kitchen"}),
    ],
)
def test_lists_show_only_active_products_of_approved_vendors(client, catalogue, url):
    response = client.get(url)

    assert response.status_code == 200
    content = response.content.decode()
    assert "Visible Teapot" in content
    assert "Inactive Teapot" not in content
    assert "Suspended Teapot" not in content
    assert "Pending Teapot" not in content


def test_listing_counts_only_visible_products(client, catalogue):
    response = client.get(reverse("shop:product_list"))

    assert "<strong>1</strong> product<" in response.content.decode()


def test_vendor_filter_lists_only_approved_vendors(client, catalogue):
    content = client.get(reverse("shop:product_list")).content.decode()

    assert "Good Shop" in content
    assert "Gone Shop" not in content
    assert "New Shop" not in content


@pytest.mark.parametrize("key", ["inactive", "suspended", "pending"])
def test_product_page_of_a_hidden_product_is_not_found(client, catalogue, key):
    response = client.get(catalogue[key].get_absolute_url())

    assert response.status_code == 404


def test_product_page_of_a_visible_product_is_shown(client, catalogue):
    response = client.get(catalogue["visible"].get_absolute_url())

    assert response.status_code == 200
    assert "Visible Teapot" in response.content.decode()


def test_unknown_category_is_not_found(client, catalogue):
    response = client.get(reverse("shop:category", kwargs={"slug": "no-such-thing"}))

    assert response.status_code == 404


def test_unknown_product_is_not_found(client, catalogue):
    response = client.get(reverse("shop:product", kwargs={"slug": "no-such-thing"}))

    assert response.status_code == 404
