import datetime
import io
import logging
import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from shop import gateways
from shop.gateways import simulated

NEXT_YEAR = timezone.now().year + 1


@pytest.fixture(autouse=True)
def ledger_path(settings, tmp_path):
    """Each test gets its own processor ledger (a SQLite file outside our database)."""
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"
    return settings.SIMULATED_GATEWAY_LEDGER_PATH


def tokenize(number, *, month=12, year=NEXT_YEAR, cvc="123"):
    return simulated.SimulatedGateway().tokenize_card(
        number=number, exp_month=month, exp_year=year, cvc=cvc
    )


def charge(token, *, key, amount=Decimal("10.00")):
    return simulated.SimulatedGateway().charge(
        token=token.token, amount=amount, currency="EUR", idempotency_key=key
    )


def test_4242_approves_and_token_hides_the_number():
    token = tokenize("4242 4242 4242 4242")

    result = charge(token, key="unit-approve")

    assert result.status == "captured"
    assert result.reference.startswith("ch_sim_")
    assert (token.brand, token.last4) == ("Visa", "4242")
    assert "4242424242424242" not in token.token
    assert token.token.startswith("pm_sim_")


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        ("4000000000000002", "card_declined", "Your card was declined."),
        ("4000000000009995", "insufficient_funds", "Your card has insufficient funds."),
    ],
)
def test_decline_cards_are_declined_with_the_reason(number, code, message):
    result = charge(tokenize(number), key=f"unit-decline-{number}")

    assert result.status == "declined"
    assert result.failure_code == code
    assert result.failure_message == message


def test_0119_fails_transiently_every_time():
    token = tokenize("4000000000000119")

    for _ in range(3):
        with pytest.raises(gateways.GatewayError):
            charge(token, key="unit-transient")


@pytest.mark.parametrize(
    ("number", "brand", "cvc"),
    [
        ("5555555555554444", "Mastercard", "123"),
        ("378282246310005", "Amex", "1234"),
        ("4111111111111111", "Visa", "123"),
    ],
)
def test_other_valid_numbers_approve_with_their_brand(number, brand, cvc):
    token = tokenize(number, cvc=cvc)

    assert token.brand == brand
    assert token.last4 == number[-4:]
    assert charge(token, key=f"unit-other-{number}").status == "captured"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"number": "4242424242424241"}, "number"),
        ({"number": "4242-abcd"}, "number"),
        ({"number": "42"}, "number"),
        ({"number": "4242424242424242", "month": 13}, "expiry"),
        ({"number": "4242424242424242", "year": 2020}, "expiry"),
        ({"number": "4242424242424242", "cvc": "12"}, "cvc"),
        ({"number": "4242424242424242", "cvc": "abc"}, "cvc"),
    ],
)
def test_rejects_invalid_cards_with_a_clear_message(kwargs, field):
    with pytest.raises(gateways.CardInvalid) as excinfo:
        tokenize(**kwargs)

    assert excinfo.value.field == field
    assert excinfo.value.message


def test_expiry_this_month_is_still_valid():
    today = timezone.now().date()
    assert tokenize("4242424242424242", month=today.month, year=today.year % 100).last4 == "4242"


def test_last_month_is_expired():
    first = timezone.now().date().replace(day=1)
    last_month = first - datetime.timedelta(days=1)
    with pytest.raises(gateways.CardInvalid, match="expired"):
        tokenize("4242424242424242", month=last_month.month, year=last_month.year)


def test_replays_the_first_result_for_a_repeated_idempotency_key():
    token = tokenize("4242424242424242")

    first = charge(token, key="unit-replay")
    second = charge(token, key="unit-replay")
    other = charge(token, key="unit-replay-other")

    assert second == first
    assert other.reference != first.reference


def test_rejects_a_reused_key_with_different_parameters():
    token = tokenize("4242424242424242")
    charge(token, key="unit-conflict")

    with pytest.raises(ValueError, match="Idempotency key"):
        charge(token, key="unit-conflict", amount=Decimal("99.00"))


