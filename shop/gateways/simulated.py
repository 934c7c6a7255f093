"""A deterministic stand-in for a card processor, driven by Stripe's well-known test cards.

4242 4242 4242 4242 approves, 4000 0000 0000 0002 is declined, 4000 0000 0000 9995 is
declined for insufficient funds and 4000 0000 0000 0119 fails transiently; any other
number that passes the Luhn check approves.

It stands for another company's system, so its ledger of charges and refunds lives outside
our database transaction: a SQLite file of its own (`SIMULATED_GATEWAY_LEDGER_PATH`), opened
with its own `sqlite3` connection for every call. The file is shared by the web and worker
processes of one machine, works with no other service running, and survives restarts, so a
retry in another worker (or after a crash) replays the first result for its idempotency key,
as Stripe does. `retrieve_charge` and `retrieve_refund` look an entry up by its key.

Faults, so retries and reconciliation can be exercised (also across processes, by a chaos run):
- `SIMULATED_GATEWAY_LATENCY_MS`: each call's round trip, half on the way to the processor and
  half on the way back (after a charge or refund is recorded: a worker killed then has charged).
- `SIMULATED_GATEWAY_FAILURE_RATE`: share of calls that fail transiently before reaching it.
- `SIMULATED_GATEWAY_LOST_RESPONSE_RATE`: share of charges and refunds that are recorded and
  then raise GatewayError, as if the reply was lost on the way back.
- An outage, switched on for every process at once in the ledger file (`set_outage`,
  `clear_outage`, or `manage.py simulated_gateway outage`): every charge, refund and lookup
  raises GatewayError until it ends. Tokenizing stays local and keeps working.

Tokens are issued as a processor issues them: `tokenize_card` records each token in the ledger
file, and `card_token` answers only for a token it issued (an API client sends the token its
own card form got, `manage.py simulated_gateway token` stands in for that form).
"""

import contextlib
import datetime
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import cast

from django.conf import settings
from django.utils import timezone

from shop.gateways import (
    CardInvalid,
    CardToken,
    ChargeResult,
    ChargeStatus,
    GatewayError,
    PaymentGateway,
    RefundResult,
    RefundStatus,
)

APPROVE, DECLINE, INSUFFICIENT, ERROR = "ok", "declined", "nofunds", "error"

_TEST_CARDS = {
    "4242424242424242": APPROVE,
    "4000000000000002": DECLINE,
    "4000000000009995": INSUFFICIENT,
    "4000000000000119": ERROR,
}

CENT = Decimal("0.01")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    idempotency_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    reference TEXT NOT NULL,
    charge_reference TEXT NOT NULL,
    amount TEXT NOT NULL,
    currency TEXT NOT NULL,
    failure_code TEXT NOT NULL,
    failure_message TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_reference ON ledger (reference);
