"""Stock: the adjust service (with its guards and its lock against checkout) and the stock page."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from shop.models import Order, Product, StockAdjustment, StockReason
from shop.services import checkout as checkout_services
from shop.services import stock as stock_services
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor


@pytest.fixture
def vendor(vendor_member):
    return vendor_member.vendor_memberships.get().vendor


@pytest.fixture
def product(vendor):
    return factories.ProductFactory(vendor=vendor, name="Teapot", stock=3)


@pytest.fixture
def member_client(client, vendor_member):
    sign_in_with_second_factor(client, vendor_member)
    return client


def _stock(product) -> int:
    return Product.objects.get(pk=product.pk).stock


# --- adjust_stock ---


def test_received_stock_is_added_and_recorded(product, vendor, vendor_member):
    adjustment = stock_services.adjust_stock(
        product_id=product.pk,
        vendor=vendor,
        change=12,
        reason=StockReason.RECEIVED,
        note=" Delivery 42 ",
        acting_user=vendor_member,
    )

    assert _stock(product) == 15
    assert (adjustment.change, adjustment.stock_after, adjustment.reason) == (12, 15, "received")
    assert adjustment.vendor_id == vendor.pk
    assert adjustment.note == "Delivery 42"
    assert adjustment.created_by == vendor_member


def test_damaged_stock_is_removed_down_to_zero(product, vendor, vendor_member):
    adjustment = stock_services.adjust_stock(
        product_id=product.pk,
        vendor=vendor,
        change=-3,
        reason=StockReason.DAMAGED,
        acting_user=vendor_member,
    )
    assert _stock(product) == 0
    assert adjustment.stock_after == 0


def test_stock_cannot_go_below_zero(product, vendor, vendor_member):
    with pytest.raises(
        stock_services.NegativeStock, match=r"^Stock cannot go below 0: only 3 in stock\.$"
    ):
        stock_services.adjust_stock(
            product_id=product.pk,
            vendor=vendor,
            change=-4,
            reason=StockReason.CORRECTION,
            acting_user=vendor_member,
        )
    assert _stock(product) == 3
    assert not StockAdjustment.objects.exists()


@pytest.mark.parametrize(
    ("change", "reason", "message"),
    [
        (0, StockReason.CORRECTION, "Enter a change other than 0."),
        (1, StockReason.SALE, "Choose why the stock changes"),
        (1, StockReason.RETURN, "Choose why the stock changes"),
        (1, "stolen", "Choose why the stock changes"),
        (-1, StockReason.RECEIVED, "Received stock is added"),
        (1, StockReason.DAMAGED, "Damaged stock is removed"),
    ],
)
def test_bad_adjustments_are_refused_and_change_nothing(
    product, vendor, vendor_member, change, reason, message
):
    with pytest.raises(stock_services.InvalidStockChange, match=message):
        stock_services.adjust_stock(
            product_id=product.pk,
            vendor=vendor,
            change=change,
            reason=reason,
            acting_user=vendor_member,
        )
    assert _stock(product) == 3
    assert not StockAdjustment.objects.exists()


def test_another_vendors_product_cannot_be_adjusted(vendor, vendor_member):
    foreign = factories.ProductFactory(stock=4)

    with pytest.raises(stock_services.ProductNotFound):
        stock_services.adjust_stock(
            product_id=foreign.pk,
            vendor=vendor,
            change=5,
            reason=StockReason.RECEIVED,
            acting_user=vendor_member,
        )
    assert _stock(foreign) == 4
    assert not StockAdjustment.objects.exists()


# --- set_stock ---


def test_set_stock_records_the_delta_as_a_correction(product, vendor, vendor_member):
    adjustment = stock_services.set_stock(
        product_id=product.pk, vendor=vendor, new_stock=10, acting_user=vendor_member
    )
    assert _stock(product) == 10
    assert (adjustment.change, adjustment.stock_after, adjustment.reason) == (7, 10, "correction")


def test_set_stock_to_the_same_value_records_nothing(product, vendor, vendor_member):
    assert (
        stock_services.set_stock(
            product_id=product.pk, vendor=vendor, new_stock=3, acting_user=vendor_member
        )
        is None
    )
    assert not StockAdjustment.objects.exists()


def test_set_stock_refuses_to_overwrite_a_stock_that_changed_meanwhile(
    product, vendor, vendor_member
):
    with pytest.raises(stock_services.StockChangedMeanwhile, match="changed to 3 meanwhile"):
        stock_services.set_stock(
            product_id=product.pk,
            vendor=vendor,
            new_stock=8,
            expected_stock=5,
            acting_user=vendor_member,
        )
    assert _stock(product) == 3
    assert not StockAdjustment.objects.exists()


def test_set_stock_refuses_negative_and_foreign_products(product, vendor, vendor_member):
    with pytest.raises(stock_services.NegativeStock):
        stock_services.set_stock(
            product_id=product.pk, vendor=vendor, new_stock=-1, acting_user=vendor_member
        )
    foreign = factories.ProductFactory(stock=4)
    with pytest.raises(stock_services.ProductNotFound):
        stock_services.set_stock(
            product_id=foreign.pk, vendor=vendor, new_stock=9, acting_user=vendor_member
        )
    assert (_stock(product), _stock(foreign)) == (3, 4)


# --- concurrency with checkout ---


def _race(*actions):
    """Run the callables at the same moment in threads; return their results or exceptions."""
    barrier = threading.Barrier(len(actions))
    results: list = [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait(timeout=10)
            results[index] = action()
        except Exception as exc:  # noqa: BLE001 - returned to the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _buyer(product, quantity):
    user = factories.UserFactory()
    cart = factories.CartFactory(user=user)
    factories.CartItemFactory(cart=cart, product=product, quantity=quantity)
    address = factories.AddressFactory(user=user)
    return lambda: checkout_services.place_order(customer=user, cart=cart, address=address)


@pytest.mark.django_db(transaction=True)
def test_adjusting_down_while_the_last_units_sell_never_goes_negative():
    for _ in range(5):
        member = factories.VendorMembershipFactory()
        product = factories.ProductFactory(vendor=member.vendor, name="Last Lamp", stock=3)
        buy = _buyer(product, 3)

        def damage(product=product, member=member):
            return stock_services.adjust_stock(
                product_id=product.pk,
                vendor=member.vendor,
                change=-3,
                reason=StockReason.DAMAGED,
                acting_user=member.user,
            )

        order_result, damage_result = _race(buy, damage)

        succeeded = [r for r in (order_result, damage_result) if not isinstance(r, Exception)]
        failed = [r for r in (order_result, damage_result) if isinstance(r, Exception)]
        assert len(succeeded) == 1
        assert len(failed) == 1
        assert isinstance(
            failed[0], stock_services.NegativeStock | checkout_services.NotEnoughStock
        )
        assert Product.objects.get(pk=product.pk).stock == 0
        orders = Order.objects.filter(lines__product=product).count()
        damaged = StockAdjustment.objects.filter(product=product, reason=StockReason.DAMAGED)
        sales = StockAdjustment.objects.filter(product=product, reason=StockReason.SALE)
        assert orders + damaged.count() == 1
        # The order that won is in the stock history too, as the sale of the last 3.
        assert list(sales.values_list("change", "stock_after")) == [(-3, 0)] * orders


@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustment_and_checkout_lose_no_update():
    member = factories.VendorMembershipFactory()
    product = factories.ProductFactory(vendor=member.vendor, stock=10)
    buy = _buyer(product, 4)

    def receive():
        return stock_services.adjust_stock(
            product_id=product.pk,
            vendor=member.vendor,
            change=-3,
            reason=StockReason.CORRECTION,
            acting_user=member.user,
        )

    order, adjustment = _race(buy, receive)

    assert isinstance(order, Order)
    assert isinstance(adjustment, StockAdjustment)
    assert Product.objects.get(pk=product.pk).stock == 3
    # Whichever went first, the adjustment saw the stock as it was under its lock.
    assert adjustment.stock_after in {7, 3}


# --- the stock page ---


def test_stock_page_shows_the_history_newest_first(member_client, product, vendor, vendor_member):
    vendor_member.full_name = "Vera Vendor"
    vendor_member.save(update_fields=["full_name"])
    for change, reason, note in [(5, "received", "Box 1"), (-2, "damaged", "Dropped")]:
        stock_services.adjust_stock(
            product_id=product.pk,
            vendor=vendor,
            change=change,
            reason=reason,
            note=note,
            acting_user=vendor_member,
        )

    response = member_client.get(reverse("backoffice:stock_detail", args=[product.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Stock of Teapot" in page
    assert page.index("Dropped") < page.index("Box 1")
    assert ">-2<" in page
    assert ">+5<" in page
    assert response.context["page_obj"].object_list[0].stock_after == 6
    assert "Vera Vendor" in page


def test_stock_page_adjusts_with_a_reason(member_client, product):
    url = reverse("backoffice:stock_detail", args=[product.pk])

    response = member_client.post(
        url, {"change": "7", "reason": "received", "note": "Spring delivery"}, follow=True
    )

    assert response.redirect_chain == [(url, 302)]
    assert "Stock of Teapot changed by +7 to 10." in response.content.decode()
    assert _stock(product) == 10
    assert StockAdjustment.objects.get().note == "Spring delivery"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"change": "-9", "reason": "correction"}, "Stock cannot go below 0: only 3 in stock."),
        ({"change": "0", "reason": "correction"}, "Enter a change other than 0."),
        ({"change": "two", "reason": "correction"}, "Enter a whole number, e.g. 12 or -2."),
        ({"change": "1", "reason": "sale"}, "Choose received, damaged or correction."),
        ({"change": "", "reason": "received"}, "Enter how many units to add or remove."),
    ],
)
def test_stock_page_shows_errors_and_changes_nothing(member_client, product, data, message):
    response = member_client.post(reverse("backoffice:stock_detail", args=[product.pk]), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert _stock(product) == 3
    assert not StockAdjustment.objects.exists()


def test_stock_page_of_another_vendors_product_is_404(member_client):
    foreign = factories.ProductFactory(stock=4)
    url = reverse("backoffice:stock_detail", args=[foreign.pk])

    assert member_client.get(url).status_code == 404
    assert member_client.post(url, {"change": "5", "reason": "received"}).status_code == 404
    assert _stock(foreign) == 4
    assert not StockAdjustment.objects.exists()
