"""What must hold after the faults, checked with SQL (the ORM), the processor's ledger,
the emails written and the process table. Each check returns one table row."""

import datetime
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.db.models import Q, Sum
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_q.models import OrmQ

from project.background.models import SentEmail, TaskRecord
from project.events.models import AggregateSequence, HandlerReceipt, OutboxEvent
from shop.gateways.simulated import SimulatedGateway
from shop.models import (
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    Refund,
    RefundStatus,
    StockAdjustment,
    StockReason,
)

ZERO = Decimal("0.00")
PAID = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED)
IN_FLIGHT = (PaymentStatus.PENDING, PaymentStatus.PROCESSING)
REFUND_IN_FLIGHT = (RefundStatus.PENDING, RefundStatus.PROCESSING)
SUBJECT_RE = re.compile(r"^Subject: (.*(?:\r?\n[ \t].*)*)", re.MULTILINE)
CONFIRMATION_RE = re.compile(r"^Your order BZ-(\d+) is confirmed$")
VENDOR_NOTICE_RE = re.compile(r"^New order BZ-(\d+) for (.+)$")
OVERDUE = datetime.timedelta(seconds=10)
# Twice the sweep's one-minute interval: a scheduler round every 30 s may miss one beat.
SWEEP_GAP = datetime.timedelta(seconds=120)
ORDER_AGGREGATE = "shop.order"
# shop.services.refunds records a refund made at the provider's dashboard with this reason.
EXTERNAL_REFUND_REASON = "Refunded at the payment provider"


@dataclass
class Row:
    name: str
    value: str
    ok: bool
    details: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"invariant": self.name, "value": self.value, "ok": self.ok, "details": self.details}


def backlog() -> dict[str, int]:
    """Work still to do; the run has settled when all of it is zero. Tasks scheduled for
    later (a lookup a payment chain no longer needs, due in minutes) are not work to wait for."""
    now = timezone.now()
    return {
        "payments in flight": Payment.objects.filter(status__in=IN_FLIGHT).count(),
        "refunds in flight": Refund.objects.filter(status__in=REFUND_IN_FLIGHT).count(),
        "tasks due or running": TaskRecord.objects.filter(
            Q(status=TaskResultStatus.RUNNING)
            | Q(status=TaskResultStatus.READY, next_attempt_at__lte=now)
        ).count(),
        "events pending": OutboxEvent.objects.pending().count(),
        "broker rows due": OrmQ.objects.filter(lock__lte=now).count(),
    }


@dataclass
class Ledger:
    """The simulated processor's ledger, keyed the way our tables are."""

    captured: dict[str, object]  # payment idempotency key -> captured charge entry
    charges: dict[str, object]  # every charge entry (declines too), by key
    refunds: dict[str, object]  # refund idempotency key -> refund entry (refused ones too)
    refunded: dict[str, Decimal]  # charge reference -> succeeded refunds

    @classmethod
    def read(cls) -> "Ledger":
        charges = {entry.idempotency_key: entry for entry in SimulatedGateway.ledger_charges()}
        refunds = {entry.idempotency_key: entry for entry in SimulatedGateway.ledger_refunds()}
        refunded: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for entry in refunds.values():
            if entry.status == "succeeded":
                refunded[entry.charge_reference] += entry.amount
        captured = {k: e for k, e in charges.items() if e.status == "captured"}
        return cls(captured=captured, charges=charges, refunds=refunds, refunded=refunded)

    def net_by_order(self, order_of_key: dict[str, int]) -> dict[int, Decimal]:
        net: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for key, entry in self.captured.items():
            order = order_of_key.get(key, -1)
            net[order] += entry.amount - self.refunded.get(entry.reference, ZERO)
        return net