CREATE INDEX IF NOT EXISTS ledger_charge_reference ON ledger (charge_reference);
CREATE TABLE IF NOT EXISTS faults (name TEXT PRIMARY KEY, until TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""
OUTAGE = "outage"
# An outage set without an end lasts until it is cleared.
FOREVER = datetime.datetime.max.replace(tzinfo=datetime.UTC)
_COLUMNS = (
    "idempotency_key, kind, fingerprint, status, reference, charge_reference, amount, "
    "currency, failure_code, failure_message, created_at"
)
_ready_paths: set[str] = set()
_ready_lock = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One charge or refund as the processor recorded it (its first and only result)."""

    idempotency_key: str
    kind: str
    fingerprint: str
    status: str
    reference: str
    charge_reference: str
    amount: Decimal
    currency: str
    failure_code: str
    failure_message: str
    created_at: str


@contextlib.contextmanager
def _ledger() -> Iterator[sqlite3.Connection]:
    """A write transaction on the ledger file; BEGIN IMMEDIATE serialises every process."""
    path = Path(settings.SIMULATED_GATEWAY_LEDGER_PATH)
    connection = sqlite3.connect(_ensure_ledger(path), timeout=30, isolation_level=None)
    try:
        connection.row_factory = sqlite3.Row
        # WAL's NORMAL: a commit survives any process' death (what the chaos runs kill)
        # without an fsync per call, which a checkout's card token paid for.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    finally:
        connection.close()


def _ensure_ledger(path: Path) -> str:
    """Create the ledger file and its table once per process and path."""
    key = str(path)
    with _ready_lock:
        if key not in _ready_paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(key, timeout=30)
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
            finally:
                connection.close()
            _ready_paths.add(key)
    return key


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(**(dict(row) | {"amount": Decimal(row["amount"])}))


def _insert(connection: sqlite3.Connection, entry: LedgerEntry) -> None:
    # nosemgrep: bazaar-raw-sql-formatting — the constant column list; values are parameters
    connection.execute(
        f"INSERT INTO ledger ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (
            entry.idempotency_key,
            entry.kind,
            entry.fingerprint,
            entry.status,
            entry.reference,
            entry.charge_reference,
            str(entry.amount),
            entry.currency,
            entry.failure_code,
            entry.failure_message,
            entry.created_at,
        ),
    )


def _fingerprint(*parts: object) -> str:
    return "|".join(str(part) for part in parts)


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
        # The token carries the outcome and nothing of the card number. The processor keeps
        # what it issued, so a client that tokenized the card itself can send only the token.
        card = CardToken(
            token=f"pm_sim_{outcome}_{secrets.token_hex(8)}", brand=brand, last4=digits[-4:]
        )
        with _ledger() as connection:
            connection.execute(
                "INSERT INTO tokens (token, brand, last4, created_at) VALUES (?, ?, ?, ?)",
                (card.token, card.brand, card.last4, _now()),
            )
        return card

    def card_token(self, token: str, /) -> CardToken:
        with _reader() as connection:
            row = connection.execute(
                "SELECT token, brand, last4 FROM tokens WHERE token = ?", (token,)
            ).fetchone()
        if row is None:
            raise CardInvalid("This card cannot be used.", field="payment_token")
        return CardToken(token=row["token"], brand=row["brand"], last4=row["last4"])

    def charge(
        self, *, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        self._network()
        result = self._record_charge(token, amount, currency, idempotency_key)
        self._reply()
        return result

    @staticmethod
    def _record_charge(
        token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        amount = Decimal(amount).quantize(CENT)
        fingerprint = _fingerprint("charge", token, amount, currency)
        with _ledger() as connection:
            first = _find(connection, idempotency_key)
            if first is not None:
                _check_replay(first, fingerprint)
                return _charge_result(first)
            outcome = _outcome(token)
            if outcome == ERROR:
                # Nothing happened at the processor, so nothing is recorded: a retry with the
                # same key is a fresh attempt, as with a real provider.
                raise GatewayError("The payment processor had a processing error.")
            result = _result_for(outcome)
            _insert(
                connection,
                LedgerEntry(
                    idempotency_key=idempotency_key,
                    kind="charge",
                    fingerprint=fingerprint,
                    status=result.status,
                    reference=result.reference,
                    charge_reference="",
                    amount=amount,
                    currency=currency,
                    failure_code=result.failure_code,
                    failure_message=result.failure_message,
                    created_at=_now(),
                ),
            )
        return result

    def refund(
        self, *, charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        self._network()
        result = self._record_refund(charge_reference, amount, currency, idempotency_key)
        self._reply()
        return result

    @staticmethod
    def _record_refund(
        charge_reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        amount = Decimal(amount).quantize(CENT)
        fingerprint = _fingerprint("refund", charge_reference, amount, currency)
        with _ledger() as connection:
            first = _find(connection, idempotency_key)
            if first is not None:
                _check_replay(first, fingerprint)
                return _refund_result_of(first)
            result = _refund_result(connection, charge_reference, amount, currency)
            _insert(
                connection,
                LedgerEntry(
                    idempotency_key=idempotency_key,
                    kind="refund",
                    fingerprint=fingerprint,
                    status=result.status,
                    reference=result.reference,
                    charge_reference=charge_reference,
                    amount=amount,
                    currency=currency,
                    failure_code="" if result.succeeded else "refund_refused",
                    failure_message=result.failure_message,
                    created_at=_now(),
                ),
            )
        return result

    def retrieve_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        self._network()
        entry = _lookup("charge", idempotency_key)
        result = _charge_result(entry) if entry is not None else None
        self._reply(may_lose=False)
        return result

    def retrieve_refund(
        self, *, charge_reference: str, idempotency_key: str
    ) -> RefundResult | None:
        self._network()
        entry = _lookup("refund", idempotency_key)
        if entry is not None and entry.charge_reference != charge_reference:
            entry = None
        result = _refund_result_of(entry) if entry is not None else None
        self._reply(may_lose=False)
        return result

    @staticmethod
    def set_outage(*, until: datetime.datetime | None = None) -> None:
        """Make every charge, refund and lookup fail, in every process, until `until` (or until
        `clear_outage`)."""
        with _ledger() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO faults (name, until) VALUES (?, ?)",
                (OUTAGE, (until or FOREVER).astimezone(datetime.UTC).isoformat()),
            )

    @staticmethod
    def clear_outage() -> None:
        with _ledger() as connection:
            connection.execute("DELETE FROM faults WHERE name = ?", (OUTAGE,))

    @staticmethod
    def outage_until() -> datetime.datetime | None:
        """When the outage ends (FOREVER: when cleared), or None when there is none."""
        with _reader() as connection:
            row = connection.execute(
                "SELECT until FROM faults WHERE name = ?", (OUTAGE,)
            ).fetchone()
        if row is None:
            return None
        until = datetime.datetime.fromisoformat(row["until"])
        return until if until > datetime.datetime.now(datetime.UTC) else None

    @staticmethod
    def ledger_net(*, currency: str | None = None) -> Decimal:
        """Captured charges minus succeeded refunds: what the processor says shoppers paid."""
        entries = [
            entry
            for entry in SimulatedGateway.ledger_charges() + SimulatedGateway.ledger_refunds()
            if currency is None or entry.currency == currency
        ]
        captured = sum(
            (e.amount for e in entries if e.kind == "charge" and e.status == "captured"),
            Decimal("0.00"),
        )
        refunded = sum(
            (e.amount for e in entries if e.kind == "refund" and e.status == "succeeded"),
            Decimal("0.00"),
        )
        return captured - refunded

    @staticmethod
    def ledger_charges(*, idempotency_key: str | None = None) -> list[LedgerEntry]:
        """The charges the processor recorded (declines too), oldest first; for tests and demos."""
        return _entries("charge", "idempotency_key", idempotency_key)

    @staticmethod
    def ledger_refunds(*, charge_reference: str | None = None) -> list[LedgerEntry]:
        """The refunds the processor recorded, oldest first; for tests and demos."""
        return _entries("refund", "charge_reference", charge_reference)

    @staticmethod
    def _network() -> None:
        """The trip to the processor: an outage, latency, now and then a transient failure."""
        if SimulatedGateway.outage_until() is not None:
            raise GatewayError("The payment processor is unavailable (simulated outage).")
        _sleep_half_the_round_trip()
        rate = settings.SIMULATED_GATEWAY_FAILURE_RATE
        if rate and random.random() < rate:
            raise GatewayError("The payment processor could not be reached.")

    @staticmethod
    def _reply(*, may_lose: bool = True) -> None:
        """The trip back: latency, and now and then (a charge's or refund's) reply lost after
        the processor acted."""
        _sleep_half_the_round_trip()
        rate = settings.SIMULATED_GATEWAY_LOST_RESPONSE_RATE
        if may_lose and rate and random.random() < rate:
            raise GatewayError("The payment processor's reply was lost.")


def _sleep_half_the_round_trip() -> None:
    latency = settings.SIMULATED_GATEWAY_LATENCY_MS
    if latency:
        time.sleep(latency / 2000)


@contextlib.contextmanager
def _reader() -> Iterator[sqlite3.Connection]:
    """A read-only look at the ledger file (no write lock)."""
    path = Path(settings.SIMULATED_GATEWAY_LEDGER_PATH)
    connection = sqlite3.connect(_ensure_ledger(path), timeout=30)
    try:
        connection.row_factory = sqlite3.Row
        yield connection
    finally:
        connection.close()


def _lookup(kind: str, idempotency_key: str) -> LedgerEntry | None:
    with _reader() as connection:
        entry = _find(connection, idempotency_key)
    return entry if entry is not None and entry.kind == kind else None


def _charge_result(entry: LedgerEntry) -> ChargeResult:
    return ChargeResult(
        status=cast(ChargeStatus, entry.status),  # as the ChargeResult it was written from
        reference=entry.reference,
        failure_code=entry.failure_code,
        failure_message=entry.failure_message,
    )


def _refund_result_of(entry: LedgerEntry) -> RefundResult:
    return RefundResult(
        status=cast(RefundStatus, entry.status),  # as the RefundResult it was written from
        reference=entry.reference,
        failure_message=entry.failure_message,
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _find(connection: sqlite3.Connection, idempotency_key: str) -> LedgerEntry | None:
    # nosemgrep: bazaar-raw-sql-formatting — the constant column list; values are parameters
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM ledger WHERE idempotency_key = ?",  # noqa: S608
        (idempotency_key,),
    ).fetchone()
    return _entry(row) if row is not None else None


def _check_replay(first: LedgerEntry, fingerprint: str) -> None:
    if first.fingerprint != fingerprint:
        raise ValueError("Idempotency key reused with different parameters.")


def _entries(kind: str, column: str, value: str | None) -> list[LedgerEntry]:
    query = f"SELECT {_COLUMNS} FROM ledger WHERE kind = ?"  # noqa: S608
    params: tuple[str, ...] = (kind,)
    if value is not None:
        query += f" AND {column} = ?"
        params += (value,)
    with _ledger() as connection:
        # nosemgrep: bazaar-raw-sql-formatting — column names from our callers; values as parameters
        rows = connection.execute(query + " ORDER BY rowid", params).fetchall()
    return [_entry(row) for row in rows]


def _refund_result(
    connection: sqlite3.Connection, charge_reference: str, amount: Decimal, currency: str
) -> RefundResult:
    charge = connection.execute(
        f"SELECT {_COLUMNS} FROM ledger "  # noqa: S608
        "WHERE kind = 'charge' AND status = 'captured' AND reference = ?",
        (charge_reference,),
    ).fetchone()
    if charge is None or charge["currency"] != currency:
        return RefundResult(status="failed", failure_message="No such captured charge.")
    refunded = sum(
        (
            Decimal(row["amount"])
            for row in connection.execute(
                "SELECT amount FROM ledger "
                "WHERE kind = 'refund' AND status = 'succeeded' AND charge_reference = ?",
                (charge_reference,),
            )
        ),
        Decimal("0.00"),
    )
    if amount <= 0 or refunded + amount > Decimal(charge["amount"]):
        return RefundResult(
            status="failed", failure_message="The refund is more than is left of the charge."
        )
    return RefundResult(status="succeeded", reference=f"re_sim_{secrets.token_hex(8)}")


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
