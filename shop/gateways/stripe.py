"""The Stripe adapter, on the official `stripe` package (PaymentIntents and Refunds).

Card details never reach our server with Stripe: the checkout page uses Stripe.js/Elements
in the browser to create a PaymentMethod and posts only its id (`pm_...`), which is the
token `charge` receives. `tokenize_card` therefore refuses raw card numbers; `card_token`
turns a PaymentMethod id into the CardToken (brand, last four) the services store.

Every request carries our idempotency key (`Idempotency-Key`), so Stripe replays the first
response to a retry instead of charging or refunding again. Retries are the task backend's
job, so the client's own network retries are off. Amounts are sent in cents: only
two-decimal currencies (EUR, USD, ...) are supported.

Lookups by key (`retrieve_charge`, `retrieve_refund`), for a reply that never came: the key
also travels as `metadata[bazaar_idempotency_key]`. A PaymentIntent is found with the Search
API (`metadata['bazaar_idempotency_key']:'<key>'`), which Stripe documents as eventually
consistent (usually under a minute behind): "nothing there" right after a lost reply can be
stale, which is why a payment given up on is looked up again for PAYMENT_RECONCILE_HOURS (and
the payment_intent.succeeded webhook settles it too). Refunds are listed per PaymentIntent,
which is read-after-write consistent.

Settings: STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET (shop.views.webhooks) and STRIPE_API_BASE
(only to point at a local stand-in of the API in tests and demos).
"""

from decimal import Decimal

import stripe
from django.conf import settings

from shop.gateways import (
    CardInvalid,
    CardToken,
    ChargeResult,
    GatewayError,
    PaymentGateway,
    RefundResult,
)

TRANSIENT_ERRORS = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)
# PaymentIntent states in which no money moved and none will without another confirmation.
UNCHARGED_STATES = {"requires_confirmation", "canceled"}
METADATA_KEY = "bazaar_idempotency_key"
DECLINED_MESSAGE = "Your card was declined."
AUTHENTICATION_MESSAGE = (
    "Your bank asked to confirm this payment, which this checkout cannot do yet. "
    "Please use another card."
)


def to_cents(amount: Decimal) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


