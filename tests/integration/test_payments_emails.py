from decimal import Decimal

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from shop.models import Order, OrderStatus
from shop.services import payments as payment_services
from shop.tasks import emails as email_tasks
from tests import factories
from tests.integration.payments_support import DECLINE, card, place_order


@pytest.fixture(autouse=True)
def _own_ledger(settings, tmp_path):
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"
    settings.SITE_URL = "https://bazaar.example"


@pytest.fixture
def oak(db):
    return factories.VendorFactory(name="Oak & Iron", contact_email="oak@example.com")


@pytest.fixture
def flax(db):
    return factories.VendorFactory(name="Flax House", contact_email="flax@example.com")


@pytest.fixture
def paid_order(shopper, oak, flax, django_capture_on_commit_callbacks):
    board = factories.ProductFactory(vendor=oak, name="Walnut Board", price=Decimal("24.50"))
    towel = factories.ProductFactory(vendor=flax, name="Linen Towel", price=Decimal("9.00"))
    order = place_order(shopper, (board, 2), (towel, 1))
    with django_capture_on_commit_callbacks(execute=True):
        payment_services.start_payment(order=order, card_token=card())
    order.refresh_from_db()
    return order


def _to(address):
    return [message for message in mail.outbox if message.to == [address]]


def test_paid_order_emails_the_shopper_a_confirmation(paid_order, shopper):
    [message] = _to(shopper.email)

    assert message.subject == f"Your order {paid_order.number} is confirmed"
    assert f"your order {paid_order.number} is confirmed" in message.body
    assert "- 2 x Walnut Board (sold by Oak & Iron): €49.00" in message.body
    assert "- 1 x Linen Towel (sold by Flax House): €9.00" in message.body
    assert "Total: €58.00" in message.body
    assert "Sam Shopper" in message.body
    order_url = f"https://bazaar.example/orders/{paid_order.pk}/"
    assert order_url in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert f'href="{order_url}" target="_blank"' in html
    assert "View your order</a>" in html
    assert "Oak &amp; Iron" in html


def test_each_vendor_is_told_only_about_its_own_lines(paid_order):
    [oak_message] = _to("oak@example.com")
    [flax_message] = _to("flax@example.com")

    assert oak_message.subject == f"New order {paid_order.number} for Oak & Iron"
    assert "- 2 x Walnut Board: €49.00" in oak_message.body
    assert "Your part: €49.00" in oak_message.body
    assert "Linen Towel" not in oak_message.body
    assert "Walnut Board" not in flax_message.body
    assert "Your part: €9.00" in flax_message.body
    backoffice_url = f"https://bazaar.example/backoffice/orders/{paid_order.pk}/"
    assert backoffice_url in oak_message.body
    assert backoffice_url in oak_message.alternatives[0][0]
    assert len(mail.outbox) == 3


def test_order_emails_are_never_sent_twice(paid_order, oak):
    for _ in range(3):
        email_tasks.send_order_confirmation.enqueue(paid_order.pk)
        email_tasks.send_vendor_new_order.enqueue(paid_order.pk, oak.pk)

    assert len(mail.outbox) == 3


def test_a_failed_send_is_retried_and_then_sent_once(shopper, oak, monkeypatch, db):
    order = place_order(shopper, (factories.ProductFactory(vendor=oak), 1))
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID)
    original = EmailMultiAlternatives.send
    attempts = []

    def flaky(self, *args, **kwargs):
        attempts.append(self.subject)
        if len(attempts) == 1:
            raise ConnectionError("SMTP down")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EmailMultiAlternatives, "send", flaky)

    with pytest.raises(ConnectionError):
        email_tasks.send_order_confirmation.call(order.pk)
    assert email_tasks.send_order_confirmation.call(order.pk) is True
    assert email_tasks.send_order_confirmation.call(order.pk) is False

    assert len(attempts) == 2
    assert len(mail.outbox) == 1


def test_no_confirmation_for_an_order_that_is_not_paid(shopper, oak, db):
    order = place_order(shopper, (factories.ProductFactory(vendor=oak), 1))

    assert email_tasks.send_order_confirmation.call(order.pk) is False
    assert email_tasks.send_vendor_new_order.call(order.pk, oak.pk) is False
    assert email_tasks.send_order_confirmation.call(999_999) is False
    assert mail.outbox == []


def test_payment_failed_email_says_why_and_links_to_the_cart(
    shopper, oak, django_capture_on_commit_callbacks
):
    order = place_order(shopper, (factories.ProductFactory(vendor=oak), 1))

    with django_capture_on_commit_callbacks(execute=True):
        payment_services.start_payment(order=order, card_token=card(DECLINE))
    email_tasks.send_payment_failed.enqueue(order.pk)

    [message] = mail.outbox
    assert message.to == [shopper.email]
    assert message.subject == f"Payment failed for order {order.number}"
    assert "Your card was declined." in message.body
    assert "https://bazaar.example/cart/" in message.body
    assert "<strong>Your card was declined.</strong>" in message.alternatives[0][0]
    assert not _to("oak@example.com")
