import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from shop.models import Cart, CartItem, VendorStatus
from shop.selectors.cart import CartOwner
from shop.services import cart as cart_services
from tests import factories


@pytest.fixture
def cart(db):
    return factories.CartFactory()


def guest(cart: Cart) -> CartOwner:
    return CartOwner(guest_cart_id=cart.pk)


def test_add_to_cart_creates_then_sums_the_line(cart):
    product = factories.ProductFactory(stock=5, name="Teapot")
    other = factories.ProductFactory(stock=5)
    factories.CartItemFactory(cart=cart, product=other, quantity=4)

    first = cart_services.add_to_cart(owner=guest(cart), product_id=product.pk, quantity=2)
    again = cart_services.add_to_cart(owner=guest(cart), product_id=product.pk, quantity=3)

    assert first == cart_services.AddedToCart(product_name="Teapot", quantity=2, cart_count=6)
    assert again == cart_services.AddedToCart(product_name="Teapot", quantity=5, cart_count=9)
    assert CartItem.objects.get(cart=cart, product=product).quantity == 5


def test_add_to_cart_creates_a_users_cart_but_not_a_vanished_guest_cart(shopper, cart):
    product = factories.ProductFactory(stock=5)
    gone = guest(cart)
    cart.delete()

    added = cart_services.add_to_cart(
        owner=CartOwner(user_id=shopper.pk), product_id=product.pk, quantity=1
    )

    assert added.cart_count == 1
    assert CartItem.objects.get(cart__user=shopper).quantity == 1
    assert cart_services.add_to_cart(owner=gone, product_id=product.pk, quantity=1) is None
    assert list(Cart.objects.values_list("user", flat=True)) == [shopper.pk]


def test_adding_to_a_line_of_a_withdrawn_product_is_refused(cart):
    product = factories.ProductFactory(stock=5)
    factories.CartItemFactory(cart=cart, product=product, quantity=1)
    product.vendor.status = VendorStatus.SUSPENDED
    product.vendor.save()

    with pytest.raises(cart_services.ProductUnavailable, match="This product is not available."):
        cart_services.add_to_cart(owner=guest(cart), product_id=product.pk, quantity=1)

    assert CartItem.objects.get(cart=cart, product=product).quantity == 1


def _add_at_once(cart: Cart, product_id: int, quantities: list[int]) -> list[object]:
    """Each quantity added by its own thread, all of them waiting for the cart's lock, which
    this test holds until every thread has sent its add; what each add returned or raised."""
    outcomes: list[object] = [None] * len(quantities)
    sent = threading.Barrier(len(quantities) + 1)

    def add(index: int, quantity: int) -> None:
        try:
            sent.wait(10)
            outcomes[index] = cart_services.add_to_cart(
                owner=guest(cart), product_id=product_id, quantity=quantity
            )
        except cart_services.NotEnoughStock as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=pair) for pair in enumerate(quantities)]
    with transaction.atomic():
        Cart.objects.select_for_update().get(pk=cart.pk)
        for thread in threads:
            thread.start()
        sent.wait(10)
        _wait_for_lock_waiters(len(quantities))
    for thread in threads:
        thread.join(10)
    return outcomes


def _wait_for_lock_waiters(count: int) -> None:
    """Until `count` other sessions of this database wait for a lock (the cart's row)."""
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"{count} adds never waited for the cart's lock")


@pytest.mark.django_db(transaction=True)
def test_adds_at_once_to_one_line_lose_no_unit():
    cart = factories.CartFactory()
    product = factories.ProductFactory(stock=100)
    factories.CartItemFactory(cart=cart, product=product, quantity=1)

    first, second = _add_at_once(cart, product.pk, [2, 3])

    assert CartItem.objects.get(cart=cart).quantity == 6
    # One went first (1 + 2 or 1 + 3), the other saw it; each badge counts what it saw.
    assert sorted([first.quantity, second.quantity]) in ([3, 6], [4, 6])
    assert (first.cart_count, second.cart_count) == (first.quantity, second.quantity)


@pytest.mark.django_db(transaction=True)
def test_adds_at_once_never_exceed_the_stock():
    cart = factories.CartFactory()
    product = factories.ProductFactory(stock=5)
    factories.CartItemFactory(cart=cart, product=product, quantity=1)

    outcomes = _add_at_once(cart, product.pk, [3, 3])

    refused = [o for o in outcomes if isinstance(o, cart_services.NotEnoughStock)]
    assert len(refused) == 1
    assert refused[0].message == "Only 5 left in stock. You already have 4 in your cart."
    assert CartItem.objects.get(cart=cart).quantity == 4


def test_add_to_cart_rejects_more_than_stock_and_changes_nothing(cart):
    product = factories.ProductFactory(stock=3)
    factories.CartItemFactory(cart=cart, product=product, quantity=2)

    with pytest.raises(cart_services.NotEnoughStock) as excinfo:
        cart_services.add_to_cart(owner=guest(cart), product_id=product.pk, quantity=2)

    assert excinfo.value.message == "Only 3 left in stock. You already have 2 in your cart."
    assert CartItem.objects.get(cart=cart, product=product).quantity == 2


@pytest.mark.parametrize("quantity", [0, -1])
def test_add_to_cart_rejects_quantity_below_one(cart, quantity):
    product = factories.ProductFactory()

    with pytest.raises(cart_services.InvalidQuantity, match="Quantity must be at least 1."):
        cart_services.add_to_cart(owner=guest(cart), product_id=product.pk, quantity=quantity)

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
        cart_services.add_to_cart(owner=guest(cart), product_id=product.pk, quantity=1)

    assert not CartItem.objects.exists()


def test_add_to_cart_rejects_unknown_product(cart):
    with pytest.raises(cart_services.ProductUnavailable):
        cart_services.add_to_cart(owner=guest(cart), product_id=999_999, quantity=1)


def test_add_to_cart_rejects_out_of_stock_product(cart):
    product = factories.ProductFactory(stock=0, name="Teapot")

    with pytest.raises(cart_services.NotEnoughStock, match="Teapot is out of stock."):
        cart_services.add_to_cart(owner=guest(cart), product_id=product.pk, quantity=1)


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
