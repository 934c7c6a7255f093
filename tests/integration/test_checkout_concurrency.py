"""Many buyers of the last units, over real HTTP: a uvicorn process on the test database.

Each buyer is its own browser (cookie jar, CSRF token), signs in with the form, adds the
product from its page with htmx's request, chooses an address and reaches the review step;
then all of them press "Place order" at the same moment.
"""

import re
import threading
from decimal import Decimal

import httpx
import pytest

from shop.models import CartItem, Order, OrderLine, Payment, Product, StockAdjustment
from tests import factories
from tests.fixtures.asgi_server import AsgiServer

pytestmark = pytest.mark.django_db(transaction=True)

BUYERS = 64
UNITS = 10
CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CSRF_HEADER = re.compile(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'')
ADDRESS = re.compile(r'name="address" value="(\d+)"')
SOLD_OUT = "Sorry, Last Edition has sold out."


@pytest.fixture
def server(tmp_path):
    # Two web processes, as in production: the buyers' row locks meet in PostgreSQL.
    server = AsgiServer(log=tmp_path / "uvicorn.log", workers=2).start()
    yield server
    server.stop()


class Buyer:
    def __init__(self, base: str, email: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)
        self.email = email
        self.statuses: list[int] = []
        self.page = ""

    def get(self, path: str) -> httpx.Response:
        response = self.http.get(path)
        self.statuses.append(response.status_code)
        self.page = response.text
        return response

    def post(self, path: str, data: dict) -> httpx.Response:
        token = CSRF_FIELD.search(self.page).group(1)
        response = self.http.post(path, data={"csrfmiddlewaretoken": token, **data})
        self.statuses.append(response.status_code)
        return response

    def reach_review(self, product: Product) -> None:
        self.get("/accounts/login/")
        signed_in = self.post(
            "/accounts/login/", {"email": self.email, "password": factories.PASSWORD}
        )
        assert signed_in.status_code == 302, signed_in.text
        self.get(f"/p/{product.slug}/")
        added = self.http.post(
            "/cart/add/",
            data={"product_id": product.pk, "quantity": 1},
            headers={
                "X-CSRFToken": CSRF_HEADER.search(self.page).group(1),
                "HX-Request": "true",
                "HX-Target": "add-to-cart-result",
            },
        )
        self.statuses.append(added.status_code)
        assert "Added 1 × Last Edition to your cart." in added.text
        self.get("/checkout/")
        chosen = self.post("/checkout/", {"address": ADDRESS.search(self.page).group(1)})
        assert chosen.headers["Location"] == "/checkout/review/"
        self.get("/checkout/review/")

    def place_order(self) -> str:
        """What the buyer ends up seeing: the order page's path, or the cart page."""
        placed = self.post("/checkout/review/", CARD)
        assert placed.status_code == 302
        location = placed.headers["Location"]
        return self.get(location).text if location == "/cart/" else location


def test_64_buyers_of_the_last_10_units_get_10_orders_and_a_clear_message(server):
    product = factories.ProductFactory(name="Last Edition", price=Decimal("99.00"), stock=UNITS)
    buyers = []
    for _ in range(BUYERS):
        user = factories.UserFactory()
        user.default_address = factories.AddressFactory(user=user)
        user.save()
        buyers.append(Buyer(server.url, user.email))
    at_once = threading.Barrier(BUYERS)
    seen: dict[str, str] = {}
    crashed: list[BaseException] = []

    def buy(buyer: Buyer) -> None:
        try:
            buyer.reach_review(product)
            at_once.wait(timeout=120)
            seen[buyer.email] = buyer.place_order()
        except BaseException as exc:  # surfaced by the assertion below
            crashed.append(exc)
            at_once.abort()

    threads = [threading.Thread(target=buy, args=(buyer,)) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert crashed == []
    assert [s for buyer in buyers for s in buyer.statuses if s >= 500] == []
    ordered = {email: path for email, path in seen.items() if path.startswith("/orders/")}
    told = [email for email, page in seen.items() if SOLD_OUT in page]
    assert len(ordered) == UNITS
    assert len(told) == BUYERS - UNITS
    product.refresh_from_db()
    assert product.stock == 0
    orders = Order.objects.filter(lines__product=product)
    assert sorted(f"/orders/{pk}/" for pk in orders.values_list("pk", flat=True)) == sorted(
        ordered.values()
    )
    assert set(orders.values_list("customer__email", flat=True)) == set(ordered)
    # Nothing half-made: one line and one payment per order, one sale per unit sold; the
    # buyers told it sold out keep their cart as it was.
    assert OrderLine.objects.filter(product=product).count() == UNITS
    assert Payment.objects.filter(order__in=orders).count() == UNITS
    assert Payment.objects.count() == UNITS
    assert Order.objects.count() == UNITS
    assert StockAdjustment.objects.filter(product=product, reason="sale").count() == UNITS
    assert sorted(CartItem.objects.values_list("cart__user__email", flat=True)) == sorted(told)
