"""Placing and following orders over the API: the shop's checkout (`place_order`, the payment
queue) with a payment processor's token instead of a card form."""

import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from api.schemas.shop import card_number_fields
from project.events.models import OutboxEvent
from shop.gateways import simulated
from shop.models import CartItem, Order, OrderStatus, Payment, PaymentStatus, Product
from tests import factories
from tests.integration.api.conftest import bearer
from tests.integration.api.permissions.shop import payment_token

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
PAN = "4242 4242 4242 4242"


@pytest.fixture
def shopper():
    return factories.UserFactory(email="orders-shopper@example.com")


@pytest.fixture
def address(shopper):
    return factories.AddressFactory(user=shopper, full_name="Ada Lovelace", city="Berlin")


@pytest.fixture
def lamp():
    return factories.ProductFactory(name="Oak desk lamp", price=Decimal("24.50"), stock=5)


@pytest.fixture
def cart(shopper, lamp):
    cart = factories.CartFactory(user=shopper)
    factories.CartItemFactory(cart=cart, product=lamp, quantity=2)
    return cart


def place(client, user, body):
    return client.post(ORDERS, json.dumps(body), content_type="application/json", **bearer(user))


def nothing_ordered(shopper, lamp, *, in_cart: int = 2) -> None:
    assert not Order.objects.filter(customer=shopper).exists()
    assert not Payment.objects.exists()
    assert Product.objects.get(pk=lamp.pk).stock == 5
    assert list(CartItem.objects.filter(cart__user=shopper).values_list("quantity", flat=True)) == (
        [in_cart] if in_cart else []
    )


def test_places_the_order_and_charges_the_token_in_the_background(
    client, shopper, address, cart, lamp, django_capture_on_commit_callbacks
):
    token = payment_token()

    with django_capture_on_commit_callbacks(execute=True):
        response = place(
            client,
            shopper,
            {"address_id": address.pk, "payment_token": token, "expected_total": "49.00"},
        )

    assert response.status_code == 201, response.content
    order = Order.objects.get(customer=shopper)
    assert response["Location"] == f"/api/v1/orders/{order.pk}"
    body = response.json()
    assert body["id"] == order.pk
    assert body["number"] == order.number
    assert body["status"] == "pending_payment"
    assert body["total"] == "49.00"
    assert body["ship_to"][:2] == ["Ada Lovelace", address.line1]
    assert body["lines"] == [
        {
            "product_id": lamp.pk,
            "product_name": "Oak desk lamp",
            "vendor": lamp.vendor.name,
            "unit_price": "24.50",
            "quantity": 2,
            "line_total": "49.00",
            "status": "pending",
        }
    ]
    assert body["payment"]["progress"] == "processing"
    assert (body["payment"]["card_brand"], body["payment"]["card_last4"]) == ("Visa", "4242")
    assert Product.objects.get(pk=lamp.pk).stock == 3
    assert not CartItem.objects.filter(cart=cart).exists()
    assert OutboxEvent.objects.filter(event_type="OrderPlaced").count() == 1
    payment = Payment.objects.get(order=order)
    assert payment.payment_method == token
    # The charge ran on commit (the test settings run tasks inline): the order is paid.
    assert payment.status == PaymentStatus.CAPTURED
    paid = client.get(response["Location"], **bearer(shopper)).json()
    assert paid["status"] == "paid"
    assert paid["payment"]["progress"] == "captured"


