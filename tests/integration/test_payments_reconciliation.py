"""A charge or refund whose outcome we do not know is never failed, never taken twice and
never refunded twice: it is looked up at the processor by its idempotency key, a payment's
again and again with backoff until the processor answers.

The first tests drive the services in this process (tasks run inline); the last ones run
real Django-Q2 `critical` and `emails` workers, kill one mid-call and switch the simulated
processor's outage on and off across processes (its ledger is a file they all share).
"""

import datetime
import os
import signal
import time
from decimal import Decimal

import pytest
from django.core import mail
from django.tasks import TaskResultStatus
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from project.background.models import TaskRecord
from project.events import dispatcher as event_dispatcher
from project.events.models import OutboxEvent
from shop.gateways import GatewayError, simulated
from shop.models import Order, OrderStatus, Payment, PaymentStatus, Refund, RefundStatus
from shop.services import orders as order_services
from shop.services import payments as payment_services
from shop.services import refunds as refund_services
from shop.tasks import payments as payment_tasks
from tests import factories
from tests.fixtures import mail as spool
from tests.fixtures.workers import q_workers  # noqa: F401 - the fixture
from tests.integration.payments_support import (
    APPROVE,
    TRANSIENT,
    card,
    charges,
    paid_according_to_orders,
    paid_according_to_processor,
    place_order,
)

Gateway = simulated.SimulatedGateway
PAYMENT_TASK = "shop.tasks.payments.process_order_payment"
LOOKUP_TASK = "shop.tasks.payments.reconcile_payment"
SWEEP_TASK = "shop.tasks.payments.sweep_stuck_payments"
REFUND_TASK = "shop.tasks.payments.process_refund"
Q2_BACKEND = "project.background.backend.DjangoQ2Backend"


@pytest.fixture
def product(db):
    return factories.ProductFactory(name="Kettle", price=Decimal("30.00"), stock=10)


@pytest.fixture
def order(shopper, product):
    return place_order(shopper, (product, 2))  # €60.00


