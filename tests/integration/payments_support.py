"""Helpers shared by the tests/integration/test_payments_*.py modules."""

from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from shop.gateways import simulated
from shop.models import Cart, Order, Payment
from shop.services import checkout as checkout_services
from tests import factories

APPROVE = "4242424242424242"
DECLINE = "4000000000000002"
NO_FUNDS = "4000000000009995"
TRANSIENT = "4000000000000119"


def card(number: str = APPROVE):
    """A gateway token for a test card, as the checkout form makes it."""
    return simulated.SimulatedGateway().tokenize_card(
        number=number, exp_month=12, exp_year=timezone.now().year + 2, cvc="123"
    )


def place_order(customer, *items) -> Order:
    """Place a pending-payment order for (product, quantity) pairs through checkout."""
    cart = Cart.objects.get_or_create(user=customer)[0]
    for product, quantity in items:
        factories.CartItemFactory(cart=cart, product=product, quantity=quantity)
    return checkout_services.place_order(
        customer=customer, cart=cart, address=factories.AddressFactory(user=customer)
    )


def charges(payment: Payment, status: str | None = None) -> list:
    """What the simulated processor recorded for this payment's key."""
    entries = simulated.SimulatedGateway.ledger_charges(idempotency_key=payment.idempotency_key)
    return [entry for entry in entries if status is None or entry.status == status]


def money(value: str) -> Decimal:
    return Decimal(value)


def paid_according_to_orders() -> Decimal:
    """What our payments say shoppers paid: captured amounts minus what was refunded."""
    captured = Payment.objects.filter(status__in=["captured", "refunded"]).aggregate(
        total=Sum("amount", default=Decimal("0.00"))
    )["total"]
    refunded = Payment.objects.aggregate(total=Sum("refunded_amount", default=Decimal("0.00")))[
        "total"
    ]
    return captured - refunded


def paid_according_to_processor() -> Decimal:
    """The simulated processor's ledger: captures minus refunds."""
    return simulated.SimulatedGateway.ledger_net()