def test_a_declined_token_cancels_the_order_as_in_the_shop(
    client, shopper, address, cart, lamp, django_capture_on_commit_callbacks
):
    declined = simulated.SimulatedGateway().tokenize_card(
        number="4000000000000002", exp_month=12, exp_year=2039, cvc="123"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = place(
            client, shopper, {"address_id": address.pk, "payment_token": declined.token}
        )

    assert response.status_code == 201
    order = client.get(response["Location"], **bearer(shopper)).json()
    assert order["status"] == "cancelled"
    assert order["payment"]["progress"] == "declined"
    assert order["payment"]["failure_message"] == "Your card was declined."
    assert Product.objects.get(pk=lamp.pk).stock == 5


@pytest.mark.parametrize(
    "body",
    [
        {"payment_token": PAN},
        {"payment_token": "tok", "card": {"number": "4242424242424242", "cvc": "123"}},
        {"payment_token": "tok", "notes": [f"my card is {PAN.replace(' ', '-')}"]},
        {"payment_token": "tok", "card_number": 4000000000000002},
    ],
    ids=["as-the-token", "nested", "in-a-list", "as-a-number"],
)
def test_refuses_a_body_with_a_card_number_and_never_logs_it(
    client, shopper, address, cart, lamp, json_logs, body
):
    response = place(client, shopper, {"address_id": address.pk, **body})

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/invalid-input")
    assert "looks like a card number" in problem["errors"][0]["message"]
    assert "4242" not in response.content.decode()
    assert "0002" not in response.content.decode()
    logged = json.dumps(json_logs())
    assert "4242" not in logged
    assert "0000002" not in logged
    nothing_ordered(shopper, lamp)


def test_a_long_number_that_is_no_card_is_not_mistaken_for_one(client, shopper, address, lamp):
    not_luhn = "4242424242424241"

    response = place(client, shopper, {"address_id": address.pk, "payment_token": not_luhn})

    # It reached the processor, which never issued it.
    assert response.status_code == 422
    assert response.json()["type"].endswith("/payment-token-invalid")


def test_refuses_a_token_the_processor_never_issued(client, shopper, address, cart, lamp):
    forged = "pm_sim_ok_0000000000000000"

    response = place(client, shopper, {"address_id": address.pk, "payment_token": forged})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "payment_token", "message": "This card cannot be used."}
    ]
    nothing_ordered(shopper, lamp)


def test_refuses_when_the_total_changed_from_what_the_client_showed(
    client, shopper, address, cart, lamp
):
    token = payment_token()
    Product.objects.filter(pk=lamp.pk).update(price=Decimal("26.00"))

    response = place(
        client,
        shopper,
        {"address_id": address.pk, "payment_token": token, "expected_total": "49.00"},
    )

    assert response.status_code == 409
    body = response.json()
    assert body["type"].endswith("/prices-changed")
    assert "the total is now €52.00" in body["detail"]
    nothing_ordered(shopper, lamp)


def test_refuses_an_empty_cart(client, shopper, address, lamp):
    response = place(client, shopper, {"address_id": address.pk, "payment_token": payment_token()})

    assert response.status_code == 409
    assert response.json()["type"].endswith("/empty-cart")
    nothing_ordered(shopper, lamp, in_cart=0)


def test_refuses_a_sold_out_product(client, shopper, address, cart, lamp):
    Product.objects.filter(pk=lamp.pk).update(stock=1)

    response = place(client, shopper, {"address_id": address.pk, "payment_token": payment_token()})

    assert response.status_code == 409
    assert response.json()["detail"] == "Not enough stock for Oak desk lamp: only 1 left."
    assert not Order.objects.exists()
    assert Product.objects.get(pk=lamp.pk).stock == 1


def test_someone_elses_address_is_not_found(client, shopper, cart, lamp):
    elsewhere = factories.AddressFactory()

    response = place(
        client, shopper, {"address_id": elsewhere.pk, "payment_token": payment_token()}
    )

    assert response.status_code == 404
    nothing_ordered(shopper, lamp)


def test_an_unverified_shopper_cannot_order(client, shopper, address, cart, lamp):
    shopper.email_verified_at = None
    shopper.save(update_fields=["email_verified_at"])

    response = place(client, shopper, {"address_id": address.pk, "payment_token": payment_token()})

    assert response.status_code == 403
    assert response.json()["type"].endswith("/email-unverified")
    nothing_ordered(shopper, lamp)


def test_missing_fields_are_listed(client, shopper, cart, lamp):
    response = place(client, shopper, {"expected_total": "-1"})

    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {
        "address_id",
        "payment_token",
        "expected_total",
    }
    nothing_ordered(shopper, lamp)