class StripeGateway(PaymentGateway):
    def __init__(self) -> None:
        self.client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses=(
                {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
            ),
            max_network_retries=0,
        )

    def tokenize_card(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken:
        raise CardInvalid(
            "Card details must be entered in Stripe's secure card form.", field="number"
        )

    def card_token(self, payment_method_id: str) -> CardToken:
        """The CardToken for a PaymentMethod the browser created with Stripe.js."""
        try:
            method = self.client.v1.payment_methods.retrieve(payment_method_id)
        except stripe.InvalidRequestError as exc:
            raise CardInvalid("This card cannot be used.", field="number") from exc
        except TRANSIENT_ERRORS as exc:
            raise GatewayError(str(exc)) from exc
        card = method.to_dict().get("card") or {}
        return CardToken(
            token=method.id,
            brand=str(card.get("brand", "card")).title(),
            last4=str(card.get("last4", "")),
        )

    def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": to_cents(amount),
                    "currency": currency.lower(),
                    "payment_method": token,
                    "confirm": True,
                    # Cards only, no redirect-based methods: the charge completes server-side.
                    "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                    # Lets the webhook find the payment even if our record of the call was lost.
                    "metadata": {METADATA_KEY: idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            error = exc.error
            intent_id = getattr(getattr(error, "payment_intent", None), "id", "") or ""
            return ChargeResult(
                status="declined",
                reference=intent_id,
                failure_code=(getattr(error, "decline_code", None) or exc.code or "card_declined"),
                failure_message=exc.user_message or DECLINED_MESSAGE,
            )
        except stripe.IdempotencyError as exc:
            raise ValueError("Idempotency key reused with different parameters.") from exc
        except TRANSIENT_ERRORS as exc:
            raise GatewayError(str(exc)) from exc
        except stripe.InvalidRequestError as exc:
            return ChargeResult(
                status="declined",
                failure_code=exc.code or "invalid_payment_method",
                failure_message="This payment method cannot be used. Please enter your card again.",
            )
        return self._charge_result(intent)

    @staticmethod
    def _charge_result(intent) -> ChargeResult:
        if intent.status == "succeeded":
            return ChargeResult(status="captured", reference=intent.id)
        if intent.status == "requires_action":
            return ChargeResult(
                status="declined",
                reference=intent.id,
                failure_code="authentication_required",
                failure_message=AUTHENTICATION_MESSAGE,
            )
        if intent.status == "requires_payment_method":
            error = intent.to_dict().get("last_payment_error") or {}
            return ChargeResult(
                status="declined",
                reference=intent.id,
                failure_code=error.get("decline_code") or error.get("code") or "card_declined",
                failure_message=error.get("message") or DECLINED_MESSAGE,
            )
        # "processing": the outcome arrives by webhook (payment_intent.succeeded / failed);
        # until then the payment stays in flight and retries replay this same answer.
        raise GatewayError(f"PaymentIntent {intent.id} is {intent.status}.")

    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        try:
            refund = self.client.v1.refunds.create(
                params={
                    "payment_intent": charge_reference,
                    "amount": to_cents(amount),
                    "metadata": {METADATA_KEY: idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.IdempotencyError as exc:
            raise ValueError("Idempotency key reused with different parameters.") from exc
        except TRANSIENT_ERRORS as exc:
            raise GatewayError(str(exc)) from exc
        except stripe.InvalidRequestError as exc:
            return RefundResult(status="failed", failure_message=exc.user_message or str(exc))
        return self._refund_result(refund)

    def retrieve_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        try:
            found = self.client.v1.payment_intents.search(
                params={"query": f"metadata['{METADATA_KEY}']:'{_quoted(idempotency_key)}'"}
            )
        except (*TRANSIENT_ERRORS, stripe.InvalidRequestError) as exc:
            # A search Stripe refuses (e.g. unavailable for the account) is no answer either.
            raise GatewayError(str(exc)) from exc
        intents = sorted(found.data, key=lambda intent: intent.to_dict().get("created") or 0)
        if not intents:
            return None
        # One PaymentIntent per key; should a second exist, the one that took money matters.
        succeeded = [intent for intent in intents if intent.status == "succeeded"]
        intent = succeeded[0] if succeeded else intents[-1]
        if intent.status in UNCHARGED_STATES or (
            intent.status == "requires_payment_method"
            and not intent.to_dict().get("last_payment_error")
        ):
            return None
        return self._charge_result(intent)

    def retrieve_refund(
        self, *, charge_reference: str, idempotency_key: str
    ) -> RefundResult | None:
        try:
            refunds = self.client.v1.refunds.list(
                params={"payment_intent": charge_reference, "limit": 100}
            )
            for refund in refunds.auto_paging_iter():
                if (refund.to_dict().get("metadata") or {}).get(METADATA_KEY) == idempotency_key:
                    return self._refund_result(refund)
        except TRANSIENT_ERRORS as exc:
            raise GatewayError(str(exc)) from exc
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return None  # no such PaymentIntent: nothing was refunded against it
            raise GatewayError(str(exc)) from exc
        return None

    @staticmethod
    def _refund_result(refund) -> RefundResult:
        if refund.status in {"succeeded", "pending"}:
            # "pending": accepted and on its way to the card; Stripe does not take it back.
            return RefundResult(status="succeeded", reference=refund.id)
        return RefundResult(
            status="failed",
            reference=refund.id,
            failure_message=f"The refund {refund.status}: {refund.to_dict().get('failure_reason')}",
        )


def _quoted(value: str) -> str:
    """A value inside a single-quoted Search query string."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
