import datetime
import importlib
import logging
import threading
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.tasks import TaskResultStatus
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from shop.gateways import GatewayError, simulated
from shop.models import CartItem, Order, OrderStatus, Payment, PaymentStatus, Product
from shop.services import orders as order_services
from shop.services import payments as payment_services
from shop.tasks import payments as payment_tasks
from tests import factories
from tests.integration.payments_support import (
    APPROVE,
    DECLINE,
    NO_FUNDS,
    TRANSIENT,
    card,
    charges,
    place_order,
)


@pytest.fixture(autouse=True)
def _own_ledger(settings, tmp_path):
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"


@pytest.fixture
def enqueued():
    """(task name, args) of every task enqueued during the test."""
    seen: list[tuple[str, list]] = []

    def record(sender, task_result, **kwargs):
        seen.append((task_result.task.name, list(task_result.args)))

    task_enqueued.connect(record)
    yield seen
    task_enqueued.disconnect(record)


@pytest.fixture
def product(db):
    return factories.ProductFactory(name="Kettle", price=Decimal("30.00"), stock=5)


@pytest.fixture
def order(shopper, product):
    return place_order(shopper, (product, 2))


@pytest.fixture
def run_commit_hooks(django_capture_on_commit_callbacks):
    """Run what is scheduled on commit (tasks are enqueued then; ImmediateBackend runs them)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def pay(order, number=APPROVE, *, run_commit_hooks):
    with run_commit_hooks():
        payment = payment_services.start_payment(order=order, card_token=card(number))
    payment.refresh_from_db()
    return payment


def test_checkout_payment_is_charged_in_the_background_once(
    order, product, shopper, run_commit_hooks, enqueued
):
    payment = pay(order, run_commit_hooks=run_commit_hooks)

    assert payment.status == PaymentStatus.CAPTURED
    assert payment.amount == Decimal("60.00")
    assert payment.idempotency_key.startswith("payment-")
    assert (payment.card_brand, payment.card_last4) == ("Visa", "4242")
    assert payment.processing_started_at is not None
    [entry] = charges(payment)
    assert (entry.status, entry.amount) == ("captured", Decimal("60.00"))
    assert payment.gateway_reference == entry.reference
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert Product.objects.get(pk=product.pk).stock == 3
    assert enqueued == [
        ("process_order_payment", [payment.pk]),
        ("send_order_confirmation", [order.pk]),
        ("send_vendor_new_order", [order.pk, product.vendor_id]),
    ]


def test_nothing_is_charged_before_the_order_commits(order, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        payment = payment_services.start_payment(order=order, card_token=card())

    assert len(callbacks) == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert charges(payment) == []
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        (DECLINE, "card_declined", "Your card was declined."),
        (NO_FUNDS, "insufficient_funds", "Your card has insufficient funds."),
    ],
)
def test_decline_is_final_cancels_the_order_returns_stock_and_emails(
    order, product, shopper, number, code, message, run_commit_hooks
):
    payment = pay(order, number, run_commit_hooks=run_commit_hooks)

    assert payment.status == PaymentStatus.FAILED
    assert (payment.failure_code, payment.failure_message) == (code, message)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == message
    assert Product.objects.get(pk=product.pk).stock == 5
    assert CartItem.objects.get(cart__user=shopper, product=product).quantity == 2
    [email] = mail.outbox
    assert email.to == [shopper.email]
    assert email.subject == f"Payment failed for order {order.number}"
    assert message in email.body
    assert "The order was cancelled and you have not been charged." in email.body

    payment_services.process_payment(payment_id=payment.pk)  # a rerun changes nothing

    assert Product.objects.get(pk=product.pk).stock == 5
    assert CartItem.objects.get(cart__user=shopper, product=product).quantity == 2
    assert len(mail.outbox) == 1
    assert len(charges(payment)) == 1


def test_transient_failure_raises_for_a_retry_and_records_nothing(
    order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        payment = payment_services.start_payment(order=order, card_token=card(TRANSIENT))

    result = payment_tasks.process_order_payment.enqueue(payment.pk)

    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is GatewayError
    with pytest.raises(GatewayError):
        payment_services.process_payment(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING
    # Each run: the charge, then a lookup by key that found nothing (so the outcome is known).
    assert (payment.attempts, payment.outcome_unknown_since) == (4, None)
    assert charges(payment) == []
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert mail.outbox == []


def test_a_retry_after_a_transient_failure_replays_the_same_key_and_charges_once(
    order, settings, django_capture_on_commit_callbacks, monkeypatch
):
    keys = []
    original = simulated.SimulatedGateway.charge

    def spy(self, **kwargs):
        keys.append(kwargs["idempotency_key"])
        return original(self, **kwargs)

    monkeypatch.setattr(simulated.SimulatedGateway, "charge", spy)
    with django_capture_on_commit_callbacks(execute=False):
        payment = payment_services.start_payment(order=order, card_token=card())
    settings.SIMULATED_GATEWAY_FAILURE_RATE = 1.0
    with pytest.raises(GatewayError):
        payment_services.process_payment(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING
    assert payment.outcome_unknown_since is not None  # the lookup could not reach it either
    settings.SIMULATED_GATEWAY_FAILURE_RATE = 0.0

    with django_capture_on_commit_callbacks(execute=True):
        payment = payment_services.process_payment(payment_id=payment.pk)

    assert payment.status == PaymentStatus.CAPTURED
    assert payment.outcome_unknown_since is None
    assert payment.attempts == 3
    assert keys == [payment.idempotency_key] * 2
    assert len(charges(payment, "captured")) == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


def test_rerunning_a_captured_payment_does_nothing(order, run_commit_hooks, monkeypatch):
    payment = pay(order, run_commit_hooks=run_commit_hooks)
    sent = len(mail.outbox)
    calls = []
    monkeypatch.setattr(simulated.SimulatedGateway, "charge", lambda self, **kw: calls.append(kw))

    with run_commit_hooks():
        for _ in range(3):
            payment_tasks.process_order_payment.enqueue(payment.pk)

    assert calls == []
    assert len(charges(payment)) == 1
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CAPTURED
    assert len(mail.outbox) == sent


def test_worker_killed_after_the_charge_before_our_commit_charges_once(
    order, django_capture_on_commit_callbacks, monkeypatch
):
    """The processor charged, then the worker died before our transaction committed."""
    with django_capture_on_commit_callbacks(execute=False):
        payment = payment_services.start_payment(order=order, card_token=card())
    original = order_services.transition_order

    def killed(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(order_services, "transition_order", killed)
    with pytest.raises(SystemExit):
        payment_services.process_payment(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING  # our record of the charge was lost
    assert len(charges(payment, "captured")) == 1  # but the processor charged
    monkeypatch.setattr(order_services, "transition_order", original)

    with django_capture_on_commit_callbacks(execute=True):
        payment_tasks.process_order_payment.enqueue(payment.pk)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CAPTURED
    [entry] = charges(payment)
    assert payment.gateway_reference == entry.reference
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


def test_charge_made_with_the_payments_key_before_the_task_ran_is_not_repeated(
    order, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        payment = payment_services.start_payment(order=order, card_token=card())
    first = simulated.SimulatedGateway().charge(
        token=payment.payment_method,
        amount=payment.amount,
        currency=payment.currency,
        idempotency_key=payment.idempotency_key,
    )

    with django_capture_on_commit_callbacks(execute=True):
        payment_tasks.process_order_payment.enqueue(payment.pk)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CAPTURED
    assert payment.gateway_reference == first.reference
    assert len(charges(payment)) == 1


def _stuck(payment, *, seconds_ago):
    Payment.objects.filter(pk=payment.pk).update(
        status=PaymentStatus.PROCESSING,
        processing_started_at=timezone.now() - datetime.timedelta(seconds=seconds_ago),
    )


def test_sweeper_re_enqueues_payments_stuck_past_the_deadline(
    shopper, product, settings, django_capture_on_commit_callbacks, enqueued
):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 120
    orders = [place_order(shopper, (product, 1)) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=False):
        stuck, recent, lost = (
            payment_services.start_payment(order=o, card_token=card()) for o in orders
        )
    _stuck(stuck, seconds_ago=300)
    _stuck(recent, seconds_ago=30)
    Payment.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - datetime.timedelta(seconds=300)
    )  # pending: its enqueue was lost

    with django_capture_on_commit_callbacks(execute=True):
        swept = payment_tasks.sweep_stuck_payments.enqueue()

    assert swept.return_value == {"payments": [stuck.pk, lost.pk], "refunds": [], "given_up": []}
    assert ("process_order_payment", [stuck.pk]) in enqueued
    statuses = dict(Payment.objects.values_list("pk", "status"))
    assert statuses == {
        stuck.pk: PaymentStatus.CAPTURED,
        recent.pk: PaymentStatus.PROCESSING,
        lost.pk: PaymentStatus.CAPTURED,
    }
    assert len(charges(stuck)) == 1
    assert charges(recent) == []


def test_a_swept_payment_is_left_alone_for_another_period(
    order, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        payment = payment_services.start_payment(order=order, card_token=card(TRANSIENT))
        _stuck(payment, seconds_ago=600)
        first = payment_services.sweep_stuck_payments()
        second = payment_services.sweep_stuck_payments()

    assert (first, second) == ([payment.pk], [])


def test_sweep_payments_command(order, django_capture_on_commit_callbacks, capsys):
    with django_capture_on_commit_callbacks(execute=False):
        payment = payment_services.start_payment(order=order, card_token=card())
    _stuck(payment, seconds_ago=600)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("sweep_payments")

    assert capsys.readouterr().out == (
        "Re-enqueued 1 payment(s) and 0 refund(s); re-checking 0 payment(s) given up on.\n"
    )
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CAPTURED


def test_past_the_charge_window_a_payment_with_nothing_charged_fails_and_keeps_the_order(
    order, shopper, product, settings, run_commit_hooks, monkeypatch
):
    settings.PAYMENT_CHARGE_WINDOW_SECONDS = 900
    with run_commit_hooks():
        payment = payment_services.start_payment(order=order, card_token=card(TRANSIENT))
    Payment.objects.filter(pk=payment.pk).update(
        created_at=timezone.now() - datetime.timedelta(seconds=901)
    )
    sent = []
    monkeypatch.setattr(simulated.SimulatedGateway, "charge", lambda self, **kw: sent.append(kw))

    with run_commit_hooks():
        payment = payment_services.process_payment(payment_id=payment.pk)

    assert sent == []  # past the window the charge is never sent again, only looked up
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "processing_error"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert Product.objects.get(pk=product.pk).stock == 3
    [email] = mail.outbox
    assert "Your order is saved and you have not been charged." in email.body
    monkeypatch.undo()

    retry = pay(order, run_commit_hooks=run_commit_hooks)

    assert retry.status == PaymentStatus.CAPTURED
    assert retry.idempotency_key != payment.idempotency_key
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


def test_one_payment_at_a_time_and_only_for_orders_awaiting_payment(
    order, django_capture_on_commit_callbacks, run_commit_hooks
):
    with django_capture_on_commit_callbacks(execute=False):
        in_flight = payment_services.start_payment(order=order, card_token=card())
        with pytest.raises(payment_services.PaymentInProgress):
            payment_services.start_payment(order=order, card_token=card())
    assert list(Payment.objects.filter(order=order)) == [in_flight]

    with run_commit_hooks():
        payment_tasks.process_order_payment.enqueue(in_flight.pk)
    with pytest.raises(payment_services.OrderNotPayable):
        payment_services.start_payment(order=order, card_token=card())
    assert Payment.objects.filter(order=order).count() == 1


def test_a_late_capture_for_an_order_paid_otherwise_is_refunded(
    order, run_commit_hooks, django_capture_on_commit_callbacks
):
    """A payment given up on went through after all, after the order was paid again."""
    with django_capture_on_commit_callbacks(execute=False):
        late = payment_services.start_payment(order=order, card_token=card())
    Payment.objects.filter(pk=late.pk).update(
        status=PaymentStatus.FAILED, failure_code="processing_error"
    )
    paid = pay(order, run_commit_hooks=run_commit_hooks)
    result = simulated.SimulatedGateway().charge(
        token=late.payment_method,
        amount=late.amount,
        currency=late.currency,
        idempotency_key=late.idempotency_key,
    )

    with run_commit_hooks():
        payment_services.record_charge_result(payment=late, result=result)

    late.refresh_from_db()
    assert late.status == PaymentStatus.REFUNDED
    assert late.refunded_amount == late.amount
    assert Payment.objects.get(pk=paid.pk).status == PaymentStatus.CAPTURED
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    [refund] = simulated.SimulatedGateway.ledger_refunds(charge_reference=result.reference)
    assert refund.amount == Decimal("60.00")


def test_card_number_never_reaches_the_database_logs_or_task_arguments(
    order, run_commit_hooks, enqueued, caplog
):
    caplog.set_level(logging.DEBUG)

    with run_commit_hooks():
        first = payment_services.start_payment(order=order, card_token=card(TRANSIENT))
    Payment.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=1)
    )
    with run_commit_hooks():
        payment_tasks.process_order_payment.enqueue(first.pk)
    pay(order, APPROVE, run_commit_hooks=run_commit_hooks)

    for row in Payment.objects.filter(order=order).values():
        text = " ".join(str(value) for value in row.values())
        assert TRANSIENT not in text
        assert APPROVE not in text
    assert TRANSIENT not in caplog.text
    assert APPROVE not in caplog.text
    assert enqueued
    for _name, args in enqueued:
        assert all(isinstance(arg, int) for arg in args)


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_for_one_payment_call_the_gateway_once(settings, monkeypatch):
    settings.SIMULATED_GATEWAY_LATENCY_MS = 200
    shopper = factories.UserFactory()
    product = factories.ProductFactory(price=Decimal("10.00"), stock=3)
    order = place_order(shopper, (product, 1))
    payment = Payment.objects.create(
        order=order,
        amount=order.total,
        status=PaymentStatus.PENDING,
        idempotency_key="payment-concurrent-test",
        payment_method=card().token,
    )
    calls = []
    original = simulated.SimulatedGateway.charge

    def spy(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        return original(self, **kwargs)

    monkeypatch.setattr(simulated.SimulatedGateway, "charge", spy)
    errors = []

    def run():
        try:
            payment_services.process_payment(payment_id=payment.pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert calls == ["payment-concurrent-test"]
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CAPTURED
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert len(charges(payment)) == 1


def test_the_worker_schedule_sweeps_stuck_payments_every_minute(
    order, django_capture_on_commit_callbacks
):
    # The schedules are a data migration's rows, which the transactional tests that may run
    # earlier (the browser tests) flush: apply it again (it is idempotent).
    schedules = importlib.import_module("project.background.migrations.0002_periodic_schedules")
    schedules.create_schedules(django_apps, None)
    schedule = Schedule.objects.get(name="sweep-stuck-payments")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats, schedule.cluster) == (
        Schedule.MINUTES,
        1,
        -1,
        "critical",
    )
    with django_capture_on_commit_callbacks(execute=False):
        payment = payment_services.start_payment(order=order, card_token=card())
    _stuck(payment, seconds_ago=600)

    # What the critical cluster's scheduler runs every minute:
    with django_capture_on_commit_callbacks(execute=True):
        import_string(schedule.func)()

    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CAPTURED
    assert len(charges(payment)) == 1
    assert Schedule.objects.filter(name="check-queue-depths", cluster="critical").exists()