class Checker:
    def __init__(self, *, initial_stock: dict[int, int], stock_boundary: int, mail_dir: Path):
        self.initial_stock = initial_stock
        self.stock_boundary = stock_boundary
        self.mail_dir = mail_dir
        self.ledger = Ledger.read()
        self.payments = list(Payment.objects.all())
        self.order_of_key = {p.idempotency_key: p.order_id for p in self.payments}
        self.by_order: dict[int, list[Payment]] = defaultdict(list)
        for payment in self.payments:
            self.by_order[payment.order_id].append(payment)
        self.orders = {o.pk: o for o in Order.objects.select_related("customer")}
        self.ledger_net = self.ledger.net_by_order(self.order_of_key)
        self.subjects = self._subjects()
        self.unknown_outcome = self._unknown_outcome_subjects()

    # --- money --------------------------------------------------------------------------
    def payments_final(self) -> Row:
        stuck = [p for p in self.payments if p.status in IN_FLIGHT]
        refunds = list(
            Refund.objects.filter(status__in=REFUND_IN_FLIGHT).values_list("pk", flat=True)
        )
        details = [
            f"payment {p.pk} of order {p.order_id}: {p.status}"
            + (
                f", outcome unknown since {p.outcome_unknown_since:%H:%M:%S}"
                if p.outcome_unknown_since
                else ""
            )
            for p in stuck
        ] + [f"refund {pk} in flight" for pk in refunds]
        return Row(
            "every payment and refund final",
            f"{len(stuck)} payments, {len(refunds)} refunds in flight",
            not details,
            details,
        )

    def one_capture_per_order(self) -> Row:
        by_order: dict[int, list] = defaultdict(list)
        for key, entry in self.ledger.captured.items():
            by_order[self.order_of_key.get(key, -1)].append(entry)
        bad = []
        for order_id, entries in by_order.items():
            kept = [e for e in entries if self.ledger.refunded.get(e.reference, ZERO) < e.amount]
            if len(kept) > 1:
                bad.append(
                    f"order {order_id}: {len(entries)} captures, {len(kept)} not refunded in full"
                )
        multiple = sum(1 for entries in by_order.values() if len(entries) > 1)
        return Row(
            "at most one capture kept per order",
            f"{len(bad)} orders charged twice ({multiple} with extra captures)",
            not bad,
            bad,
        )

    def _paid_totals(self) -> dict[int, Decimal]:
        """What each order says it was paid: its lines still standing (a vendor's cancelled
        line is refunded) if it is paid, shipped or completed; nothing otherwise."""
        kept = dict(
            OrderLine.objects.exclude(status="cancelled")
            .values_list("order")
            .annotate(total=Sum("line_total"))
        )
        return {
            pk: (kept.get(pk) or ZERO) if order.status in PAID else ZERO
            for pk, order in self.orders.items()
        }

    def ledger_matches_orders(self) -> Row:
        paid = self._paid_totals()
        ledger_total = sum(self.ledger_net.values(), ZERO)
        orders_total = sum(paid.values(), ZERO)
        differing = []
        for order_id in sorted(set(self.ledger_net) | set(self.orders)):
            order = self.orders.get(order_id)
            says = paid.get(order_id, ZERO)
            held = self.ledger_net.get(order_id, ZERO)
            if says != held:
                status = order.status if order else "no such order"
                note = (
                    "; its payment is still in flight"
                    if any(p.status in IN_FLIGHT for p in self.by_order[order_id])
                    else ""
                )
                differing.append(
                    f"order {order_id} ({status}): says {says}, processor holds {held}{note}"
                )
        return Row(
            "processor ledger (captures - refunds) == what orders say was paid",
            f"ledger {ledger_total} / orders {orders_total}; {len(differing)} orders differ",
            ledger_total == orders_total and not differing,
            differing,
        )

    def ledger_matches_payments(self) -> Row:
        bad = []
        by_key = {p.idempotency_key: p for p in self.payments}
        for key, entry in self.ledger.charges.items():
            payment = by_key.get(key)
            if payment is None:
                bad.append(f"processor charge {entry.reference or key} has no payment row")
                continue
            captured_here = payment.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED)
            if (entry.status == "captured") != captured_here:
                bad.append(
                    f"payment {payment.pk} (order {payment.order_id}) is {payment.status}; "
                    f"processor says {entry.status}"
                )
        for payment in self.payments:
            captured_here = payment.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED)
            if captured_here and payment.idempotency_key not in self.ledger.captured:
                bad.append(
                    f"payment {payment.pk} is {payment.status}; the processor has no capture"
                )
            refunded = self.ledger.refunded.get(payment.gateway_reference, ZERO)
            if payment.gateway_reference and payment.refunded_amount != refunded:
                bad.append(
                    f"payment {payment.pk} (order {payment.order_id}) says "
                    f"{payment.refunded_amount} refunded; the processor refunded {refunded}"
                )
        return Row(
            "payments agree with the processor's ledger",
            f"{len(bad)} disagreements",
            not bad,
            bad,
        )

    def refunds_match_ledger(self) -> Row:
        """Each refund we recorded happened at the processor once, for its amount; the
        processor refunded nothing we do not know about."""
        refunds = {r.idempotency_key: r for r in Refund.objects.all()}
        bad = []
        for key, refund in refunds.items():
            entry = self.ledger.refunds.get(key)
            done_there = entry is not None and entry.status == "succeeded"
            if refund.reason == EXTERNAL_REFUND_REASON:
                continue  # made at the provider's dashboard, under its own key
            if (refund.status == RefundStatus.SUCCEEDED) != done_there:
                there = entry.status if entry else "nothing"
                bad.append(
                    f"refund {refund.pk} (order {refund.order_id}) is {refund.status}; "
                    f"the processor says {there}"
                )
            elif done_there and entry.amount != refund.amount:
                bad.append(f"refund {refund.pk}: {refund.amount} here, {entry.amount} there")
        for key, entry in self.ledger.refunds.items():
            if key not in refunds and entry.status == "succeeded":
                bad.append(
                    f"processor refund {entry.reference} of {entry.amount} has no refund row"
                )
        succeeded = sum(1 for r in refunds.values() if r.status == RefundStatus.SUCCEEDED)
        return Row(
            "refunds agree with the processor's ledger (each once)",
            f"{len(refunds)} refunds, {succeeded} succeeded, {len(bad)} disagreements",
            not bad,
            bad,
        )

    def orders_agree_with_payments(self) -> Row:
        bad = []
        for order in self.orders.values():
            captured = [p for p in self.by_order[order.pk] if p.status == PaymentStatus.CAPTURED]
            if order.status in PAID and len(captured) != 1:
                bad.append(
                    f"order {order.pk} is {order.status} with {len(captured)} captured payments"
                )
            elif order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED) and captured:
                bad.append(
                    f"order {order.pk} is {order.status} but payment {captured[0].pk} is captured"
                )
        return Row("orders agree with their payments", f"{len(bad)} orders", not bad, bad)

    # --- stock --------------------------------------------------------------------------
    def stock_reconciles(self) -> Row:
        products = Product.objects.in_bulk(list(self.initial_stock))
        changes = dict(
            StockAdjustment.objects.filter(pk__gt=self.stock_boundary, product__in=products)
            .values_list("product")
            .annotate(total=Sum("change"))
        )
        restocked = dict(
            StockAdjustment.objects.filter(
                pk__gt=self.stock_boundary,
                product__in=products,
                reason__in=[StockReason.RECEIVED, StockReason.DAMAGED, StockReason.CORRECTION],
            )
            .values_list("product")
            .annotate(total=Sum("change"))
        )
        sold = dict(
            OrderLine.objects.filter(product__in=products)
            .exclude(order__status=OrderStatus.CANCELLED)
            .exclude(status="cancelled")
            .values_list("product")
            .annotate(total=Sum("quantity"))
        )
        last_after = {}
        for product_id, stock_after in (
            StockAdjustment.objects.filter(product__in=products)
            .order_by("product", "-id")
            .distinct("product")
            .values_list("product", "stock_after")
        ):
            last_after[product_id] = stock_after
        bad = []
        for pk, initial in self.initial_stock.items():
            current = products[pk].stock
            by_history = initial + changes.get(pk, 0)
            by_orders = initial - sold.get(pk, 0) + restocked.get(pk, 0)
            if (
                current < 0
                or current != by_history
                or current != by_orders
                or (last_after.get(pk, current) != current)
            ):
                bad.append(
                    f"product {pk}: stock {current}, initial {initial} + history "
                    f"{changes.get(pk, 0)} = {by_history}, initial - sold {sold.get(pk, 0)} + "
                    f"restocked {restocked.get(pk, 0)} = {by_orders}, "
                    f"last stock_after {last_after.get(pk)}"
                )
        lowest = min((p.stock for p in products.values()), default=0)
        return Row(
            "stock: initial - sold + returned + restocked == current, never negative",
            f"{len(bad)} of {len(products)} products differ; lowest stock {lowest}",
            not bad,
            bad,
        )

    def stock_history_matches_orders(self) -> Row:
        lines = OrderLine.objects.filter(product__isnull=False)
        sold = lines.aggregate(n=Sum("quantity"))["n"] or 0
        returned = (
            lines.filter(Q(order__status=OrderStatus.CANCELLED) | Q(status="cancelled")).aggregate(
                n=Sum("quantity")
            )["n"]
            or 0
        )
        history = StockAdjustment.objects.filter(pk__gt=self.stock_boundary)
        sales = -(history.filter(reason=StockReason.SALE).aggregate(n=Sum("change"))["n"] or 0)
        returns = history.filter(reason=StockReason.RETURN).aggregate(n=Sum("change"))["n"] or 0
        ok = sold == sales and returned == returns
        return Row(
            "stock history: sales and returns match the orders",
            f"sold {sold} / history {sales}; returned {returned} / history {returns}",
            ok,
        )

    # --- emails -------------------------------------------------------------------------
    def _subjects(self) -> Counter:
        """Every email's subject, from the files the file backend wrote."""
        subjects: Counter = Counter()
        for path in self.mail_dir.glob("*"):
            if path.is_file():
                for match in SUBJECT_RE.finditer(path.read_text(errors="replace")):
                    subjects[re.sub(r"\r?\n[ \t]+", " ", match.group(1)).strip()] += 1
        return subjects

    @staticmethod
    def _unknown_outcome_subjects() -> Counter:
        """Emails whose outcome is unknown (a worker killed mid-send) and that staff were shown:
        the send-once row says "sending" and its task failed with EmailOutcomeUnknown. The
        guarantee is at most once and never silently lost, so these count as accounted for."""
        failed_errors = " ".join(
            str(errors)
            for errors in TaskRecord.objects.filter(
                status=TaskResultStatus.FAILED, task_path__startswith="shop.tasks.emails."
            ).values_list("errors", flat=True)
        )
        surfaced: Counter = Counter()
        for key, subject in SentEmail.objects.filter(status=SentEmail.Status.SENDING).values_list(
            "key", "subject"
        ):
            if key in failed_errors and "EmailOutcomeUnknown" in failed_errors:
                surfaced[subject] += 1
        return surfaced

    def _matching(self, counter: Counter, pattern: re.Pattern, group) -> Counter:
        found: Counter = Counter()
        for subject, count in counter.items():
            match = pattern.match(subject)
            if match:
                found[group(match)] += count
        return found

    def _was_paid(self) -> set[int]:
        return {
            int(aggregate_id)
            for aggregate_id in OutboxEvent.objects.filter(
                event_type="PaymentCaptured", aggregate_type=ORDER_AGGREGATE
            ).values_list("aggregate_id", flat=True)
        } | {pk for pk, order in self.orders.items() if order.status in PAID}

    def confirmations(self) -> Row:
        order_id_of = lambda match: int(match.group(1))  # noqa: E731
        sent = self._matching(self.subjects, CONFIRMATION_RE, order_id_of)
        unknown = self._matching(self.unknown_outcome, CONFIRMATION_RE, order_id_of)
        was_paid = self._was_paid()
        bad = []
        for order_id in sorted(was_paid | set(sent)):
            count = sent.get(order_id, 0)
            if _once_or_shown(count, unknown.get(order_id, 0), expected=order_id in was_paid):
                continue
            why = "paid" if order_id in was_paid else "never paid"
            bad.append(f"order {order_id} ({why}): {count} confirmations{self._guard(order_id)}")
        return Row(
            "exactly one confirmation email per paid order",
            f"{len(was_paid)} paid orders, {sum(sent.values())} confirmations, "
            f"{sum(unknown.values())} cut off mid-send and shown to staff, {len(bad)} wrong",
            not bad,
            bad,
        )

    def vendor_notices(self) -> Row:
        """Each vendor with lines in a paid order is told once ("New order … for <vendor>")."""
        expected = {
            (order_id, name)
            for order_id, name in OrderLine.objects.filter(order__in=self._was_paid())
            .exclude(vendor__contact_email="")
            .values_list("order_id", "vendor__name")
            .distinct()
        }
        order_and_vendor = lambda match: (int(match.group(1)), match.group(2))  # noqa: E731
        sent = self._matching(self.subjects, VENDOR_NOTICE_RE, order_and_vendor)
        unknown = self._matching(self.unknown_outcome, VENDOR_NOTICE_RE, order_and_vendor)
        bad = [
            f"order {order_id}, {name}: {sent.get((order_id, name), 0)} notices"
            for order_id, name in sorted(expected | set(sent))
            if not _once_or_shown(
                sent.get((order_id, name), 0),
                unknown.get((order_id, name), 0),
                expected=(order_id, name) in expected,
            )
        ]
        return Row(
            "exactly one new-order email per vendor of a paid order",
            f"{len(expected)} expected, {sum(sent.values())} sent, "
            f"{sum(unknown.values())} cut off mid-send and shown to staff, {len(bad)} wrong",
            not bad,
            bad,
        )

    @staticmethod
    def _guard(order_id: int) -> str:
        """The send-once guard's state for an order's confirmation (why one is missing)."""
        guard = SentEmail.objects.filter(
            key__startswith=f"shop:order-confirmation:{order_id}-"
        ).first()
        return f"; send-once guard {guard.status}" if guard else "; no send-once guard row"

    # --- events and tasks ---------------------------------------------------------------
    def outbox_drained(self) -> Row:
        pending = OutboxEvent.objects.pending().count()
        parked = list(
            OutboxEvent.objects.parked().values_list("event_type", "aggregate_id", "last_error")
        )
        details = [
            f"parked {t} of {a}: {e.strip().splitlines()[0] if e else ''}" for t, a, e in parked
        ]
        return Row(
            "outbox drained (nothing pending or parked)",
            f"{pending} pending, {len(parked)} parked",
            pending == 0 and not parked,
            details,
        )

    def events_in_order(self) -> Row:
        receipts: dict[object, datetime.datetime] = {}
        for event_id, handled_at in HandlerReceipt.objects.values_list("event", "handled_at"):
            receipts[event_id] = min(handled_at, receipts.get(event_id, handled_at))
        last = dict(
            ((t, a), n)
            for t, a, n in AggregateSequence.objects.values_list(
                "aggregate_type", "aggregate_id", "last_sequence"
            )
        )
        by_aggregate = defaultdict(list)
        for row in OutboxEvent.objects.order_by("sequence").values(
            "id", "aggregate_type", "aggregate_id", "sequence", "delivered_at", "event_type"
        ):
            by_aggregate[(row["aggregate_type"], row["aggregate_id"])].append(row)
        bad = []
        for aggregate, rows in by_aggregate.items():
            sequences = [row["sequence"] for row in rows]
            if sequences != list(range(1, len(rows) + 1)) or last.get(aggregate) != len(rows):
                bad.append(f"{aggregate}: sequences {sequences}, last given {last.get(aggregate)}")
                continue
            for before, after in zip(rows, rows[1:], strict=False):
                first_handled = receipts.get(after["id"]) or after["delivered_at"]
                if after["delivered_at"] and (
                    not before["delivered_at"]
                    or after["delivered_at"] < before["delivered_at"]
                    or (first_handled and first_handled < before["delivered_at"])
                ):
                    bad.append(
                        f"{aggregate}: #{after['sequence']} {after['event_type']} handled before "
                        f"#{before['sequence']} {before['event_type']} was delivered"
                    )
        return Row(
            "events delivered in order per aggregate (no gaps)",
            f"{len(by_aggregate)} aggregates, {len(bad)} out of order",
            not bad,
            bad,
        )

    def no_stuck_tasks(self) -> Row:
        now = timezone.now()
        overdue = TaskRecord.objects.filter(
            status=TaskResultStatus.READY, next_attempt_at__lt=now - OVERDUE
        )
        expired = TaskRecord.objects.filter(
            status=TaskResultStatus.RUNNING, lease_expires_at__lt=now
        )
        lingering = OrmQ.objects.filter(lock__lt=now - OVERDUE)
        details = [
            f"{label} {r.task_path} [{r.id}] attempts {r.attempts}"
            for label, queryset in (
                ("ready, overdue:", overdue),
                ("running, lease expired:", expired),
            )
            for r in queryset[:20]
        ] + [f"broker row {row.pk} [{row.key}] due {row.lock:%H:%M:%S}" for row in lingering[:20]]
        counts = (overdue.count(), expired.count(), lingering.count(), OrmQ.objects.count())
        return Row(
            "no stuck task (overdue / expired lease / lingering broker row)",
            f"{counts[0]} / {counts[1]} / {counts[2]} (broker rows left: {counts[3]})",
            not any(counts[:3]),
            details,
        )

    def sweeps_kept_running(self, since: datetime.datetime) -> Row:
        """The payment sweeper (a Django-Q2 schedule, every minute) is the safety net for
        payments stuck in flight; it must keep running however often clusters restart."""
        now = timezone.now()
        runs = sorted(
            TaskRecord.objects.filter(
                task_path="shop.tasks.payments.sweep_stuck_payments", enqueued_at__gte=since
            ).values_list("enqueued_at", flat=True)
        )
        points = [since, *runs, now]
        gaps = [(b - a, a, b) for a, b in zip(points, points[1:], strict=False)]
        worst = max(gap for gap, _, _ in gaps)
        long = [
            f"no sweep from {a:%H:%M:%S} to {b:%H:%M:%S} ({gap.total_seconds():.0f} s)"
            for gap, a, b in gaps
            if gap > SWEEP_GAP
        ]
        return Row(
            "the payment sweep schedule keeps running (gap <= 120 s)",
            f"{len(runs)} sweeps, longest gap {worst.total_seconds():.0f} s",
            not long,
            long,
        )

    def task_outcomes(self) -> dict:
        rows = TaskRecord.objects.values_list("task_path", "status")
        outcome: dict[str, Counter] = defaultdict(Counter)
        for path, status in rows:
            outcome[path.rsplit(".", 1)[-1]][status] += 1
        return {name: dict(counts) for name, counts in sorted(outcome.items())}

    def failed_tasks(self) -> list[str]:
        """Tasks that finally failed (staff see them in the admin), with their last error."""
        return [
            f"{record.task_path.rsplit('.', 1)[-1]} [{record.id[:8]}] args {record.args}: "
            f"{record.last_error[:200]}"
            for record in TaskRecord.objects.filter(status=TaskResultStatus.FAILED)
        ]

    # --- what the shopper saw -----------------------------------------------------------
    def order_pages(self, pages: dict) -> Row:
        bad = []
        for pk, page in pages.items():
            order = self.orders.get(pk)
            held = self.ledger_net.get(pk, ZERO)
            problems = []
            if order is None:
                continue
            if page.order_status != order.status:
                problems.append(f"shows {page.order_status}, database says {order.status}")
            if page.says_confirmed and order.status not in PAID:
                problems.append("says confirmed but the order is not paid")
            if page.says_not_charged and held > 0:
                problems.append(f"says not charged but the processor holds {held}")
            if page.can_pay and (order.status != OrderStatus.PENDING_PAYMENT or held > 0):
                problems.append(f"offers 'Pay now' (order {order.status}, processor holds {held})")
            in_flight = any(p.status in IN_FLIGHT for p in self.by_order[pk])
            if page.in_flight != in_flight:
                problems.append(
                    f"shows the payment {'in flight' if page.in_flight else 'settled'} "
                    f"({page.progress or 'no progress'}), database says "
                    f"{'in flight' if in_flight else 'settled'}"
                )
            if order.status == OrderStatus.PAID and page.payment_status != PaymentStatus.CAPTURED:
                problems.append(f"paid order shows its payment as {page.payment_status or 'none'}")
            if problems:
                bad.append(f"order {pk}: " + "; ".join(problems))
        return Row(
            "order pages agree with the database and the processor",
            f"{len(pages)} pages read, {len(bad)} contradict",
            not bad,
            bad,
        )

    def errors_after_commit(self, errors: list[dict], shopper_orders: dict[int, str]) -> Row:
        bad = []
        for error in errors:
            if error["method"] != "POST" or not (
                error["path"] == "/checkout/review/" or error["path"].endswith("/pay/")
            ):
                continue
            at = datetime.datetime.fromisoformat(error["at"])
            sent = datetime.datetime.fromisoformat(error.get("sent_at") or error["at"])
            sent -= datetime.timedelta(seconds=1)  # clocks: the server stamps its own time
            request_id = error.get("request_id", "")
            if error["path"] == "/checkout/review/":
                committed = [
                    o.pk
                    for o in self.orders.values()
                    if o.customer.email == error["shopper"]
                    and sent <= o.created_at <= at
                    and o.pk not in shopper_orders
                    and self._same_request(("OrderPlaced", o.pk), request_id)
                ]
                what = "order(s)"
            else:
                order_id = int(error["path"].split("/")[2])
                committed = [
                    p.pk
                    for p in self.payments
                    if p.order_id == order_id
                    and sent <= p.created_at <= at
                    and self._same_request(("payment", p.pk), request_id)
                ]
                what = "payment(s)"
            if committed:
                bad.append(
                    f"{error['path']} answered HTTP {error['status']} to {error['shopper']} "
                    f"at {at:%H:%M:%S}, yet {what} {committed} committed"
                )
        return Row(
            "no error page for a checkout or payment that went through",
            f"{len(bad)} of {len(errors)} server errors",
            not bad,
            bad,
        )

    @staticmethod
    def _same_request(written: tuple[str, int], request_id: str) -> bool:
        """Was the row written by this request, as far as the request ids it left say? An
        order's OrderPlaced event and a payment's first task carry the request id; a row
        whose trace names another request (a double click's twin) was not this one's."""
        kind, pk = written
        if kind == "OrderPlaced":
            traces = OutboxEvent.objects.filter(
                event_type="OrderPlaced", aggregate_type=ORDER_AGGREGATE, aggregate_id=str(pk)
            ).values_list("request_id", flat=True)
        else:
            traces = TaskRecord.objects.filter(
                task_path="shop.tasks.payments.process_order_payment", args=[pk]
            ).values_list("request_id", flat=True)
        traces = [trace for trace in traces if trace]
        return not traces or not request_id or request_id in traces

    def summary(self) -> dict:
        return {
            "orders by status": dict(Counter(o.status for o in self.orders.values())),
            "payments by status": dict(Counter(p.status for p in self.payments)),
            "refunds by status": dict(Counter(Refund.objects.values_list("status", flat=True))),
            "processor": {
                "charges": len(self.ledger.charges),
                "captures": len(self.ledger.captured),
                "refunded": str(sum(self.ledger.refunded.values(), ZERO)),
            },
            "shipped orders": Order.objects.filter(status=OrderStatus.SHIPPED).count(),
            "multi-attempt payments": sum(1 for p in self.payments if p.attempts > 1),
        }


