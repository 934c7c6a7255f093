"""The Stripe adapter against a local stand-in of the two API endpoints it uses."""

import json
import re
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from shop import gateways
from shop.gateways import stripe as stripe_gateway

DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
}


SEARCH_BY_KEY = re.compile(r"^metadata\['bazaar_idempotency_key'\]:'(?P<key>[^']*)'$")


class StandIn(BaseHTTPRequestHandler):
    """Mimics /v1/payment_intents (create, search), /v1/refunds (create, list) and
    /v1/payment_methods/<id> closely enough, replaying the first response for a repeated
    Idempotency-Key as Stripe does. `server.lose_replies` makes the next creates happen and
    then answer 500, as if the reply was lost; `server.down` makes every request answer 500."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, None, {}))
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if self.server.down:
            self._send(500, _error("api_error", "Something went wrong on Stripe's end.", None))
        elif url.path == "/v1/payment_methods/pm_card_visa":
            card = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
            self._send(200, {"id": "pm_card_visa", "object": "payment_method", "card": card})
        elif url.path == "/v1/payment_intents/search":
            match = SEARCH_BY_KEY.match(query.get("query", ""))
            if match is None:
                self._send(400, _error("invalid_request_error", "Bad query", "parameter_invalid"))
                return
            found = [
                intent
                for intent in self.server.objects.values()
                if intent["metadata"].get("bazaar_idempotency_key") == match["key"]
            ]
            self._send(200, _listing("search_result", url.path, found))
        elif url.path == "/v1/refunds" and query.get("payment_intent") in self.server.objects:
            intent = query["payment_intent"]
            found = [r for r in self.server.refund_objects if r["payment_intent"] == intent]
            self._send(200, _listing("list", url.path, found))
        else:
            self._send(404, _error("invalid_request_error", "No such object", "resource_missing"))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = {key: values[0] for key, values in parse_qs(body).items()}
        key = self.headers.get("Idempotency-Key")
        self.server.requests.append(("POST", self.path, key, form))
        self.server.auth.append(self.headers.get("Authorization"))
        if self.server.down:
            self._send(500, _error("api_error", "Something went wrong on Stripe's end.", None))
            return
        if key in self.server.replays:
            self._send(*self.server.replays[key])
            return
        status, payload = self._answer(form)
        if status < 500:
            self.server.replays[key] = (status, payload)
        if self.server.lose_replies:
            self.server.lose_replies -= 1
            status, payload = 500, _error("api_error", "The reply was lost.", None)
        self._send(status, payload)

    def _answer(self, form: dict) -> tuple[int, dict]:
        server = self.server
        if self.path == "/v1/payment_intents":
            method = form["payment_method"]
            intent_id = f"pi_{len(server.objects) + 1}"
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "created": len(server.objects) + 1,
                "metadata": _metadata(form),
            }
            if method == "pm_card_visa":
                server.intents[intent_id] = int(form["amount"])
                server.objects[intent_id] = intent | {"status": "succeeded"}
                return 200, server.objects[intent_id]
            if method in DECLINES:
                code, decline_code, message = DECLINES[method]
                error = _error("card_error", message, code)
                error["error"]["decline_code"] = decline_code
                server.objects[intent_id] = intent | {
                    "status": "requires_payment_method",
                    "last_payment_error": {
                        "code": code,
                        "decline_code": decline_code,
                        "message": message,
                    },
                }
                error["error"]["payment_intent"] = {
                    "id": intent_id,
                    "object": "payment_intent",
                    "status": "requires_payment_method",
                }
                return 402, error
            if method == "pm_card_authenticationRequired":
                server.objects[intent_id] = intent | {"status": "requires_action"}
                return 200, server.objects[intent_id]
            if method == "pm_rate_limited":
                return 429, _error("invalid_request_error", "Too many requests", "rate_limit")
            return 500, _error("api_error", "Something went wrong on Stripe's end.", None)
        if self.path == "/v1/refunds":
            charged = server.intents.get(form["payment_intent"])
            refunded = server.refunded.get(form["payment_intent"], 0)
            if charged is None or refunded + int(form["amount"]) > charged:
                return 400, _error(
                    "invalid_request_error",
                    "Refund amount is greater than unrefunded amount on charge.",
                    "amount_too_large",
                )
            server.refunded[form["payment_intent"]] = refunded + int(form["amount"])
            refund = {
                "id": f"re_{len(server.refund_objects) + 1}",
                "object": "refund",
                "status": "succeeded",
                "amount": int(form["amount"]),
                "payment_intent": form["payment_intent"],
                "metadata": _metadata(form),
            }
            server.refund_objects.append(refund)
            return 200, refund
        return 404, _error("invalid_request_error", "Unrecognized request URL", None)

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Stripe-Should-Retry", "false")
        self.end_headers()
        self.wfile.write(body)


def _error(kind: str, message: str, code: str | None) -> dict:
    return {"error": {"type": kind, "message": message, "code": code}}


def _metadata(form: dict) -> dict:
    return {
        key[len("metadata[") : -1]: value
        for key, value in form.items()
        if key.startswith("metadata[")
    }


def _listing(kind: str, url: str, data: list) -> dict:
    return {"object": kind, "url": url, "has_more": False, "data": data}


@pytest.fixture
def stand_in(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.requests, server.auth, server.replays, server.intents, server.refunded = (
        [],
        [],
        {},
        {},
        {},
    )
    server.objects, server.refund_objects, server.lose_replies, server.down = {}, [], 0, False
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.STRIPE_SECRET_KEY = "sk_test_bazaar"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


def charge(token, key, amount="58.00"):
    return stripe_gateway.StripeGateway().charge(
        token=token, amount=Decimal(amount), currency="EUR", idempotency_key=key
    )


def test_charge_creates_a_confirmed_payment_intent_with_our_idempotency_key(stand_in):
    result = charge("pm_card_visa", "payment-abc")

    assert result == gateways.ChargeResult(status="captured", reference="pi_1")
    [(method, path, key, form)] = stand_in.requests
    assert (method, path, key) == ("POST", "/v1/payment_intents", "payment-abc")
    assert form["amount"] == "5800"
    assert form["currency"] == "eur"
    assert form["payment_method"] == "pm_card_visa"
    assert form["confirm"] == "true"
    assert form["metadata[bazaar_idempotency_key]"] == "payment-abc"
    assert stand_in.auth == ["Bearer sk_test_bazaar"]


def test_a_repeated_key_is_replayed_not_charged_again(stand_in):
    first = charge("pm_card_visa", "payment-replay")
    second = charge("pm_card_visa", "payment-replay")

    assert first == second
    assert list(stand_in.intents) == ["pi_1"]
    assert [request[2] for request in stand_in.requests] == ["payment-replay"] * 2


@pytest.mark.parametrize(
    ("token", "code", "message"),
    [
        ("pm_card_chargeDeclined", "generic_decline", "Your card was declined."),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
    ],
)
def test_card_errors_are_final_declines_with_the_message(stand_in, token, code, message):
    result = charge(token, f"payment-{token}")

    assert result.status == "declined"
    assert (result.failure_code, result.failure_message) == (code, message)
    assert result.reference == "pi_1"


def test_authentication_required_is_a_decline_we_can_explain(stand_in):
    result = charge("pm_card_authenticationRequired", "payment-3ds")

    assert (result.status, result.failure_code) == ("declined", "authentication_required")
    assert "another card" in result.failure_message


@pytest.mark.parametrize("token", ["pm_server_error", "pm_rate_limited"])
def test_server_errors_and_rate_limits_are_transient(stand_in, token):
    with pytest.raises(gateways.GatewayError):
        charge(token, f"payment-{token}")


def test_an_unreachable_api_is_transient(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_bazaar"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard port: nothing listens

    with pytest.raises(gateways.GatewayError):
        charge("pm_card_visa", "payment-offline")


def test_refund_sends_the_intent_amount_and_key_and_replays(stand_in):
    charge("pm_card_visa", "payment-for-refund")
    gateway = stripe_gateway.StripeGateway()

    first = gateway.refund(
        charge_reference="pi_1", amount=Decimal("49.00"), currency="EUR", idempotency_key="r-1"
    )
    again = gateway.refund(
        charge_reference="pi_1", amount=Decimal("49.00"), currency="EUR", idempotency_key="r-1"
    )
    too_much = gateway.refund(
        charge_reference="pi_1", amount=Decimal("10.00"), currency="EUR", idempotency_key="r-2"
    )

    assert first == again
    assert first.succeeded
    assert stand_in.refunded == {"pi_1": 4900}
    assert (too_much.status, too_much.failure_message) == (
        "failed",
        "Refund amount is greater than unrefunded amount on charge.",
    )
    posted = [(r[1], r[2], r[3].get("amount")) for r in stand_in.requests[1:]]
    assert posted == [("/v1/refunds", "r-1", "4900")] * 2 + [("/v1/refunds", "r-2", "1000")]


def test_card_details_never_reach_the_server_with_stripe(stand_in):
    gateway = stripe_gateway.StripeGateway()

    with pytest.raises(gateways.CardInvalid):
        gateway.tokenize_card(number="4242424242424242", exp_month=12, exp_year=2034, cvc="123")
    token = gateway.card_token("pm_card_visa")

    assert token == gateways.CardToken(token="pm_card_visa", brand="Visa", last4="4242")
    assert stand_in.requests == [("GET", "/v1/payment_methods/pm_card_visa", None, {})]


def test_selected_by_settings(settings):
    settings.PAYMENT_GATEWAY = "shop.gateways.stripe.StripeGateway"
    settings.STRIPE_SECRET_KEY = "sk_test_bazaar"

    assert isinstance(gateways.get_gateway(), stripe_gateway.StripeGateway)


def test_retrieve_charge_searches_by_the_key_in_the_metadata(stand_in):
    gateway = stripe_gateway.StripeGateway()
    captured = charge("pm_card_visa", "payment-find-me")
    declined = charge("pm_card_chargeDeclined", "payment-find-declined")

    found = gateway.retrieve_charge(idempotency_key="payment-find-me")
    found_declined = gateway.retrieve_charge(idempotency_key="payment-find-declined")
    missing = gateway.retrieve_charge(idempotency_key="payment-never-sent")

    assert found == captured
    assert (found_declined.status, found_declined.failure_code) == ("declined", "generic_decline")
    assert found_declined.reference == declined.reference
    assert missing is None
    searches = [r for r in stand_in.requests if r[0] == "GET"]
    assert len(searches) == 3
    assert searches[0][1].startswith("/v1/payment_intents/search?")
    assert "payment-find-me" in searches[0][1]
    assert list(stand_in.intents) == ["pi_1"]  # looking never charges


def test_a_charge_whose_reply_was_lost_is_found_by_its_key(stand_in):
    gateway = stripe_gateway.StripeGateway()
    stand_in.lose_replies = 1

    with pytest.raises(gateways.GatewayError):
        charge("pm_card_visa", "payment-lost-reply")
    found = gateway.retrieve_charge(idempotency_key="payment-lost-reply")

    assert found == gateways.ChargeResult(status="captured", reference="pi_1")
    assert stand_in.intents == {"pi_1": 5800}


def test_lookups_while_stripe_is_down_are_transient_not_nothing(stand_in):
    gateway = stripe_gateway.StripeGateway()
    captured = charge("pm_card_visa", "payment-before-outage")
    stand_in.down = True

    with pytest.raises(gateways.GatewayError):
        gateway.retrieve_charge(idempotency_key="payment-before-outage")
    with pytest.raises(gateways.GatewayError):
        gateway.retrieve_refund(charge_reference=captured.reference, idempotency_key="r-down")


def test_an_intent_that_never_took_money_is_nothing_and_one_in_processing_is_unknown(stand_in):
    gateway = stripe_gateway.StripeGateway()
    stand_in.objects["pi_9"] = {
        "id": "pi_9",
        "object": "payment_intent",
        "status": "canceled",
        "metadata": {"bazaar_idempotency_key": "payment-canceled"},
    }
    stand_in.objects["pi_10"] = {
        "id": "pi_10",
        "object": "payment_intent",
        "status": "processing",
        "metadata": {"bazaar_idempotency_key": "payment-processing"},
    }

    assert gateway.retrieve_charge(idempotency_key="payment-canceled") is None
    with pytest.raises(gateways.GatewayError):
        gateway.retrieve_charge(idempotency_key="payment-processing")


def test_retrieve_refund_lists_the_intents_refunds_and_matches_the_key(stand_in):
    gateway = stripe_gateway.StripeGateway()
    charge("pm_card_visa", "payment-refund-lookup")
    stand_in.lose_replies = 1
    with pytest.raises(gateways.GatewayError):
        gateway.refund(
            charge_reference="pi_1",
            amount=Decimal("8.00"),
            currency="EUR",
            idempotency_key="r-lost",
        )

    found = gateway.retrieve_refund(charge_reference="pi_1", idempotency_key="r-lost")
    other_key = gateway.retrieve_refund(charge_reference="pi_1", idempotency_key="r-other")
    no_intent = gateway.retrieve_refund(charge_reference="pi_404", idempotency_key="r-lost")

    assert found == gateways.RefundResult(status="succeeded", reference="re_1")
    assert (other_key, no_intent) == (None, None)
    assert stand_in.refunded == {"pi_1": 800}
    listed = [r[1] for r in stand_in.requests if r[0] == "GET"]
    assert listed[0].startswith("/v1/refunds?")
    assert "payment_intent=pi_1" in listed[0]
