"""The embedded default (`make run` without PostgreSQL or Redis) where its SQL differs from
PostgreSQL's: the order page's timeline (a JSON array where PostgreSQL has ARRAY(...)) and
adding to the cart (PostgreSQL's one-statement raise of a line has no SQLite form)."""

import textwrap
from pathlib import Path

from tests.fixtures.embedded import run_on_embedded_default

SCRIPT = textwrap.dedent(
    """
    import json
    import django
    from django.core.management import call_command
    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection
    from django.test import Client
    from shop.selectors import orders as order_selectors
    from tests import factories
    customer = factories.UserFactory(email="ada@example.com")
    order = factories.OrderFactory(customer=customer, status="paid")
    oak = factories.VendorFactory(name="Oak Works")
    brass = factories.VendorFactory(name="Brass & Co")
    for vendor in (oak, brass):
        factories.OrderLineFactory(order=order, product=factories.ProductFactory(vendor=vendor))
    factories.CapturedPaymentFactory(order=order)
    factories.ShipmentFactory(order=order, vendor=oak, carrier="DHL", tracking_number="TRACK42")
    client = Client()
    client.force_login(customer)
    page = client.get(order.get_absolute_url())
    state = order_selectors.get_order_state(order_id=order.pk)
    print(json.dumps({
        "vendor": connection.vendor,
        "status": page.status_code,
        "page": page.content.decode(),
        "shops": state.shops,
        "shipments": [[s.vendor_name, s.carrier, s.tracking_number, s.shipped_at.isoformat()]
                      for s in state.shipments],
    }))
    """
)


def test_the_order_page_works_on_the_embedded_sqlite_database(tmp_path: Path):
    report = run_on_embedded_default(SCRIPT, tmp_path)

    assert report["vendor"] == "sqlite"
    assert report["status"] == 200
    # The shop that shipped first, then the one with items still to ship.
    assert report["shops"] == ["Oak Works", "Brass & Co"]
    [(shop, carrier, tracking, shipped_at)] = report["shipments"]
    assert (shop, carrier, tracking) == ("Oak Works", "DHL", "TRACK42")
    assert shipped_at.endswith("+00:00")
    assert "TRACK42" in report["page"]
    assert "Brass &amp; Co" in report["page"]


CART_SCRIPT = textwrap.dedent(
    """
    import json
    import django
    from django.core.management import call_command
    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection
    from django.test import Client
    from tests import factories
    product = factories.ProductFactory(name="Oak Board", stock=5)
    shopper = factories.UserFactory()
    answers = []
    for who in ("guest", "signed in"):
        client = Client()
        if who == "signed in":
            client.force_login(shopper)
        for quantity in (2, 2, 2):
            response = client.post(
                "/cart/add/", {"product_id": product.pk, "quantity": quantity},
                headers={"HX-Request": "true"},
            )
            answers.append([who, response.status_code, response.content.decode()])
    print(json.dumps({"vendor": connection.vendor, "answers": answers}))
    """
)


def test_adding_to_the_cart_works_on_the_embedded_sqlite_database(tmp_path: Path):
    report = run_on_embedded_default(CART_SCRIPT, tmp_path)

    assert report["vendor"] == "sqlite"
    for who in ("guest", "signed in"):
        first, again, too_many = [a for a in report["answers"] if a[0] == who]
        assert first[1] == again[1] == too_many[1] == 200
        assert "Added 2 × Oak Board to your cart." in again[2]
        assert 'aria-label="4 items in cart"' in again[2]
        assert "Only 5 left in stock. You already have 4 in your cart." in too_many[2]
