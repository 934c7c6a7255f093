"""What a page costs besides itself: an anonymous visitor with no cart gets no session and
costs no Redis round-trip but the page cache's (counted by Redis itself, with MONITOR): one
read for a page served from it. CSRF still guards their first cart write and sign-in; each
shopper page keeps a fixed query budget."""

import re
import threading
import uuid
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db

CATALOGUE_PAGES = {
    "home": lambda: reverse("shop:home"),
    "listing": lambda: reverse("shop:product_list") + "?sort=price_desc&page=1",
    "category": lambda: reverse("shop:category", kwargs={"slug": "lamps"}),
    "search": lambda: reverse("shop:product_list") + "?q=lamp",
    "product": lambda: reverse("shop:product", kwargs={"slug": "desk-lamp"}),
    "cart": lambda: reverse("shop:cart"),
}


@pytest.fixture
def catalogue(db):
    category = factories.CategoryFactory(name="Lamps", slug="lamps")
    product = factories.ProductFactory(
        name="Desk Lamp", slug="desk-lamp", category=category, price=Decimal("30.00"), stock=5
    )
    for n in range(30):
        factories.ProductFactory(name=f"Lamp {n}", slug=f"lamp-{n}", category=category, stock=n)
    return product


class RedisCommands:
    """The commands Redis receives (MONITOR) that name a key under this test's own prefix,
    so commands from other tests and other processes sharing the server never count."""

    def __init__(self) -> None:
        self.prefix = f"cost-{uuid.uuid4().hex[:12]}"
        self._commands: list[str] = []
        url = settings.CACHES["default"]["LOCATION"]
        self._monitor = redis.Redis.from_url(url)
        self._control = redis.Redis.from_url(url)
        self._marker = f"{self.prefix}-marker"
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self._monitor.monitor() as monitor:
            while True:
                command = monitor.next_command()["command"]
                if self._marker in command:
                    if "stop" in command:
                        return
                    self._synced.set()
                elif self.prefix in command:
                    self._commands.append(command)

    def _sync(self) -> None:
        """Wait until the monitor has seen everything sent before now."""
        self._synced.clear()
        while not self._synced.wait(0.05):
            self._control.echo(f"{self._marker} sync")

    @property
    def commands(self) -> list[str]:
        self._sync()
        return list(self._commands)

    @property
    def besides_page_cache(self) -> list[str]:
        """The commands on other keys than the page cache's (project.page_cache)."""
        page_cache_keys = (f"{self.prefix}:1:page:", f"{self.prefix}:1:page-version:")
        return [
            command
            for command in self.commands
            if not any(key in command for key in page_cache_keys)
        ]

    def __enter__(self) -> "RedisCommands":
        self._thread.start()
        self._sync()
        return self

    def __exit__(self, *exc) -> None:
        self._control.echo(f"{self._marker} stop")
        self._thread.join(10)
        self._monitor.close()
        self._control.close()


@pytest.fixture
def redis_commands():
    commands = RedisCommands()
    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": commands.prefix}}
    with override_settings(CACHES=caches), commands:
        yield commands


def _csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


@pytest.mark.parametrize("page", list(CATALOGUE_PAGES))
def test_an_anonymous_visit_without_a_cart_sets_no_session_and_costs_no_session_call(
    catalogue, redis_commands, page
):
    browser = Client()

    response = browser.get(CATALOGUE_PAGES[page]())
    fragment = browser.get(
        CATALOGUE_PAGES[page](), headers={"HX-Request": "true", "HX-Target": "product-results"}
    )

    assert response.status_code == fragment.status_code == 200
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert settings.SESSION_COOKIE_NAME not in fragment.cookies
    assert 'aria-label="0 items in cart"' in response.text
    assert redis_commands.besides_page_cache == []


@pytest.mark.parametrize("page", [page for page in CATALOGUE_PAGES if page != "cart"])
def test_an_anonymous_repeat_visit_costs_one_redis_read(catalogue, redis_commands, page):
    Client().get(CATALOGUE_PAGES[page]())
    before = len(redis_commands.commands)

    response = Client().get(CATALOGUE_PAGES[page]())

    assert response["X-Page-Cache"] == "hit"
    assert [command.split()[0] for command in redis_commands.commands[before:]] == ["MGET"]


