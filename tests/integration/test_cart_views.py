from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from shop.models import Cart, CartItem
from shop.selectors import cart as cart_selectors
from tests import factories

HTMX = {"HX-Request": "true"}
CART_URL = reverse("shop:cart")
ADD_URL = reverse("shop:cart_add")


def update_url(product):
    return reverse("shop:cart_update", args=[product.pk])


def remove_url(product):
    return reverse("shop:cart_remove", args=[product.pk])


@pytest.fixture
def product(db):
    return factories.ProductFactory(name="Linen Apron", price=Decimal("24.50"), stock=3)


def guest_cart_items(client):
    cart_id = client.session.get(cart_selectors.SESSION_CART_KEY)
    return dict(CartItem.objects.filter(cart_id=cart_id).values_list("product_id", "quantity"))


def test_empty_cart_page_creates_no_cart(client, db):
    response = client.get(CART_URL)

    assert response.status_code == 200
    assert "Your cart is empty" in response.text
    assert reverse("shop:product_list") in response.text
    assert not Cart.objects.exists()


def test_guest_adds_to_cart_with_a_full_request(client, product):
    response = client.post(ADD_URL, {"product_id": product.pk, "quantity": 2}, follow=True)

    assert response.redirect_chain == [(CART_URL, 302)]
    assert "Added 2 × Linen Apron to your cart." in response.text
    assert f'id="cart-line-{product.pk}"' in response.text
    assert "€49.00" in response.text
    assert 'aria-label="2 items in cart"' in response.text
    assert guest_cart_items(client) == {product.pk: 2}


def test_full_request_redirects_to_a_safe_next_only(client, product):
    product_url = product.get_absolute_url()
    safe = client.post(ADD_URL, {"product_id": product.pk, "quantity": 1, "next": product_url})
    unsafe = client.post(
        ADD_URL, {"product_id": product.pk, "quantity": 1, "next": "https://evil.example/"}
    )

    assert safe.url == product_url
    assert unsafe.url == CART_URL


def test_htmx_add_returns_confirmation_and_oob_badge(client, product):
    response = client.post(ADD_URL, {"product_id": product.pk, "quantity": 2}, headers=HTMX)

    assert response.status_code == 200
    assert "<html" not in response.text
    assert "Added 2 × Linen Apron to your cart." in response.text
    assert f'href="{CART_URL}"' in response.text
    assert 'id="cart-badge"' in response.text
    assert 'hx-swap-oob="true"' in response.text
    assert 'aria-label="2 items in cart"' in response.text


def test_posted_price_is_ignored(client, product):
    client.post(ADD_URL, {"product_id": product.pk, "quantity": 1, "price": "0.01"})

    response = client.get(CART_URL)
    assert "€24.50" in response.text
    assert "€0.01" not in response.text
    product.refresh_from_db()
    assert product.price == Decimal("24.50")


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "Quantity must be at least 1."),
        ("-1", "Quantity must be at least 1."),
        ("99999999999999999999", "Quantity is too large."),
        ("abc", "Quantity must be a whole number."),
        ("", "Enter a quantity."),
        ("1.5", "Quantity must be a whole number."),
        ("4", "Only 3 left in stock."),
    ],
)
def test_add_rejects_bad_quantities_and_changes_nothing(client, product, quantity, message):
    htmx = client.post(ADD_URL, {"product_id": product.pk, "quantity": quantity}, headers=HTMX)
    full = client.post(ADD_URL, {"product_id": product.pk, "quantity": quantity}, follow=True)

    assert htmx.status_code == 200
    assert message in htmx.text
    assert "hx-swap-oob" not in htmx.text
    assert message in full.text
    assert not Cart.objects.exists()
    assert not CartItem.objects.exists()


@pytest.mark.parametrize("kind", ["unknown", "inactive", "unapproved_vendor", "garbage"])
def test_add_rejects_unavailable_products(client, db, kind):
    product_id = {
        "unknown": "999999",
        "inactive": lambda: factories.ProductFactory(is_active=False).pk,
        "unapproved_vendor": lambda: factories.ProductFactory(vendor__status="pending").pk,
        "garbage": "1 OR 1=1",
    }[kind]
    product_id = product_id() if callable(product_id) else product_id

    response = client.post(ADD_URL, {"product_id": product_id, "quantity": 1}, headers=HTMX)

    assert "This product is not available." in response.text
    assert not Cart.objects.exists()


def test_signed_in_user_adds_to_their_own_cart(client, shopper, product):
    client.force_login(shopper)

    client.post(ADD_URL, {"product_id": product.pk, "quantity": 1})

    assert CartItem.objects.get(cart__user=shopper).quantity == 1


def test_guest_cart_merges_into_user_cart_on_login(client, shopper, product):
    factories.CartItemFactory(cart__user=shopper, product=product, quantity=2)
    client.post(ADD_URL, {"product_id": product.pk, "quantity": 2})
    guest_id = client.session[cart_selectors.SESSION_CART_KEY]

    client.post(reverse("accounts:login"), {"email": shopper.email, "password": factories.PASSWORD})

    assert CartItem.objects.get(cart__user=shopper).quantity == 3  # 2 + 2 capped at stock 3
    assert not Cart.objects.filter(pk=guest_id).exists()
    assert 'aria-label="3 items in cart"' in client.get(CART_URL).text


