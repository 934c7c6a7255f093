import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from project.events.models import OutboxEvent
from shop.models import (
    CartItem,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    StockAdjustment,
    StockReason,
    VendorStatus,
)
from shop.services import checkout as checkout_services
from tests import factories


@pytest.fixture
def address(shopper):
    return factories.AddressFactory(
        user=shopper, full_name="Sam Shopper", line1="5 Elm Road", city="Lyon", country="FR"
    )


@pytest.fixture
def cart(shopper):
    return factories.CartFactory(user=shopper)


def test_place_order_decrements_stock_snapshots_lines_and_empties_cart(shopper, cart, address):
    mug = factories.ProductFactory(name="Mug", price=Decimal("12.50"), stock=5)
    tea = factories.ProductFactory(name="Tea", price=Decimal("4.99"), stock=2)
    factories.CartItemFactory(cart=cart, product=mug, quantity=2)
    factories.CartItemFactory(cart=cart, product=tea, quantity=2)

    order = checkout_services.place_order(customer=shopper, cart=cart, address=address)

    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.total == Decimal("34.98")
    assert order.customer == shopper
    assert (order.ship_name, order.ship_line1, order.ship_city, order.ship_country) == (
        "Sam Shopper",
        "5 Elm Road",
        "Lyon",
        "FR",
    )
    lines = {line.product_name: line for line in order.lines.all()}
    assert lines["Mug"].unit_price == Decimal("12.50")
    assert lines["Mug"].line_total == Decimal("25.00")
    assert lines["Tea"].quantity == 2
    assert Product.objects.get(pk=mug.pk).stock == 3
    assert Product.objects.get(pk=tea.pk).stock == 0
    assert not CartItem.objects.filter(cart=cart).exists()


def test_prices_and_names_are_snapshots(shopper, cart, address):
    product = factories.ProductFactory(name="Lamp", price=Decimal("40.00"))
    factories.CartItemFactory(cart=cart, product=product, quantity=1)
    order = checkout_services.place_order(customer=shopper, cart=cart, address=address)

    product.price = Decimal("99.00")
    product.name = "Deluxe Lamp"
    product.save()

    line = order.lines.get()
    assert (line.product_name, line.unit_price) == ("Lamp", Decimal("40.00"))
    assert Order.objects.get(pk=order.pk).total == Decimal("40.00")


def test_an_order_spans_vendors_and_records_each_lines_vendor(shopper, cart, address):
    first, second = factories.VendorFactory(), factories.VendorFactory()
    factories.CartItemFactory(cart=cart, product__vendor=first, product__name="A")
    factories.CartItemFactory(cart=cart, product__vendor=second, product__name="B")

    order = checkout_services.place_order(customer=shopper, cart=cart, address=address)

    assert dict(order.lines.values_list("product_name", "vendor")) == {
        "A": first.pk,
        "B": second.pk,
    }


def test_not_enough_stock_changes_nothing(shopper, cart, address):
    plenty = factories.ProductFactory(stock=10)
    scarce = factories.ProductFactory(name="Rare Print", stock=1)
    factories.CartItemFactory(cart=cart, product=plenty, quantity=2)
    factories.CartItemFactory(cart=cart, product=scarce, quantity=2)

    with pytest.raises(checkout_services.NotEnoughStock) as excinfo:
        checkout_services.place_order(customer=shopper, cart=cart, address=address)

    assert excinfo.value.message == "Not enough stock for Rare Print: only 1 left."
    assert not Order.objects.exists()
    assert Product.objects.get(pk=plenty.pk).stock == 10
    assert Product.objects.get(pk=scarce.pk).stock == 1
    assert CartItem.objects.filter(cart=cart).count() == 2


@pytest.mark.parametrize(
    "change", [{"is_active": False}, {"vendor_status": VendorStatus.SUSPENDED}]
)
def test_unavailable_product_changes_nothing(shopper, cart, address, change):
    product = factories.ProductFactory(name="Old Stock", stock=5)
    factories.CartItemFactory(cart=cart, product=product, quantity=1)
    if "is_active" in change:
        Product.objects.filter(pk=product.pk).update(is_active=False)
    else:
        type(product.vendor).objects.filter(pk=product.vendor_id).update(status="suspended")

    with pytest.raises(checkout_services.ProductUnavailable, match="Old Stock is no longer"):
        checkout_services.place_order(customer=shopper, cart=cart, address=address)

    assert not Order.objects.exists()
    assert Product.objects.get(pk=product.pk).stock == 5
    assert CartItem.objects.filter(cart=cart).count() == 1


def test_empty_cart_cannot_be_ordered(shopper, cart, address):
    with pytest.raises(checkout_services.EmptyCart):
        checkout_services.place_order(customer=shopper, cart=cart, address=address)
    assert not Order.objects.exists()