def test_ledger_records_each_charge_once_and_not_transient_failures():
    approve, decline = tokenize("4242424242424242"), tokenize("4000000000000002")
    for _ in range(3):
        charge(approve, key="unit-count")
    charge(decline, key="unit-declined")
    with pytest.raises(gateways.GatewayError):
        charge(tokenize("4000000000000119"), key="unit-transient-count")

    entries = simulated.SimulatedGateway.ledger_charges()

    assert [(e.idempotency_key, e.status) for e in entries] == [
        ("unit-count", "captured"),
        ("unit-declined", "declined"),
    ]
    assert simulated.SimulatedGateway.ledger_charges(idempotency_key="unit-transient-count") == []


def test_the_ledger_outlives_the_process_and_is_shared_between_processes(ledger_path):
    """A retry in another worker process replays the first result for the key."""
    token = tokenize("4242424242424242")
    first = charge(token, key="unit-cross-process")
    script = (
        "import django; django.setup(); "
        "from decimal import Decimal; "
        "from django.conf import settings; "
        "from shop.gateways import simulated; "
        f"settings.SIMULATED_GATEWAY_LEDGER_PATH = {str(ledger_path)!r}; "
        f"result = simulated.SimulatedGateway().charge(token={token.token!r}, "
        "amount=Decimal('10.00'), currency='EUR', idempotency_key='unit-cross-process'); "
        "print(result.reference)"
    )
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"}
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()

    assert output == first.reference
    assert len(simulated.SimulatedGateway.ledger_charges()) == 1


def test_failure_rate_makes_calls_fail_transiently_without_recording(settings):
    token = tokenize("4242424242424242")
    settings.SIMULATED_GATEWAY_FAILURE_RATE = 1.0

    with pytest.raises(gateways.GatewayError):
        charge(token, key="unit-rate")
    assert simulated.SimulatedGateway.ledger_charges() == []

    settings.SIMULATED_GATEWAY_FAILURE_RATE = 0.0
    assert charge(token, key="unit-rate").captured


def refund(reference, *, key, amount):
    return simulated.SimulatedGateway().refund(
        charge_reference=reference, amount=Decimal(amount), currency="EUR", idempotency_key=key
    )


def test_refunds_replay_per_key_and_never_exceed_the_charge():
    captured = charge(tokenize("4242424242424242"), key="unit-refund-charge", amount="10.00")

    first = refund(captured.reference, key="unit-refund-1", amount="6.00")
    replay = refund(captured.reference, key="unit-refund-1", amount="6.00")
    too_much = refund(captured.reference, key="unit-refund-2", amount="4.01")
    rest = refund(captured.reference, key="unit-refund-3", amount="4.00")

    assert first.succeeded
    assert first.reference.startswith("re_sim_")
    assert replay == first
    assert (too_much.status, too_much.failure_message) == (
        "failed",
        "The refund is more than is left of the charge.",
    )
    assert rest.succeeded
    assert [
        (e.idempotency_key, e.status, e.amount)
        for e in simulated.SimulatedGateway.ledger_refunds(charge_reference=captured.reference)
    ] == [
        ("unit-refund-1", "succeeded", Decimal("6.00")),
        ("unit-refund-2", "failed", Decimal("4.01")),
        ("unit-refund-3", "succeeded", Decimal("4.00")),
    ]


def test_refund_of_an_unknown_or_declined_charge_fails():
    declined = charge(tokenize("4000000000000002"), key="unit-refund-declined")

    assert refund(declined.reference, key="unit-r-declined", amount="1.00").status == "failed"
    assert refund("ch_sim_nope", key="unit-r-unknown", amount="1.00").failure_message == (
        "No such captured charge."
    )


def test_sleeps_for_the_configured_latency(settings, monkeypatch):
    settings.SIMULATED_GATEWAY_LATENCY_MS = 250
    slept = []
    monkeypatch.setattr(simulated.time, "sleep", slept.append)

    charge(tokenize("4242424242424242"), key="unit-latency")

    assert slept == [0.125, 0.125]  # there, then back