def test_htmx_update_swaps_line_totals_and_badge_together(client, product):
    client.post(ADD_URL, {"product_id": product.pk, "quantity": 1})

    response = client.post(update_url(product), {"quantity": 3}, headers=HTMX)

    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'id="cart-items"' in response.text
    assert f'id="cart-line-{product.pk}"' in response.text
    assert 'value="3"' in response.text
    assert response.text.count("€73.50") == 2  # line total and cart total
    assert 'id="cart-summary"' in response.text
    assert 'id="cart-badge"' in response.text
    assert response.text.count('hx-swap-oob="true"') == 2
    assert 'aria-label="3 items in cart"' in response.text
    assert guest_cart_items(client) == {product.pk: 3}


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "Quantity must be at least 1."),
        ("-5", "Quantity must be at least 1."),
        ("4", "Only 3 left in stock."),
        ("lots", "Quantity must be a whole number."),
        ("10000000", "Quantity is too large."),
    ],
)
def test_update_rejects_bad_quantities_and_changes_nothing(client, product, quantity, message):
    client.post(ADD_URL, {"product_id": product.pk, "quantity": 2})

    htmx = client.post(update_url(product), {"quantity": quantity}, headers=HTMX)
    full = client.post(update_url(product), {"quantity": quantity}, follow=True)

    assert htmx.status_code == 200
    assert message in htmx.text
    assert 'value="2"' in htmx.text
    assert message in full.text
    assert guest_cart_items(client) == {product.pk: 2}


def test_update_a_product_not_in_the_cart(client, product):
    response = client.post(update_url(product), {"quantity": 1}, follow=True)

    assert "This product is not in your cart." in response.text
    assert not Cart.objects.exists()


def test_htmx_remove_shows_empty_state_and_zero_badge(client, product):
    client.post(ADD_URL, {"product_id": product.pk, "quantity": 2})

    response = client.post(remove_url(product), headers=HTMX)

    assert "Your cart is empty" in response.text
    assert 'aria-label="0 items in cart"' in response.text
    assert guest_cart_items(client) == {}


def test_full_remove_redirects_with_message(client, product):
    client.post(ADD_URL, {"product_id": product.pk, "quantity": 2})

    response = client.post(remove_url(product), follow=True)

    assert "Linen Apron was removed from your cart." in response.text
    assert "Your cart is empty" in response.text


def test_another_visitor_cannot_touch_my_cart(client, product):
    client.post(ADD_URL, {"product_id": product.pk, "quantity": 2})
    intruder = Client()

    intruder.post(update_url(product), {"quantity": 1})
    intruder.post(remove_url(product))

    assert guest_cart_items(client) == {product.pk: 2}


def test_writes_are_post_only(client, product):
    assert client.get(ADD_URL).status_code == 405
    assert client.get(update_url(product)).status_code == 405
    assert client.get(remove_url(product)).status_code == 405


def test_csrf_is_enforced_on_cart_add(product):
    client = Client(enforce_csrf_checks=True)

    response = client.post(ADD_URL, {"product_id": product.pk, "quantity": 1})

    assert response.status_code == 403
    assert not CartItem.objects.exists()


def test_cart_page_flags_lines_that_became_unavailable(client, product):
    client.post(ADD_URL, {"product_id": product.pk, "quantity": 3})
    product.stock = 1
    product.save()

    response = client.get(CART_URL)

    assert "Only 1 left in stock." in response.text
    assert reverse("shop:checkout") not in response.text


def test_badge_count_is_free_for_anonymous_visitors_without_a_cart(rf, db):
    request = rf.get("/")
    request.session = {}
    request.user = type("Anon", (), {"is_authenticated": False})()

    with CaptureQueriesContext(connection) as queries:
        assert cart_selectors.count_cart_items(request=request) == 0
    assert len(queries) == 0


def test_badge_count_costs_one_query(rf, shopper):
    cart = factories.CartFactory(user=shopper)
    factories.CartItemFactory(cart=cart, quantity=2)
    factories.CartItemFactory(cart=cart, quantity=3)
    request = rf.get("/")
    request.session = {}
    request.user = shopper

    with CaptureQueriesContext(connection) as queries:
        assert cart_selectors.count_cart_items(request=request) == 5
        assert cart_selectors.count_cart_items(request=request) == 5
    assert len(queries) == 1


def _fill_cart(user, count):
    cart = factories.CartFactory(user=user)
    vendors = [factories.VendorFactory() for _ in range(3)]
    category = factories.CategoryFactory()
    for index in range(count):
        factories.CartItemFactory(
            cart=cart, product__vendor=vendors[index % 3], product__category=category
        )


@pytest.mark.parametrize("size", [10, 500])
def test_cart_page_query_budget_does_not_grow(client, shopper, size, django_assert_max_num_queries):
    _fill_cart(shopper, size)
    client.force_login(shopper)

    with django_assert_max_num_queries(5) as queries:
        response = client.get(CART_URL)

    assert response.status_code == 200
    assert response.text.count('class="cart-line') == size
    print(f"cart page with {size} lines: {len(queries)} queries")
