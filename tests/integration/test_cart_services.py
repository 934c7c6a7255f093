from decimal import Decimal

import pytest

from shop.models import Cart, CartItem, VendorStatus
from shop.services import cart as cart_services
from tests import factories


@pytest.fixture
def cart(db):
    return factories.CartFactory()


def test_add_to_cart_creates_then_sums_the_line(cart):
    product = factories.ProductFactory(stock=5)

    cart_services.add_to_cart(cart=cart, product_id=product.pk, quantity=2)
    item = cart_services.add_to_cart(cart=cart, product_id=product.pk, quantity=3)

    assert item.quantity == 5
    assert CartItem.objects.get(cart=cart, product=product).quantity == 5


def test_add_to_cart_rejects_more_than_stock_and_changes_nothing(cart):
    product = factories.ProductFactory(stock=3)
    factories.CartItemFactory(cart=cart, product=product, quantity=2)

    with pytest.raises(cart_services.NotEnoughStock) as excinfo:
        cart_services.add_to_cart(cart=cart, product_id=product.pk, quantity=2)

    assert excinfo.value.message == "Only 3 left in stock. You already have 2 in your cart."
    assert CartItem.objects.get(cart=cart, product=product).quantity == 2


@pytest.mark.parametrize("quantity", [0, -1])
def test_add_to_cart_rejects_quantity_below_one(cart, quantity):
    product = factories.ProductFactory()

    with pytest.raises(cart_services.InvalidQuantity, match="Quantity must be at least 1."):
        cart_services.add_to_cart(cart=cart, product_id=product.pk, quantity=quantity)

    assert not CartItem.objects.exists()


@pytest.mark.parametrize(
    "product_kwargs",
    [
        {"is_active": False},
        {"vendor__status": VendorStatus.PENDING},
        {"vendor__status": "suspended"},
    ],
)
def test_add_to_cart_rejects_invisible_products(cart, product_kwargs):
    product = factories.ProductFactory(**product_kwargs)

    with pytest.raises(cart_services.ProductUnavailable, match="This product is not available."):
        cart_services.add_to_cart(cart=cart, product_id=product.pk, quantity=1)

    assert not CartItem.objects.exists()


def test_add_to_cart_rejects_unknown_product(cart):
    with pytest.raises(cart_services.ProductUnavailable):
        cart_services.add_to_cart(cart=cart, product_id=999_999, quantity=1)


def test_add_to_cart_rejects_out_of_stock_product(cart):
    product = factories.ProductFactory(stock=0, name="Teapot")

    with pytest.raises(cart_services.NotEnoughStock, match="Teapot is out of stock."):
        cart_services.add_to_cart(cart=cart, product_id=product.pk, quantity=1)


def test_set_quantity_within_stock(cart):
    item = factories.CartItemFactory(cart=cart, product__stock=4, quantity=1)

    cart_services.set_quantity(cart=cart, product_id=item.product_id, quantity=4)

    item.refresh_from_db()
    assert item.quantity == 4


@pytest.mark.parametrize(
    ("quantity", "error"),
    [(0, cart_services.InvalidQuantity), (5, cart_services.NotEnoughStock)],
)
def test_set_quantity_rejects_out_of_range_and_changes_nothing(cart, quantity, error):
    item = factories.CartItemFactory(cart=cart, product__stock=4, quantity=2)

    with pytest.raises(error):
        cart_services.set_quantity(cart=cart, product_id=item.product_id, quantity=quantity)

    item.refresh_from_db()
    assert item.quantity == 2


def test_set_quantity_of_a_product_not_in_the_cart(cart):
    product = factories.ProductFactory()

    with pytest.raises(cart_services.ItemNotInCart):
        cart_services.set_quantity(cart=cart, product_id=product.pk, quantity=1)
    assert not CartItem.objects.exists()


def test_remove_item(cart):
    item = factories.CartItemFactory(cart=cart)

    removed = cart_services.remove_item(cart=cart, product_id=item.product_id)

    assert removed.product == item.product
    assert not CartItem.objects.exists()
    assert cart_services.remove_item(cart=cart, product_id=item.product_id) is None


def test_merge_guest_cart_sums_quantities_capped_at_stock_and_deletes_guest_cart(shopper):
    user_cart = factories.CartFactory(user=shopper)
    guest = factories.CartFactory()
    shared = factories.ProductFactory(stock=4)
    only_guest = factories.ProductFactory(stock=10)
    gone = factories.ProductFactory(stock=10)
    factories.CartItemFactory(cart=user_cart, product=shared, quantity=2)
    factories.CartItemFactory(cart=guest, product=shared, quantity=3)
    factories.CartItemFactory(cart=guest, product=only_guest, quantity=2)
    factories.CartItemFactory(cart=guest, product=gone, quantity=1)
    gone.is_active = False
    gone.save()

    cart_services.merge_guest_cart(guest_cart_id=guest.pk, user=shopper)

    quantities = dict(CartItem.objects.filter(cart=user_cart).values_list("product", "quantity"))
    assert quantities == {shared.pk: 4, only_guest.pk: 2}
    assert not Cart.objects.filter(pk=guest.pk).exists()


def test_merge_guest_cart_creates_the_user_cart(shopper):
    guest = factories.CartFactory()
    product = factories.ProductFactory(price=Decimal("5.00"))
    factories.CartItemFactory(cart=guest, product=product, quantity=2)

    cart_services.merge_guest_cart(guest_cart_id=guest.pk, user=shopper)

    assert CartItem.objects.get(cart__user=shopper).quantity == 2


def test_merge_guest_cart_ignores_missing_or_owned_carts(shopper):
    other = factories.CartFactory(user=factories.UserFactory())
    factories.CartItemFactory(cart=other)

    cart_services.merge_guest_cart(guest_cart_id=None, user=shopper)
    cart_services.merge_guest_cart(guest_cart_id=999_999, user=shopper)
    cart_services.merge_guest_cart(guest_cart_id=other.pk, user=shopper)

    assert not Cart.objects.filter(user=shopper).exists()
    assert CartItem.objects.filter(cart=other).count() == 1
