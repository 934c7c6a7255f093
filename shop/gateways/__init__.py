"""The payment gateway interface and the result types every adapter returns.

Views tokenize the card through the gateway and hand only the token onwards:
the full card number and CVC never reach a service, a model, a task or a log.
"""

import abc
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.utils.module_loading import import_string

from project.errors import DomainError

ChargeStatus = Literal["captured", "declined", "error"]
RefundStatus = Literal["succeeded", "failed"]


class CardInvalid(DomainError):
    """The card details cannot be used; `field` names the form field to blame."""

    code = "card_invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class GatewayError(Exception):
    """A transient failure (network, processor hiccup): the same call may succeed later."""

    code = "processing_error"


@dataclass(frozen=True, kw_only=True)
class CardToken:
    token: str
    brand: str
    last4: str


@dataclass(frozen=True, kw_only=True)
class ChargeResult:
    status: ChargeStatus
    reference: str = ""
    failure_code: str = ""
    failure_message: str = ""

    @property
    def captured(self) -> bool:
        return self.status == "captured"


@dataclass(frozen=True, kw_only=True)
class RefundResult:
    status: RefundStatus
    reference: str = ""
    failure_message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


class PaymentGateway(abc.ABC):
    """What Bazaar needs from a payment provider."""

    @abc.abstractmethod
    def tokenize_card(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken:
        """Exchange card details for a token; raises CardInvalid."""

    @abc.abstractmethod
    def card_token(self, token: str, /) -> CardToken:
        """The CardToken (brand, last four) of a token the processor issued to a client that
        tokenized the card itself (a browser's card form, a mobile app); raises CardInvalid for
        a token it never issued."""

    @abc.abstractmethod
    def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        """Charge a token once per idempotency key; raises GatewayError on a transient failure.

        A repeated call with the same key returns the first call's result and never charges
        again (Stripe keeps keys for 24 hours, so callers send a charge again only within
        PAYMENT_CHARGE_WINDOW_SECONDS and otherwise ask `retrieve_charge`). A GatewayError
        says nothing about whether the charge was made: ask `retrieve_charge`.
        """

    @abc.abstractmethod
    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        """Refund part or all of a captured charge once per idempotency key.

        Raises GatewayError on a transient failure, which says nothing about whether the refund
        was made (ask `retrieve_refund`); a refused refund is a failed RefundResult.
        """

    @abc.abstractmethod
    def retrieve_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        """What the processor holds under a charge's idempotency key; never charges.

        The charge's result (captured or declined) if one was made with this key, None when the
        processor answered and has no charge under it. Raises GatewayError when the processor
        cannot be asked (or the charge is still being decided): the outcome stays unknown.
        """

    @abc.abstractmethod
    def retrieve_refund(
        self, *, charge_reference: str, idempotency_key: str
    ) -> RefundResult | None:
        """What the processor holds under a refund's idempotency key; never refunds.

        The refund's result if one was made with this key against the charge, None when the
        processor answered and has none. Raises GatewayError when it cannot be asked.
        """


def get_gateway() -> PaymentGateway:
    """The configured gateway (`settings.PAYMENT_GATEWAY`, an import path to a class)."""
    return import_string(settings.PAYMENT_GATEWAY)()