def test_get_gateway_builds_the_configured_class(settings):
    settings.PAYMENT_GATEWAY = "shop.gateways.simulated.SimulatedGateway"

    assert isinstance(gateways.get_gateway(), simulated.SimulatedGateway)


def test_never_logs_the_card_number(caplog):
    caplog.set_level(logging.DEBUG)
    token = tokenize("4000000000000119", cvc="987")
    with pytest.raises(gateways.GatewayError):
        charge(token, key="unit-logs")

    assert "4000000000000119" not in caplog.text
    # As a whole word: random token characters may contain any three digits.
    assert not re.search(r"\b987\b", caplog.text)


def test_retrieve_charge_finds_what_the_key_charged_and_never_charges():
    gateway = simulated.SimulatedGateway()
    captured = charge(tokenize("4242424242424242"), key="unit-find-captured")
    declined = charge(tokenize("4000000000000002"), key="unit-find-declined")

    assert gateway.retrieve_charge(idempotency_key="unit-find-captured") == captured
    assert gateway.retrieve_charge(idempotency_key="unit-find-declined") == declined
    assert gateway.retrieve_charge(idempotency_key="unit-find-nothing") is None
    assert len(simulated.SimulatedGateway.ledger_charges()) == 2


def test_retrieve_refund_finds_the_refund_of_that_key_against_that_charge():
    gateway = simulated.SimulatedGateway()
    captured = charge(tokenize("4242424242424242"), key="unit-find-refund-charge")
    made = refund(captured.reference, key="unit-find-refund", amount="4.00")

    found = gateway.retrieve_refund(
        charge_reference=captured.reference, idempotency_key="unit-find-refund"
    )
    elsewhere = gateway.retrieve_refund(
        charge_reference="ch_sim_other", idempotency_key="unit-find-refund"
    )
    missing = gateway.retrieve_refund(
        charge_reference=captured.reference, idempotency_key="unit-find-refund-none"
    )

    assert found == made
    assert (elsewhere, missing) == (None, None)
    # A charge's key is not a refund's, and the other way round.
    assert gateway.retrieve_charge(idempotency_key="unit-find-refund") is None


def test_a_lost_response_is_recorded_then_raised_and_found_by_its_key(settings):
    settings.SIMULATED_GATEWAY_LOST_RESPONSE_RATE = 1.0
    gateway = simulated.SimulatedGateway()
    token = tokenize("4242424242424242")

    with pytest.raises(gateways.GatewayError, match="reply was lost"):
        charge(token, key="unit-lost-charge")
    [entry] = simulated.SimulatedGateway.ledger_charges()
    found = gateway.retrieve_charge(idempotency_key="unit-lost-charge")  # lookups are not lost
    with pytest.raises(gateways.GatewayError, match="reply was lost"):
        refund(entry.reference, key="unit-lost-refund", amount="10.00")
    [refunded] = simulated.SimulatedGateway.ledger_refunds()

    assert (found.status, found.reference) == ("captured", entry.reference)
    assert refunded.amount == Decimal("10.00")
    settings.SIMULATED_GATEWAY_LOST_RESPONSE_RATE = 0.0
    assert charge(token, key="unit-lost-charge") == found  # a retry replays, never charges again
    assert len(simulated.SimulatedGateway.ledger_charges()) == 1