def test_lists_the_shoppers_orders_in_cursor_pages(client, shopper, django_assert_max_num_queries):
    mine = [factories.OrderFactory(customer=shopper) for _ in range(3)]
    factories.OrderFactory()  # someone else's

    with django_assert_max_num_queries(2):
        first = client.get(ORDERS, {"limit": 2}, **bearer(shopper)).json()
    second = client.get(
        ORDERS, {"limit": 2, "cursor": first["next_cursor"]}, **bearer(shopper)
    ).json()

    assert [order["id"] for order in first["items"]] == [mine[2].pk, mine[1].pk]
    assert [order["id"] for order in second["items"]] == [mine[0].pk]
    assert second["next_cursor"] is None
    assert client.get(ORDERS, {"cursor": "forged"}, **bearer(shopper)).status_code == 400


def test_shows_an_order_with_its_shipments_and_hides_it_from_others(
    client, shopper, django_assert_max_num_queries
):
    order = factories.OrderFactory(customer=shopper, status=OrderStatus.SHIPPED)
    line = factories.OrderLineFactory(order=order)
    factories.CapturedPaymentFactory(order=order, amount=order.total)
    factories.ShipmentFactory(order=order, vendor=line.vendor, carrier="DHL", tracking_number="T1")

    with django_assert_max_num_queries(3):
        response = client.get(f"{ORDERS}{order.pk}", **bearer(shopper))

    body = response.json()
    assert body["status"] == "shipped"
    assert body["payment"]["progress"] == "captured"
    assert [(s["carrier"], s["tracking_number"]) for s in body["shipments"]] == [("DHL", "T1")]
    assert client.get(f"{ORDERS}{order.pk}", **bearer(factories.UserFactory())).status_code == 404


def test_saves_and_lists_addresses(client, shopper):
    created = client.post(
        f"{ORDERS}addresses",
        json.dumps(
            {
                "full_name": "Grace Hopper",
                "line1": "1 Harbour Road",
                "city": "Hamburg",
                "postal_code": "20095",
                "country": "de",
            }
        ),
        content_type="application/json",
        **bearer(shopper),
    )
    bad = client.post(
        f"{ORDERS}addresses",
        json.dumps(
            {"full_name": " ", "line1": "x", "city": "y", "postal_code": "1", "country": "1"}
        ),
        content_type="application/json",
        **bearer(shopper),
    )

    assert created.status_code == 201
    assert created.json()["country"] == "DE"
    assert created.json()["is_default"] is True
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {"full_name", "country"}
    listed = client.get(f"{ORDERS}addresses", **bearer(shopper)).json()
    assert [address["city"] for address in listed] == ["Hamburg"]


def test_the_gateway_command_issues_tokens_the_processor_knows(capsys):
    call_command("simulated_gateway", "token", "--number", "4000 0000 0000 9995")
    token = capsys.readouterr().out.strip()

    card = simulated.SimulatedGateway().card_token(token)

    assert token.startswith("pm_sim_nofunds_")
    assert (card.brand, card.last4) == ("Visa", "9995")
    assert "4000" not in token


def test_too_many_orders_are_refused_before_anything_is_ordered(
    client, settings, shopper, address, cart, lamp
):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "checkout_user": {"limit": 1, "window": 600}}
    place(client, shopper, {"address_id": address.pk, "payment_token": "pm_sim_ok_unknown"})

    response = place(client, shopper, {"address_id": address.pk, "payment_token": payment_token()})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    nothing_ordered(shopper, lamp)


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ({"payment_token": "pm_sim_ok_5c0b1d2e3f4a5b6c"}, []),
        ({"payment_token": "pm_sim_ok_0000000000000000"}, []),  # zeros: no card starts so
        ({"note": "order 4242424242424241"}, []),  # fails the Luhn check
        ({"note": "ref x4242424242424242"}, []),  # part of a longer word
        ({"card": {"number": "3782 822463 10005"}}, ["card.number"]),  # Amex, 15 digits
        ({"cards": ["5555-5555-5555-4444"]}, ["cards.0"]),
        ({"payment_token": 4242424242424242}, ["payment_token"]),
    ],
)
def test_recognises_card_numbers_wherever_they_are(body, found):
    assert card_number_fields(body) == found