@pytest.fixture
def run_commit_hooks(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def own_ledger(settings, tmp_path):
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"


@pytest.fixture
def deferring_backend(settings):
    """Tasks go to the Django-Q2 backend, which can defer them: enqueued tasks are records
    (no worker runs here), so a test reads what was scheduled and for when."""
    settings.TASKS = {"default": {**settings.TASKS["default"], "BACKEND": Q2_BACKEND}}


@pytest.fixture
def given_up(own_ledger, order, run_commit_hooks, django_capture_on_commit_callbacks):
    """A payment for the order given up on: after the task's last attempt the processor had
    nothing under its key (the order awaits payment again)."""
    payment = started(
        order, TRANSIENT, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks
    )
    with run_commit_hooks():
        return payment_services.process_payment(payment_id=payment.pk, last_attempt=True)


@pytest.fixture
def requested_refund(own_ledger, order, run_commit_hooks, django_capture_on_commit_callbacks):
    """A whole-order refund of the paid order, recorded and not sent yet."""
    with run_commit_hooks():
        payment_services.start_payment(order=order, card_token=card())
    with django_capture_on_commit_callbacks(execute=False):
        return refund_services.request_refund(order=order, acting_user=None, reason="Asked")


def started(order, number=APPROVE, *, django_capture_on_commit_callbacks):
    """A payment recorded for the order, its charge not run yet."""
    with django_capture_on_commit_callbacks(execute=False):
        return payment_services.start_payment(order=order, card_token=card(number))


def event_types(order) -> list[str]:
    return list(
        OutboxEvent.objects.filter(aggregate_id=str(order.pk))
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )


def unknown_outcome(order, *, unknown_for, django_capture_on_commit_callbacks):
    """A payment for the order processing after the task's three attempts met the processor
    unreachable (each a charge and a lookup), its outcome unknown for `unknown_for` (None:
    not marked unknown yet, as after a worker died mid-charge)."""
    payment = started(order, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    Payment.objects.filter(pk=payment.pk).update(
        status=PaymentStatus.PROCESSING,
        attempts=6,
        processing_started_at=timezone.now(),
        outcome_unknown_since=None if unknown_for is None else timezone.now() - unknown_for,
    )
    return Payment.objects.get(pk=payment.pk)


def scheduled_lookups(payment) -> list[tuple[float, int]]:
    """The lookups scheduled for the payment, in order: (seconds from when each was enqueued
    until it is due, the payment's gateway calls when it was scheduled)."""
    records = TaskRecord.objects.filter(
        task_path=LOOKUP_TASK, kwargs__payment_id=payment.pk
    ).order_by("enqueued_at")
    return [
        ((r.run_after - r.enqueued_at).total_seconds(), r.kwargs["scheduled_at_attempts"])
        for r in records
    ]


def land_late_charge(payment, *, number=APPROVE):
    """The processor charges under the payment's key on its own: a request that reached it
    only after our lookup had found nothing."""
    return Gateway().charge(
        token=card(number).token,
        amount=payment.amount,
        currency=payment.currency,
        idempotency_key=payment.idempotency_key,
    )


# --- in this process ------------------------------------------------------------------------


@pytest.mark.usefixtures("own_ledger")
def test_after_the_last_attempt_with_nothing_charged_the_payment_fails_and_pay_now_works(
    order, run_commit_hooks, django_capture_on_commit_callbacks
):
    payment = started(
        order, TRANSIENT, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks
    )
    with pytest.raises(GatewayError):
        payment_services.process_payment(payment_id=payment.pk)

    with run_commit_hooks():
        payment = payment_services.process_payment(payment_id=payment.pk, last_attempt=True)

    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "processing_error")
    assert payment.outcome_unknown_since is None
    assert payment.attempts == 4  # two runs, each a charge and a lookup
    assert charges(payment) == []
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    [email] = mail.outbox
    assert "you have not been charged" in email.body

    with run_commit_hooks():
        second = payment_services.start_payment(order=order, card_token=card())

    second.refresh_from_db()
    assert second.status == PaymentStatus.CAPTURED
    assert len(charges(second, "captured")) == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


@pytest.mark.usefixtures("own_ledger")
def test_a_charge_whose_reply_was_lost_is_found_by_its_key_in_the_same_run(
    order, settings, run_commit_hooks, django_capture_on_commit_callbacks
):
    payment = started(order, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    settings.SIMULATED_GATEWAY_LOST_RESPONSE_RATE = 1.0

    with run_commit_hooks():
        payment = payment_services.process_payment(payment_id=payment.pk)

    assert payment.status == PaymentStatus.CAPTURED
    [entry] = charges(payment)
    assert payment.gateway_reference == entry.reference
    assert payment.attempts == 2  # the charge and the lookup that found it
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


@pytest.mark.usefixtures("own_ledger")
def test_while_the_processor_is_unreachable_the_payment_stays_processing_and_unpayable(
    order, run_commit_hooks, django_capture_on_commit_callbacks
):
    payment = started(order, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    Gateway.set_outage()

    with pytest.raises(GatewayError):
        payment_services.process_payment(payment_id=payment.pk)
    payment.refresh_from_db()
    unknown_since = payment.outcome_unknown_since
    with run_commit_hooks():
        payment = payment_services.process_payment(payment_id=payment.pk, last_attempt=True)

    assert payment.status == PaymentStatus.PROCESSING
    assert unknown_since is not None
    assert payment.outcome_unknown_since == unknown_since  # since the first time
    assert payment.attempts == 4
    assert event_types(order) == ["OrderPlaced"]
    assert mail.outbox == []
    with pytest.raises(payment_services.PaymentInProgress):
        payment_services.start_payment(order=order, card_token=card())
    # The sweeper only looks it up, however often; still unreachable, nothing changes.
    with run_commit_hooks():
        payment = payment_services.reconcile_payment(payment_id=payment.pk)
    assert (payment.status, payment.attempts) == (PaymentStatus.PROCESSING, 5)
    assert charges(payment) == []


@pytest.mark.usefixtures("own_ledger")
def test_reconciling_finds_the_capture_and_pays_the_order_once(
    order, run_commit_hooks, django_capture_on_commit_callbacks, monkeypatch
):
    payment = started(order, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    landed = land_late_charge(payment)  # it reached the processor ...
    Gateway.set_outage()  # ... and then nothing could be asked
    with run_commit_hooks():
        payment_services.process_payment(payment_id=payment.pk, last_attempt=True)
    Gateway.clear_outage()
    sent = []
    monkeypatch.setattr(Gateway, "charge", lambda self, **kw: sent.append(kw))

    with run_commit_hooks():
        payment = payment_services.reconcile_payment(payment_id=payment.pk)

    assert sent == []
    assert payment.status == PaymentStatus.CAPTURED
    assert payment.gateway_reference == landed.reference
    assert payment.outcome_unknown_since is None
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert event_types(order) == ["OrderPlaced", "PaymentCaptured"]
    assert [message.subject for message in mail.outbox][0] == (
        f"Your order {order.number} is confirmed"
    )
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("60.00")


@pytest.mark.usefixtures("own_ledger")
def test_reconciling_a_payment_the_processor_never_saw_gives_pay_now_back(
    order, run_commit_hooks, django_capture_on_commit_callbacks
):
    payment = started(order, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    Gateway.set_outage()
    with run_commit_hooks():
        payment_services.process_payment(payment_id=payment.pk, last_attempt=True)
    Gateway.clear_outage()

    with run_commit_hooks():
        payment = payment_services.reconcile_payment(payment_id=payment.pk)

    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "processing_error")
    assert payment.outcome_unknown_since is None
    assert event_types(order) == ["OrderPlaced", "PaymentFailed"]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert charges(payment) == []


@pytest.mark.usefixtures("own_ledger")
def test_the_sweeper_looks_up_payments_that_were_tried_and_charges_only_those_never_tried(
    shopper, product, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 120
    orders = [place_order(shopper, (product, 1)) for _ in range(2)]
    tried, never = (
        started(o, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
        for o in orders
    )
    long_ago = timezone.now() - datetime.timedelta(seconds=300)
    Payment.objects.filter(pk=tried.pk).update(
        status=PaymentStatus.PROCESSING,
        attempts=3,
        outcome_unknown_since=long_ago,
        processing_started_at=long_ago,
    )
    Payment.objects.filter(pk=never.pk).update(created_at=long_ago)
    sent = []
    original = Gateway.charge

    def spy(self, **kwargs):
        sent.append(kwargs["idempotency_key"])
        return original(self, **kwargs)

    monkeypatch.setattr(Gateway, "charge", spy)

    with django_capture_on_commit_callbacks(execute=True):
        assert payment_services.sweep_stuck_payments() == [tried.pk, never.pk]

    assert sent == [never.idempotency_key]
    tried.refresh_from_db()
    assert (tried.status, tried.attempts) == (PaymentStatus.FAILED, 4)  # looked up: nothing
    assert Payment.objects.get(pk=never.pk).status == PaymentStatus.CAPTURED


@pytest.mark.usefixtures("own_ledger", "deferring_backend")
def test_the_last_attempt_that_leaves_the_outcome_unknown_schedules_a_lookup_in_5_seconds(
    order, django_capture_on_commit_callbacks, monkeypatch
):
    payment = started(order, django_capture_on_commit_callbacks=django_capture_on_commit_callbacks)
    Gateway.set_outage()
    with pytest.raises(GatewayError):
        payment_services.process_payment(payment_id=payment.pk)
    assert scheduled_lookups(payment) == []  # the task's own retry comes first

    payment = payment_services.process_payment(payment_id=payment.pk, last_attempt=True)

    assert (payment.status, payment.attempts) == (PaymentStatus.PROCESSING, 4)
    assert scheduled_lookups(payment) == [(pytest.approx(5, abs=0.5), 4)]
    [record] = TaskRecord.objects.filter(task_path=LOOKUP_TASK)
    assert (record.queue, record.status) == ("critical", "READY")
    # Run when due (as its worker would), it is one lookup and never a charge.
    monkeypatch.setattr(Gateway, "charge", lambda self, **kw: pytest.fail("charged"))
    assert payment_tasks.reconcile_payment.call(*record.args, **record.kwargs) == "processing"
    assert Payment.objects.get(pk=payment.pk).attempts == 5
    assert [at for _, at in scheduled_lookups(payment)] == [4, 5]


@pytest.mark.usefixtures("own_ledger", "deferring_backend")
@pytest.mark.parametrize(
    ("unknown_for", "next_in"),
    [
        (None, 5),  # unknown from now on
        (datetime.timedelta(seconds=3), 5),
        (datetime.timedelta(seconds=10), 10),
        (datetime.timedelta(seconds=40), 40),
        (datetime.timedelta(seconds=160), 160),
        (datetime.timedelta(minutes=6), 300),
        (datetime.timedelta(hours=5), 300),
    ],
)
def test_a_lookup_that_meets_the_processor_unreachable_schedules_the_next_one_with_backoff(
    order, unknown_for, next_in, django_capture_on_commit_callbacks
):
    began = time.monotonic()
    payment = unknown_outcome(
        order,
        unknown_for=unknown_for,
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    Gateway.set_outage()

    payment = payment_services.reconcile_payment(payment_id=payment.pk, scheduled_at_attempts=6)
    # The outcome has been unknown for that much longer by now (seconds on a loaded machine).
    took = time.monotonic() - began

    assert (payment.status, payment.attempts) == (PaymentStatus.PROCESSING, 7)
    assert payment.outcome_unknown_since is not None
    # As long again as it has been unknown: lookups 5, 10, 20, 40 s ... after, 5 min at most.
    assert scheduled_lookups(payment) == [(pytest.approx(next_in, abs=0.5 + took), 7)]


@pytest.mark.usefixtures("own_ledger", "deferring_backend")
@pytest.mark.parametrize(
    ("processor_has", "outcome"),
    [("the charge", PaymentStatus.CAPTURED), ("nothing", PaymentStatus.FAILED)],
)
def test_a_lookup_that_learns_the_outcome_schedules_nothing_and_later_ones_do_nothing(
    order, processor_has, outcome, django_capture_on_commit_callbacks, monkeypatch
):
    payment = unknown_outcome(
        order,
        unknown_for=datetime.timedelta(seconds=30),
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    if processor_has == "the charge":
        land_late_charge(payment)

    payment = payment_services.reconcile_payment(payment_id=payment.pk, scheduled_at_attempts=6)

    assert (payment.status, payment.attempts) == (outcome, 7)
    assert payment.outcome_unknown_since is None
    assert scheduled_lookups(payment) == []
    # A lookup scheduled before it was settled (the chain's, or a sweep's) finds it settled.
    monkeypatch.setattr(Gateway, "retrieve_charge", lambda self, **kw: pytest.fail("looked up"))
    again = payment_services.reconcile_payment(payment_id=payment.pk, scheduled_at_attempts=7)
    assert (again.status, again.attempts, again.updated_at) == (
        outcome,
        7,
        payment.updated_at,
    )
    assert scheduled_lookups(payment) == []


@pytest.mark.usefixtures("own_ledger", "deferring_backend")
def test_a_scheduled_lookup_overtaken_by_another_does_nothing_so_one_chain_goes_on(
    order, django_capture_on_commit_callbacks, monkeypatch
):
    payment = unknown_outcome(
        order,
        unknown_for=datetime.timedelta(seconds=20),
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    Gateway.set_outage()
    payment_services.reconcile_payment(payment_id=payment.pk, scheduled_at_attempts=6)
    payment_services.reconcile_payment(payment_id=payment.pk)  # the sweeper's, meanwhile
    looked_up = []
    monkeypatch.setattr(Gateway, "retrieve_charge", lambda self, **kw: looked_up.append(kw))

    payment = payment_services.reconcile_payment(payment_id=payment.pk, scheduled_at_attempts=7)

    assert looked_up == []
    assert (payment.status, payment.attempts) == (PaymentStatus.PROCESSING, 8)
    # Scheduled at 7 (now overtaken) and at 8: only the sweeper's lookup goes on chasing.
    assert [at for _, at in scheduled_lookups(payment)] == [7, 8]


def test_a_late_capture_for_an_order_still_awaiting_payment_pays_it(
    order, given_up, run_commit_hooks
):
    landed = land_late_charge(given_up)

    with run_commit_hooks():
        payment = payment_services.reconcile_payment(payment_id=given_up.pk)

    assert (payment.status, payment.gateway_reference) == (
        PaymentStatus.CAPTURED,
        landed.reference,
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert not Refund.objects.exists()
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("60.00")


def test_a_late_capture_after_the_order_was_paid_otherwise_is_refunded_and_the_shopper_told(
    order, shopper, given_up, run_commit_hooks
):
    with run_commit_hooks():
        paid = payment_services.start_payment(order=order, card_token=card())
    landed = land_late_charge(given_up)
    mail.outbox.clear()

    with run_commit_hooks():
        payment_services.reconcile_payment(payment_id=given_up.pk)
    with run_commit_hooks():  # looking again changes nothing
        payment_services.reconcile_payment(payment_id=given_up.pk)

    given_up.refresh_from_db()
    assert (given_up.status, given_up.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("60"))
    [refund] = Refund.objects.filter(payment=given_up)
    assert (refund.status, refund.reason) == (
        RefundStatus.SUCCEEDED,
        refund_services.LATE_CAPTURE_REASON,
    )
    assert Payment.objects.get(pk=paid.pk).status == PaymentStatus.CAPTURED
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    [entry] = Gateway.ledger_refunds(charge_reference=landed.reference)
    assert entry.amount == Decimal("60.00")
    [email] = mail.outbox
    assert email.to == [shopper.email]
    assert email.subject == f"We refunded a payment for order {order.number}"
    assert "after the order had been paid with another payment" in email.body
    assert "€60.00 back to your Visa ending 0119" in email.body
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("60.00")


def test_a_late_capture_for_a_cancelled_order_is_refunded(order, given_up, run_commit_hooks):
    order_services.cancel_order(order=Order.objects.get(pk=order.pk), reason="Changed my mind")
    land_late_charge(given_up)
    mail.outbox.clear()

    with run_commit_hooks():
        payment_services.reconcile_payment(payment_id=given_up.pk)

    given_up.refresh_from_db()
    assert given_up.status == PaymentStatus.REFUNDED
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    [email] = mail.outbox
    assert "after the order had stopped awaiting payment" in email.body
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("0.00")


@pytest.mark.usefixtures("own_ledger")
def test_given_up_payments_are_rechecked_for_a_bounded_time_at_a_modest_rate(
    shopper, product, settings, django_capture_on_commit_callbacks
):
    settings.PAYMENT_RECONCILE_HOURS = 24
    settings.PAYMENT_RECONCILE_EVERY_SECONDS = 600
    now = timezone.now()
    payments = {}
    for name, age, checked in [
        ("due", datetime.timedelta(hours=2), datetime.timedelta(minutes=11)),
        ("checked_recently", datetime.timedelta(hours=2), datetime.timedelta(minutes=5)),
        ("too_old", datetime.timedelta(hours=25), datetime.timedelta(hours=3)),
    ]:
        payment = started(
            place_order(shopper, (product, 1)),
            django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
        )
        Payment.objects.filter(pk=payment.pk).update(
            status=PaymentStatus.FAILED,
            failure_code="processing_error",
            created_at=now - age,
            updated_at=now - checked,
        )
        payments[name] = payment.pk
    declined = started(
        place_order(shopper, (product, 1)),
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    Payment.objects.filter(pk=declined.pk).update(
        status=PaymentStatus.FAILED,
        failure_code="card_declined",
        updated_at=now - datetime.timedelta(hours=3),
    )

    with django_capture_on_commit_callbacks(execute=True):
        first = payment_services.sweep_given_up_payments()
        second = payment_services.sweep_given_up_payments()

    assert (first, second) == ([payments["due"]], [])
    due = Payment.objects.get(pk=payments["due"])
    assert (due.status, due.attempts) == (PaymentStatus.FAILED, 1)  # looked up: nothing there


@pytest.mark.usefixtures("own_ledger")
def test_a_refund_whose_reply_was_lost_is_found_by_its_key_and_not_sent_again(
    order, requested_refund, settings, run_commit_hooks
):
    refund = requested_refund
    settings.SIMULATED_GATEWAY_LOST_RESPONSE_RATE = 1.0

    with run_commit_hooks():
        refund = refund_services.process_refund(refund_id=refund.pk)

    assert refund.status == RefundStatus.SUCCEEDED
    [entry] = Gateway.ledger_refunds()
    assert refund.gateway_reference == entry.reference
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("0.00")


@pytest.mark.usefixtures("own_ledger")
def test_a_refund_sent_during_an_outage_stays_processing_then_is_made_once(
    requested_refund, run_commit_hooks, monkeypatch
):
    refund = requested_refund
    Gateway.set_outage()
    for _ in range(3):
        with pytest.raises(GatewayError):
            refund_services.process_refund(refund_id=refund.pk)
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.PROCESSING
    Gateway.clear_outage()
    calls = []
    original = Gateway.refund

    def spy(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        return original(self, **kwargs)

    monkeypatch.setattr(Gateway, "refund", spy)

    with run_commit_hooks():
        refund = refund_services.process_refund(refund_id=refund.pk)
        refund_services.process_refund(refund_id=refund.pk)

    assert refund.status == RefundStatus.SUCCEEDED
    assert calls == [refund.idempotency_key]  # looked up first (nothing), then sent once
    assert len(Gateway.ledger_refunds()) == 1
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("0.00")


@pytest.mark.usefixtures("own_ledger")
def test_a_refund_rerun_after_it_reached_the_processor_is_only_looked_up(
    requested_refund, run_commit_hooks, monkeypatch
):
    refund = requested_refund
    original = refund_services._apply_result

    def killed(*args, **kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(refund_services, "_apply_result", killed)
    with pytest.raises(SystemExit):
        refund_services.process_refund(refund_id=refund.pk)
    monkeypatch.setattr(refund_services, "_apply_result", original)
    # Stripe forgets a key after 24 hours: a second send could refund twice.
    monkeypatch.setattr(Gateway, "refund", lambda self, **kw: pytest.fail("sent again"))

    with run_commit_hooks():
        refund = refund_services.process_refund(refund_id=refund.pk)

    assert refund.status == RefundStatus.SUCCEEDED
    assert len(Gateway.ledger_refunds()) == 1
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("0.00")


# --- real worker processes ------------------------------------------------------------------


@pytest.fixture
def ledger(q_workers, settings, tmp_path):  # noqa: F811
    """One processor ledger for the test process and its workers; no scheduled sweeps (the
    tests run the sweeper themselves, when they mean to)."""
    path = tmp_path / "gateway-ledger.sqlite3"
    settings.SIMULATED_GATEWAY_LEDGER_PATH = path
    q_workers.extra_env["SIMULATED_GATEWAY_LEDGER_PATH"] = str(path)
    Schedule.objects.all().delete()
    return path


def worker_running(task_path: str, cluster) -> int:
    """The pid of the cluster's worker process running the task now."""
    record = TaskRecord.objects.get(task_path=task_path, status="RUNNING")
    pid = int(record.worker_ids[-1].rsplit(":", 1)[1])
    assert pid in cluster.descendants()
    return pid


def finished(task_path: str) -> TaskRecord | None:
    return (
        TaskRecord.objects.filter(task_path=task_path, status__in=["SUCCESSFUL", "FAILED"])
        .order_by("enqueued_at")
        .first()
    )


def sweep(q_workers):  # noqa: F811
    """Run the payment sweeper in a worker, as its schedule would; its return value."""
    result = payment_tasks.sweep_stuck_payments.enqueue()
    q_workers.wait_for(lambda: (result.refresh(), result.is_finished)[1], timeout=30)
    assert result.status == TaskResultStatus.SUCCESSFUL
    return result.return_value


def lookups() -> list[TaskRecord]:
    """The `reconcile_payment` tasks enqueued so far, oldest first."""
    return list(TaskRecord.objects.filter(task_path=LOOKUP_TASK).order_by("enqueued_at"))


def deliver_events() -> None:
    """What `manage.py run_dispatcher` does: hand committed events to their handlers."""
    event_dispatcher.Dispatcher().run_until_idle()


def subjects(q_workers, to: str) -> list[str]:  # noqa: F811
    return sorted(message["Subject"] for message in q_workers.emails() if message["To"] == to)


def test_a_charge_made_just_before_its_worker_died_in_an_outage_is_never_failed_or_taken_twice(
    q_workers,  # noqa: F811
    ledger,
    client,
):
    # Each gateway call takes 1.5 s to the processor and 1.5 s back: time to kill the worker
    # after the charge is made and before its reply arrives.
    clusters = q_workers.start(
        "critical", "emails", SIMULATED_GATEWAY_LATENCY_MS="3000", PAYMENT_STUCK_AFTER_SECONDS="1"
    )
    shopper = factories.UserFactory(email="outage@example.com")
    order = place_order(shopper, (factories.ProductFactory(price=Decimal("21.25")), 2))
    payment = payment_services.start_payment(order=order, card_token=card())

    q_workers.wait_for(lambda: charges(payment), timeout=30, interval=0.05)
    Gateway.set_outage()  # until cleared: far longer than the task's retries
    os.kill(worker_running(PAYMENT_TASK, clusters["critical"]), signal.SIGKILL)

    record = q_workers.wait_for(lambda: finished(PAYMENT_TASK), timeout=60)
    assert (record.status, record.attempts, record.return_value) == (
        "SUCCESSFUL",
        3,
        "processing",
    )
    assert record.errors[0]["exception_class_path"] == "project.background.runner.WorkerLost"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING
    assert payment.outcome_unknown_since is not None
    assert payment.attempts == 5  # the charge; then twice a charge and a lookup, unanswered
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    with pytest.raises(payment_services.PaymentInProgress):
        payment_services.start_payment(order=order, card_token=card())
    client.force_login(shopper)
    page = client.get(order.get_absolute_url())
    assert page.status_code == 200
    assert reverse("shop:order_pay", args=[order.pk]) not in page.text  # no Pay now form
    deliver_events()
    assert "PaymentFailed" not in event_types(order)
    time.sleep(1)
    assert q_workers.emails() == []  # not told it failed
    # The lookup scheduled by the last attempt meets the outage and schedules the next one.
    q_workers.wait_for(lambda: (found := lookups()) and found[0].status == "SUCCESSFUL", timeout=20)

    Gateway.clear_outage()
    # The sweeper (the safety net; its period is 1 s here) looks it up before the chain does.
    assert sweep(q_workers) == {"payments": [payment.pk], "refunds": [], "given_up": []}

    q_workers.wait_for(
        lambda: Payment.objects.get(pk=payment.pk).status == PaymentStatus.CAPTURED, timeout=30
    )
    payment.refresh_from_db()
    [entry] = charges(payment)
    assert (entry.status, payment.gateway_reference) == ("captured", entry.reference)
    assert payment.outcome_unknown_since is None
    assert payment.attempts == 7  # a lookup by the chain, then the sweeper's that found it
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("42.50")
    deliver_events()
    q_workers.wait_for(lambda: q_workers.emails(), timeout=30)
    # The chain's next lookup, overtaken by the sweeper's, does nothing and schedules nothing.
    q_workers.wait_for(
        lambda: (found := lookups()) and all(r.status == "SUCCESSFUL" for r in found), timeout=20
    )
    assert [r.return_value for r in lookups()] == ["processing", "captured", "captured"]
    assert Payment.objects.get(pk=payment.pk).attempts == 7
    time.sleep(1)
    assert [m["Subject"] for m in q_workers.emails() if m["To"] == shopper.email] == [
        f"Your order {order.number} is confirmed"
    ]


def test_an_unknown_outcome_is_looked_up_with_backoff_and_captured_soon_after_the_outage(
    q_workers,  # noqa: F811
    ledger,
):
    order = place_order(
        factories.UserFactory(), (factories.ProductFactory(price=Decimal("18.40")), 1)
    )
    payment = payment_services.start_payment(order=order, card_token=card())
    landed = land_late_charge(payment)  # the charge reached the processor ...
    Gateway.set_outage()  # ... and then nothing could be asked, through all three attempts
    q_workers.start("critical")

    record = q_workers.wait_for(lambda: finished(PAYMENT_TASK), timeout=30)
    assert (record.status, record.attempts, record.return_value) == (
        "SUCCESSFUL",
        3,
        "processing",
    )
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING
    assert payment.outcome_unknown_since is not None
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT

    # The first lookup, 5 s on, meets the outage too and schedules the next, further off.
    first, second = q_workers.wait_for(
        lambda: (found := lookups()) and found[0].status == "SUCCESSFUL" and found, timeout=20
    )
    assert first.return_value == "processing"
    assert (first.run_after - first.enqueued_at).total_seconds() == pytest.approx(5, abs=0.5)
    unknown_for = (second.enqueued_at - payment.outcome_unknown_since).total_seconds()
    assert (second.run_after - second.enqueued_at).total_seconds() == pytest.approx(
        unknown_for, abs=0.5
    )
    assert unknown_for > 5

    Gateway.clear_outage()
    cleared = time.monotonic()

    q_workers.wait_for(
        lambda: Payment.objects.get(pk=payment.pk).status == PaymentStatus.CAPTURED, timeout=15
    )
    captured_after = time.monotonic() - cleared
    payment.refresh_from_db()
    [entry] = charges(payment)
    assert (entry.status, payment.gateway_reference) == ("captured", landed.reference)
    assert payment.outcome_unknown_since is None
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("18.40")
    q_workers.wait_for(lambda: all(r.status == "SUCCESSFUL" for r in lookups()), timeout=10)
    time.sleep(1)
    assert [r.return_value for r in lookups()] == ["processing", "captured"]  # chain ended
    assert not TaskRecord.objects.filter(task_path=SWEEP_TASK).exists()
    assert captured_after < 15


def test_transient_errors_with_nothing_charged_give_pay_now_back_after_the_retries(
    q_workers,  # noqa: F811
    ledger,
):
    q_workers.start("critical", "emails")
    shopper = factories.UserFactory(email="retries@example.com")
    order = place_order(shopper, (factories.ProductFactory(price=Decimal("12.00")), 1))
    begun = time.monotonic()

    first = payment_services.start_payment(order=order, card_token=card(TRANSIENT))

    q_workers.wait_for(
        lambda: Payment.objects.get(pk=first.pk).status == PaymentStatus.FAILED, timeout=60
    )
    gave_up_after = time.monotonic() - begun
    # The payment is failed inside the task's last attempt; its record is finished just after.
    q_workers.wait_for(
        lambda: TaskRecord.objects.get(task_path=PAYMENT_TASK).status != "RUNNING", timeout=30
    )
    first.refresh_from_db()
    assert first.failure_code == "processing_error"
    assert first.attempts == 6  # three attempts, each a charge and a lookup that found nothing
    record = TaskRecord.objects.get(task_path=PAYMENT_TASK)
    assert (record.status, record.attempts) == ("SUCCESSFUL", 3)
    assert gave_up_after < 30  # seconds, not a 15-minute window
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    deliver_events()
    [failed] = q_workers.wait_for(lambda: q_workers.emails(), timeout=30)
    assert failed["Subject"] == f"Payment failed for order {order.number}"
    assert "you have not been charged" in spool.text_body(failed)

    second = payment_services.start_payment(order=order, card_token=card())

    q_workers.wait_for(
        lambda: Payment.objects.get(pk=second.pk).status == PaymentStatus.CAPTURED, timeout=30
    )
    assert charges(first) == []
    assert len(charges(second, "captured")) == 1
    assert len(Gateway.ledger_charges()) == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("12.00")


def test_the_shopper_reads_we_are_retrying_during_the_retries_then_gets_pay_now(
    q_workers,  # noqa: F811
    ledger,
):
    """What the order page's live fragment (its poll) says while a real worker retries a
    charge the processor did not answer: retrying while attempts remain, Pay now once spent."""
    q_workers.start("critical")
    shopper = factories.UserFactory(email="watching@example.com")
    order = place_order(shopper, (factories.ProductFactory(price=Decimal("12.00")), 1))
    client = Client()
    client.force_login(shopper)
    seen: list[str] = []

    def page_says() -> str:
        fragment = client.get(order.get_absolute_url(), headers={"HX-Request": "true"}).text
        said = (
            "pay now"
            if "Pay now" in fragment
            else "retrying"
            if "We are retrying your payment" in fragment
            else "processing"
        )
        if not seen or seen[-1] != said:
            seen.append(said)
        return said

    begun = time.monotonic()
    payment_services.start_payment(order=order, card_token=card(TRANSIENT))

    q_workers.wait_for(lambda: page_says() == "pay now", timeout=60, interval=0.2)
    pay_now_after = time.monotonic() - begun

    assert "retrying" in seen
    assert seen[-2:] == ["retrying", "pay now"]
    assert pay_now_after < 30  # seconds, not a 15-minute window


def test_a_capture_found_after_giving_up_is_refunded_and_the_shopper_emailed(
    q_workers,  # noqa: F811
    ledger,
):
    q_workers.start("critical", "emails", PAYMENT_RECONCILE_EVERY_SECONDS="0")
    shopper = factories.UserFactory(email="late@example.com")
    order = place_order(shopper, (factories.ProductFactory(price=Decimal("33.30")), 1))

    def emailed(subject: str):
        """Deliver the events so far (a dispatcher's job) and wait for the shopper's email."""
        deliver_events()
        q_workers.wait_for(lambda: subject in subjects(q_workers, shopper.email), timeout=30)

    given_up = payment_services.start_payment(order=order, card_token=card(TRANSIENT))
    q_workers.wait_for(
        lambda: Payment.objects.get(pk=given_up.pk).status == PaymentStatus.FAILED, timeout=60
    )
    emailed(f"Payment failed for order {order.number}")
    paid = payment_services.start_payment(order=order, card_token=card())
    q_workers.wait_for(
        lambda: Payment.objects.get(pk=paid.pk).status == PaymentStatus.CAPTURED, timeout=30
    )
    emailed(f"Your order {order.number} is confirmed")
    landed = land_late_charge(given_up)

    assert sweep(q_workers)["given_up"] == [given_up.pk]

    q_workers.wait_for(
        lambda: Payment.objects.get(pk=given_up.pk).status == PaymentStatus.REFUNDED, timeout=30
    )
    [refund] = Refund.objects.filter(payment=given_up)
    assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, Decimal("33.30"))
    [entry] = Gateway.ledger_refunds(charge_reference=landed.reference)
    assert (entry.amount, refund.gateway_reference) == (Decimal("33.30"), entry.reference)
    assert Payment.objects.get(pk=paid.pk).status == PaymentStatus.CAPTURED
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("33.30")
    notice = f"We refunded a payment for order {order.number}"
    emailed(notice)
    time.sleep(1)
    assert subjects(q_workers, shopper.email) == sorted(
        [
            f"Payment failed for order {order.number}",
            f"Your order {order.number} is confirmed",
            notice,
        ]
    )
    [message] = [m for m in q_workers.emails() if m["Subject"] == notice]
    body = spool.text_body(message)
    assert "after the order had been paid with another payment" in body
    assert "€33.30 back to your Visa ending 0119" in body


def test_a_refund_whose_worker_died_after_the_processor_made_it_is_made_once_through_an_outage(
    q_workers,  # noqa: F811
    ledger,
    staff,
):
    clusters = q_workers.start(
        "critical", SIMULATED_GATEWAY_LATENCY_MS="3000", PAYMENT_STUCK_AFTER_SECONDS="1"
    )
    order = place_order(
        factories.UserFactory(), (factories.ProductFactory(price=Decimal("15.00")), 3)
    )
    payment = payment_services.start_payment(order=order, card_token=card())
    q_workers.wait_for(
        lambda: Payment.objects.get(pk=payment.pk).status == PaymentStatus.CAPTURED, timeout=30
    )
    payment.refresh_from_db()

    refund = refund_services.request_refund(order=order, acting_user=staff, reason="Asked")

    q_workers.wait_for(lambda: Gateway.ledger_refunds(), timeout=30, interval=0.05)
    Gateway.set_outage()
    os.kill(worker_running(REFUND_TASK, clusters["critical"]), signal.SIGKILL)
    record = q_workers.wait_for(lambda: finished(REFUND_TASK), timeout=60)
    assert (record.status, record.attempts) == ("FAILED", 3)  # killed, then two unanswered
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.PROCESSING
    assert Payment.objects.get(pk=payment.pk).refunded_amount == Decimal("0.00")

    Gateway.clear_outage()
    time.sleep(1)
    assert sweep(q_workers)["refunds"] == [refund.pk]

    q_workers.wait_for(
        lambda: Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED, timeout=30
    )
    [entry] = Gateway.ledger_refunds()
    refund.refresh_from_db()
    assert (entry.amount, refund.gateway_reference) == (Decimal("45.00"), entry.reference)
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("45"))
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    assert paid_according_to_processor() == paid_according_to_orders() == Decimal("0.00")