def test_an_anonymous_first_add_to_cart_passes_csrf_and_starts_the_session(
    catalogue, redis_commands
):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(CATALOGUE_PAGES["product"]())
    assert settings.SESSION_COOKIE_NAME not in page.cookies
    assert redis_commands.besides_page_cache == []

    refused = browser.post(reverse("shop:cart_add"), {"product_id": catalogue.pk, "quantity": 1})
    assert refused.status_code == 403
    added = browser.post(
        reverse("shop:cart_add"),
        {"product_id": catalogue.pk, "quantity": 2, "csrfmiddlewaretoken": _csrf_token(page.text)},
    )

    assert added.status_code == 302
    assert settings.SESSION_COOKIE_NAME in added.cookies
    # The new session is written once; no probe for its (random) key first.
    assert [command.split()[0] for command in redis_commands.besides_page_cache] == ["SET"]
    # From now on the visitor has a cart: the badge shows it, read through their session.
    before = len(redis_commands.commands)
    listing = browser.get(CATALOGUE_PAGES["listing"]())
    assert 'aria-label="2 items in cart"' in listing.text
    assert any(command.startswith("GET ") for command in redis_commands.commands[before:])


def test_an_anonymous_sign_in_passes_csrf_and_starts_the_session(shopper, redis_commands):
    browser = Client(enforce_csrf_checks=True)
    form = browser.get(reverse("accounts:login"))
    assert settings.SESSION_COOKIE_NAME not in form.cookies

    signed_in = browser.post(
        reverse("accounts:login"),
        {
            "email": shopper.email,
            "password": factories.PASSWORD,
            "csrfmiddlewaretoken": _csrf_token(form.text),
        },
    )

    assert signed_in.status_code == 302
    assert settings.SESSION_COOKIE_NAME in signed_in.cookies
    assert "My orders" in browser.get(reverse("shop:home")).text


# Queries of the cart page and the first add to cart, whatever the cart's size (the catalogue
# pages' budgets are in test_catalogue_query_budgets.py). The test runs in a transaction, so
# the request's atomic blocks add their SAVEPOINT and RELEASE statements.
CART_BUDGETS = {
    # the cart created, the product with what the cart holds of it, the line written, the
    # badge's count; the new session's row (each in SAVEPOINT, RELEASE)
    ("anonymous", "add"): 5 + 4,
    # the user, the cart touched (none yet), looked up and created (SAVEPOINT, RELEASE),
    # touched, the line raised (none yet), the product with what the cart holds of it, the
    # line written, the badge's count (SAVEPOINT, RELEASE)
    ("signed-in", "add"): 9 + 4,
    ("anonymous", "cart"): 1,  # the session's cart: its lines with products and vendors
    ("signed-in", "cart"): 2,  # the user (with the vendor link's answer), the cart's lines
}


@pytest.mark.parametrize("who", ["anonymous", "signed-in"])
def test_cart_pages_and_adding_keep_their_query_budget(
    catalogue, shopper, who, django_assert_max_num_queries
):
    browser = Client()
    if who == "signed-in":
        browser.force_login(shopper)
    others = factories.ProductFactory.create_batch(3, stock=10)
    add = {"product_id": catalogue.pk, "quantity": 1}

    with django_assert_max_num_queries(CART_BUDGETS[(who, "add")]):
        added = browser.post(reverse("shop:cart_add"), add, headers={"HX-Request": "true"})
    for product in others:
        browser.post(reverse("shop:cart_add"), {"product_id": product.pk, "quantity": 1})
    with django_assert_max_num_queries(CART_BUDGETS[(who, "cart")]):
        cart = browser.get(reverse("shop:cart"))

    assert added.status_code == cart.status_code == 200
    assert 'aria-label="4 items in cart"' in cart.text


# Adding again to a line already in the cart (the common case): the cart found, locked and
# touched by one UPDATE, the line raised by another that returns the badge's count; signed in,
# the user too (SAVEPOINT, RELEASE here; BEGIN, COMMIT outside a test).
ADD_AGAIN_BUDGETS = {"anonymous": 2 + 2, "signed-in": 3 + 2}


@pytest.mark.parametrize("who", ["anonymous", "signed-in"])
def test_adding_to_a_line_already_in_the_cart_keeps_its_budget_and_its_checks(
    catalogue, shopper, who, django_assert_max_num_queries
):
    browser = Client()
    if who == "signed-in":
        browser.force_login(shopper)
    add = {"product_id": catalogue.pk, "quantity": 2}
    browser.post(reverse("shop:cart_add"), add, headers={"HX-Request": "true"})

    with django_assert_max_num_queries(ADD_AGAIN_BUDGETS[who]):
        again = browser.post(reverse("shop:cart_add"), add, headers={"HX-Request": "true"})
    too_many = browser.post(reverse("shop:cart_add"), add, headers={"HX-Request": "true"})

    assert again.status_code == 200
    assert f"Added 2 × {catalogue.name} to your cart." in again.text
    assert 'id="cart-badge"' in again.text
    assert 'hx-swap-oob="true"' in again.text
    assert 'aria-label="4 items in cart"' in again.text
    # Stock 5: a third add of 2 is refused and the line stays at 4.
    assert "Only 5 left in stock. You already have 4 in your cart." in too_many.text
    assert 'aria-label="4 items in cart"' in browser.get(reverse("shop:cart")).text
