"""A deterministic stand-in for a card processor, driven by Stripe's well-known test cards.

4242 4242 4242 4242 approves, 4000 0000 0000 0002 is declined, 4000 0000 0000 9995 is
declined for insufficient funds and 4000 0000 0000 0119 fails transiently; any other
number that passes the Luhn check approves.
"""

import datetime
import secrets
import threading
import time
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from shop.gateways import CardInvalid, CardToken, ChargeResult, GatewayError, PaymentGateway

APPROVE, DECLINE, INSUFFICIENT, ERROR = "ok", "declined", "nofunds", "error"

_TEST_CARDS = {
    "4242424242424242": APPROVE,
    "4000000000000002": DECLINE,
    "4000000000009995": INSUFFICIENT,
    "4000000000000119": ERROR,
}

# The idempotency ledger: key -> (request fingerprint, first result). It lives in this
# process only, which is enough for one web process and the tests; the issue that moves
# captures to the `critical` queue moves it out of process (Redis or the database), since
# a retry may then run in another worker.
_ledger: dict[str, tuple[tuple[str, Decimal, str], ChargeResult]] = {}
_ledger_lock = threading.Lock()


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"34", "37"}:
        return "Amex"
    if 51 <= int(number[:2]) <= 55 or 2221 <= int(number[:4]) <= 2720:
        return "Mastercard"
    return "Card"


class SimulatedGateway(PaymentGateway):
    def tokenize_card(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> CardToken:
        digits = "".join(ch for ch in str(number) if ch not in " -")
        if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
            raise CardInvalid("Enter a valid card number.", field="number")
        if exp_year < 100:
            exp_year += 2000
        if not 1 <= exp_month <= 12:
            raise CardInvalid("Enter the expiry date as MM/YY.", field="expiry")
        today = timezone.now().date()
        if (exp_year, exp_month) < (today.year, today.month) or exp_year > today.year + 20:
            raise CardInvalid("This card has expired or the expiry date is wrong.", field="expiry")
        brand = card_brand(digits)
        cvc_length = 4 if brand == "Amex" else 3
        if not (str(cvc).isdigit() and len(str(cvc)) == cvc_length):
            raise CardInvalid(f"Enter the {cvc_length}-digit security code (CVC).", field="cvc")
        outcome = _TEST_CARDS.get(digits, APPROVE)
        # The token carries the outcome and nothing of the card number.
        return CardToken(
            token=f"pm_sim_{outcome}_{secrets.token_hex(8)}", brand=brand, last4=digits[-4:]
        )

    def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        latency = settings.SIMULATED_GATEWAY_LATENCY_MS
        if latency:
            time.sleep(latency / 1000)
        fingerprint = (token, Decimal(amount), currency)
        with _ledger_lock:
            if idempotency_key in _ledger:
                first_fingerprint, result = _ledger[idempotency_key]
                if first_fingerprint != fingerprint:
                    raise ValueError("Idempotency key reused with different charge parameters.")
                return result
            outcome = _outcome(token)
            if outcome == ERROR:
                # Nothing happened at the processor, so nothing is recorded: a retry with the
                # same key is a fresh attempt, as with a real provider.
                raise GatewayError("The payment processor had a processing error.")
            result = _result_for(outcome)
            _ledger[idempotency_key] = (fingerprint, result)
            return result


def _outcome(token: str) -> str:
    parts = token.split("_")
    if len(parts) != 4 or parts[:2] != ["pm", "sim"]:
        return "invalid"
    return parts[2]


def _result_for(outcome: str) -> ChargeResult:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    if outcome == APPROVE:
        return ChargeResult(status="captured", reference=f"ch_sim_{stamp}_{secrets.token_hex(6)}")
    if outcome == DECLINE:
        return ChargeResult(
            status="declined",
            reference=f"ch_sim_{stamp}_{secrets.token_hex(6)}",
            failure_code="card_declined",
            failure_message="Your card was declined.",
        )
    if outcome == INSUFFICIENT:
        return ChargeResult(
            status="declined",
            reference=f"ch_sim_{stamp}_{secrets.token_hex(6)}",
            failure_code="insufficient_funds",
            failure_message="Your card has insufficient funds.",
        )
    return ChargeResult(
        status="declined",
        failure_code="invalid_payment_method",
        failure_message="This payment method cannot be used. Please enter your card again.",
    )