def process_rows(
    *, clusters_served: dict[str, int], orphans: dict[str, list[int]], survivors: list[int]
) -> list[Row]:
    idle = [name for name, count in clusters_served.items() if count == 0]
    return [
        Row(
            "every cluster serves work (final probe round)",
            ", ".join(f"{name} {count}" for name, count in clusters_served.items()),
            not idle,
            [f"{name} ran none of the final probes" for name in idle],
        ),
        Row(
            "no orphans left by killed processes",
            f"{sum(len(p) for p in orphans.values())} processes",
            not orphans,
            [f"{name}: pids {pids}" for name, pids in orphans.items()],
        ),
        Row(
            "no process left after shutdown",
            f"{len(survivors)} processes",
            not survivors,
            [f"pid {pid}" for pid in survivors],
        ),
    ]


def probes_row() -> Row:
    probes = TaskRecord.objects.filter(task_path="chaos.probes.probe")
    unfinished = probes.filter(~Q(status=TaskResultStatus.SUCCESSFUL))
    details = [f"probe [{r.id}] on {r.queue}: {r.status}" for r in unfinished[:30]]
    return Row(
        "every recovery probe completed",
        f"{probes.count() - unfinished.count()} of {probes.count()}",
        not details,
        details,
    )


def server_errors_row(errors: list[dict], outages: list[tuple[float, float]]) -> Row:
    """Server errors (5xx) are expected for requests in flight while PostgreSQL or Redis was
    down, never for one sent after it was back."""
    outside = [
        e
        for e in errors
        if not any(e.get("t_sent", -1) <= end and e.get("t", -1) >= start for start, end in outages)
    ]
    return Row(
        "no server error outside a PostgreSQL or Redis outage",
        f"{len(outside)} of {len(errors)} server errors",
        not outside,
        [
            f"sent t={e.get('t_sent')}s, answered t={e.get('t')}s: {e['method']} {e['path']} "
            f"HTTP {e['status']}: {e.get('cause', '?')}"
            for e in outside
        ],
    )


def _once_or_shown(sent: int, cut_off: int, *, expected: bool) -> bool:
    """Emails are sent at most once; one cut off mid-send may be missing if staff see it."""
    if not expected:
        return sent == 0
    return sent == 1 or (sent == 0 and cut_off > 0)