def test_an_outage_fails_every_call_until_it_ends_or_is_cleared():
    gateway = simulated.SimulatedGateway()
    token = tokenize("4242424242424242")
    captured = charge(token, key="unit-outage-before")

    simulated.SimulatedGateway.set_outage()
    calls = [
        lambda: charge(token, key="unit-outage-during"),
        lambda: refund(captured.reference, key="unit-outage-refund", amount="1.00"),
        lambda: gateway.retrieve_charge(idempotency_key="unit-outage-before"),
        lambda: gateway.retrieve_refund(
            charge_reference=captured.reference, idempotency_key="unit-outage-refund"
        ),
    ]
    for call in calls:
        with pytest.raises(gateways.GatewayError, match="outage"):
            call()
    assert simulated.SimulatedGateway.outage_until() == simulated.FOREVER
    assert tokenize("4242424242424242").brand == "Visa"  # tokenizing stays local

    simulated.SimulatedGateway.clear_outage()
    assert simulated.SimulatedGateway.outage_until() is None
    assert gateway.retrieve_charge(idempotency_key="unit-outage-during") is None
    assert len(simulated.SimulatedGateway.ledger_charges()) == 1

    past = timezone.now() - datetime.timedelta(seconds=1)
    simulated.SimulatedGateway.set_outage(until=past)  # already over
    assert charge(token, key="unit-outage-after").captured


def test_the_outage_switch_reaches_other_processes_through_the_command(ledger_path):
    """A chaos run switches the outage with the command; workers see it at their next call."""
    env = {
        **{name: os.environ[name] for name in ("DATABASE_URL", "REDIS_URL") if name in os.environ},
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PATH": "/usr/bin:/bin",
        "SIMULATED_GATEWAY_LEDGER_PATH": str(ledger_path),
    }

    def command(*args):
        return subprocess.run(
            [
                sys.executable,
                str(django_settings.BASE_DIR / "manage.py"),
                "simulated_gateway",
                *args,
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout

    before = timezone.now()
    on = command("outage", "--seconds", "60")
    after = timezone.now()
    until = simulated.SimulatedGateway.outage_until()
    with pytest.raises(gateways.GatewayError):
        charge(tokenize("4242424242424242"), key="unit-outage-command")
    off = command("outage", "--clear")

    assert "outage until " in on
    # Sixty seconds from when the command ran, however long the machine took to start it.
    assert (
        before + datetime.timedelta(seconds=60) <= until <= after + datetime.timedelta(seconds=60)
    )
    assert "no outage; 0 capture(s), 0 refund(s), net 0.00." in off
    assert simulated.SimulatedGateway.outage_until() is None
    assert charge(tokenize("4242424242424242"), key="unit-outage-command").captured


def test_the_status_command_tells_an_operator_the_outage_and_the_ledger(ledger_path):
    """What `manage.py simulated_gateway` prints: the outage's end, then what was captured
    and refunded and the net; a zero or negative --seconds is refused, changing nothing."""
    approved = charge(tokenize("4242424242424242"), key="unit-status-1", amount=Decimal("30.00"))
    charge(tokenize("4000000000000002"), key="unit-status-declined")
    refund(approved.reference, key="unit-status-r1", amount="10.00")

    def command(*args):
        out = io.StringIO()
        call_command("simulated_gateway", *args, stdout=out)
        return out.getvalue().strip()

    status = command("status")
    until_cleared = command("outage")
    with pytest.raises(CommandError, match="--seconds must be more than 0"):
        command("outage", "--seconds", "0")
    still_on = command("status")
    cleared = command("outage", "--clear")

    totals = "1 capture(s), 1 refund(s), net 20.00."
    assert status == f"Simulated processor ({ledger_path}): no outage; {totals}"
    assert until_cleared == f"Simulated processor ({ledger_path}): outage until cleared; {totals}"
    assert "outage until cleared" in still_on
    assert "no outage" in cleared


def test_ledger_net_is_captures_minus_refunds():
    approved = charge(tokenize("4242424242424242"), key="unit-net-1", amount=Decimal("30.00"))
    charge(tokenize("4242424242424242"), key="unit-net-2", amount=Decimal("12.50"))
    charge(tokenize("4000000000000002"), key="unit-net-declined", amount=Decimal("99.00"))
    refund(approved.reference, key="unit-net-r1", amount="10.00")
    refund(approved.reference, key="unit-net-r2", amount="50.00")  # refused: more than is left

    assert simulated.SimulatedGateway.ledger_net() == Decimal("32.50")
    assert simulated.SimulatedGateway.ledger_net(currency="USD") == Decimal("0.00")