def checkout_all_at_once(buyers: list) -> tuple[list, list, list]:
    """Each (user, cart, address) places its order in its own thread (its own connection), all
    released at the same moment: (orders, messages of NotEnoughStock, any other exception)."""
    barrier = threading.Barrier(len(buyers))
    orders, refusals, unexpected = [], [], []

    def buy(user, cart, address):
        try:
            barrier.wait(timeout=10)
            orders.append(checkout_services.place_order(customer=user, cart=cart, address=address))
        except checkout_services.NotEnoughStock as exc:
            refusals.append(exc.message)
        except Exception as exc:  # noqa: BLE001 - a deadlock, say: surfaced by the caller
            unexpected.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=buyer) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return orders, refusals, unexpected


def buyer_of(*products) -> tuple:
    """A new user with one of each product in the cart, in the order given, and an address."""
    user = factories.UserFactory()
    cart = factories.CartFactory(user=user)
    for product in products:
        factories.CartItemFactory(cart=cart, product=product, quantity=1)
    return user, cart, factories.AddressFactory(user=user)


@pytest.mark.django_db(transaction=True)
def test_concurrent_buyers_never_oversell_the_last_units():
    product = factories.ProductFactory(name="Last Edition", stock=3)

    orders, refusals, unexpected = checkout_all_at_once([buyer_of(product) for _ in range(8)])

    assert unexpected == []
    assert len(orders) == 3
    assert Order.objects.count() == 3
    assert Product.objects.get(pk=product.pk).stock == 0
    assert refusals == ["Sorry, Last Edition has sold out."] * 5
    # A checkout refused under the lock leaves nothing of what it wrote before it.
    assert OrderLine.objects.count() == 3
    assert StockAdjustment.objects.filter(reason=StockReason.SALE).count() == 3
    assert OutboxEvent.objects.filter(event_type="OrderPlaced").count() == 3
    assert CartItem.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_carts_holding_the_same_products_in_any_order_never_deadlock():
    """Each checkout locks its product rows in id order, whatever order the cart lists them."""
    first, second = (factories.ProductFactory(stock=100) for _ in range(2))
    buyers = [buyer_of(first, second) if n % 2 else buyer_of(second, first) for n in range(8)]

    orders, refusals, unexpected = checkout_all_at_once(buyers)

    assert (unexpected, refusals) == ([], [])
    assert len(orders) == Order.objects.count() == 8
    assert sorted(Product.objects.values_list("stock", flat=True)) == [92, 92]


def test_stock_adjustments_record_the_sale_and_the_stock_left(shopper, cart, address):
    mug = factories.ProductFactory(name="Mug", stock=5)
    factories.CartItemFactory(cart=cart, product=mug, quantity=2)

    order = checkout_services.place_order(customer=shopper, cart=cart, address=address)

    sale = StockAdjustment.objects.get(product=mug)
    assert (sale.change, sale.stock_after, sale.reason, sale.vendor_id) == (
        -2,
        3,
        StockReason.SALE,
        mug.vendor_id,
    )
    assert sale.note == f"Order {order.number}"


@pytest.mark.django_db(transaction=True)
def test_a_price_changed_while_the_order_waits_for_the_product_lock_is_refused():
    """The lines are priced before the product rows are locked; a vendor's repricing that
    commits while the checkout waits for the lock is caught under it, and nothing is kept."""
    product = factories.ProductFactory(name="Kettle", price=Decimal("30.00"), stock=5)
    user, cart, address = buyer_of(product)
    repriced, may_commit = threading.Event(), threading.Event()
    outcome: list = []

    def reprice():
        try:
            with transaction.atomic():
                Product.objects.select_for_update().filter(pk=product.pk).update(
                    price=Decimal("35.00")
                )
                repriced.set()
                may_commit.wait(timeout=20)
        finally:
            connection.close()

    def buy():
        try:
            checkout_services.place_order(
                customer=user, cart=cart, address=address, reviewed_total=Decimal("30.00")
            )
            outcome.append("placed")
        except checkout_services.PricesChanged as exc:
            outcome.append(exc.message)
        finally:
            connection.close()

    vendor = threading.Thread(target=reprice)
    vendor.start()
    assert repriced.wait(timeout=10)
    buyer = threading.Thread(target=buy)
    buyer.start()
    try:
        # Let the vendor commit only once the checkout waits for the product row's lock.
        for _ in range(200):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if cursor.fetchone()[0]:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the checkout never waited for the product's lock")
    finally:
        may_commit.set()
        vendor.join(timeout=20)
        buyer.join(timeout=20)

    assert outcome == [
        "Prices in your cart changed since you reviewed your order: the total is now €35.00. "
        "Nothing was ordered or charged; check your cart and order again."
    ]
    assert not Order.objects.exists()
    assert Product.objects.get(pk=product.pk).stock == 5
    assert CartItem.objects.filter(cart=cart).count() == 1
