"""Two `POST /orders` for one cart at the same moment, over real HTTP to two web processes:
one order, never two (place_order locks the cart; the second finds it emptied)."""

import threading
from decimal import Decimal

import httpx
import pytest

from shop.models import Order, Payment, Product
from tests import factories
from tests.fixtures.asgi_server import AsgiServer
from tests.integration.api.conftest import bearer
from tests.integration.api.permissions.shop import payment_token

pytestmark = pytest.mark.django_db(transaction=True)

ATTEMPTS = 6


@pytest.fixture
def server(tmp_path):
    server = AsgiServer(log=tmp_path / "uvicorn.log", workers=2).start()
    yield server
    server.stop()


def test_concurrent_orders_for_one_cart_make_one_order(server):
    shopper = factories.UserFactory()
    address = factories.AddressFactory(user=shopper)
    lamp = factories.ProductFactory(price=Decimal("10.00"), stock=50)
    cart = factories.CartFactory(user=shopper)
    factories.CartItemFactory(cart=cart, product=lamp, quantity=2)
    headers = {"Authorization": bearer(shopper)["HTTP_AUTHORIZATION"]}
    bodies = [{"address_id": address.pk, "payment_token": payment_token()} for _ in range(ATTEMPTS)]
    start = threading.Barrier(ATTEMPTS)
    answers: list[httpx.Response] = []

    def attempt(body: dict) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            start.wait()
            answers.append(http.post("/api/v1/orders/", json=body, headers=headers))

    threads = [threading.Thread(target=attempt, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(response.status_code for response in answers)
    assert statuses == [201] + [409] * (ATTEMPTS - 1), [r.text for r in answers]
    assert {r.json()["type"].rsplit("/", 1)[1] for r in answers if r.status_code == 409} == {
        "empty-cart"
    }
    assert Order.objects.filter(customer=shopper).count() == 1
    assert Payment.objects.count() == 1
    assert Product.objects.get(pk=lamp.pk).stock == 48
