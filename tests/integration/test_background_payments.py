"""Payments on real `critical` workers: every one captured, and never charged twice, through
crashes, duplicates and a flooded analytics queue. The simulated gateway keeps its own
ledger of every charge (a file shared by the workers and the test), so the tests count them."""

import os
import signal
import time
from decimal import Decimal

import pytest
from django.tasks import TaskResultStatus

from project.background.models import TaskRecord
from shop.gateways import CardToken
from shop.gateways.simulated import SimulatedGateway
from shop.models import OrderStatus, Payment, PaymentStatus
from shop.services import payments as payment_services
from shop.tasks import payments as payment_tasks
from tests import factories
from tests.fixtures import tasks as fixture_tasks
from tests.fixtures.workers import q_workers  # noqa: F401 - the fixture

PAYMENT_TASK = "shop.tasks.payments.process_order_payment"


@pytest.fixture
def ledger(q_workers, settings, tmp_path):  # noqa: F811
    """One gateway ledger for the test process and its workers."""
    path = tmp_path / "gateway-ledger.sqlite3"
    settings.SIMULATED_GATEWAY_LEDGER_PATH = path
    q_workers.extra_env["SIMULATED_GATEWAY_LEDGER_PATH"] = str(path)
    return path


def place_payment(customer=None) -> Payment:
    order = factories.OrderFactory(
        customer=customer or factories.UserFactory(), total=Decimal("42.50")
    )
    token = CardToken(token="pm_sim_ok_0123456789abcdef", brand="Visa", last4="4242")
    return payment_services.start_payment(order=order, card_token=token)


def charges(payment: Payment) -> list:
    return SimulatedGateway.ledger_charges(idempotency_key=payment.idempotency_key)


def captured(payment: Payment) -> bool:
    payment.refresh_from_db()
    return payment.status == PaymentStatus.CAPTURED


def test_fifty_payments_are_all_captured_once(q_workers, ledger):  # noqa: F811
    q_workers.start("critical")
    customer = factories.UserFactory()

    payments = [place_payment(customer) for _ in range(50)]

    q_workers.wait_for(
        lambda: Payment.objects.filter(status=PaymentStatus.CAPTURED).count() == 50, timeout=60
    )
    assert all(len(charges(payment)) == 1 for payment in payments)
    assert len(SimulatedGateway.ledger_charges()) == 50
    records = TaskRecord.objects.filter(task_path=PAYMENT_TASK)
    assert records.count() == 50
    assert set(records.values_list("status", flat=True)) == {"SUCCESSFUL"}


def test_a_worker_killed_mid_charge_leaves_the_payment_captured_exactly_once(
    q_workers,  # noqa: F811
    ledger,
):
    # Each charge takes 2.5 s at the processor: long enough to kill the worker in the middle.
    [cluster] = q_workers.start("critical", SIMULATED_GATEWAY_LATENCY_MS="2500").values()

    payment = place_payment()

    record = q_workers.wait_for(
        lambda: TaskRecord.objects.filter(task_path=PAYMENT_TASK, status="RUNNING").first(),
        timeout=20,
    )
    q_workers.wait_for(
        lambda: Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PROCESSING).exists(),
        timeout=10,
        interval=0.05,
    )
    time.sleep(0.5)  # now inside the gateway call
    victim = int(record.worker_ids[-1].rsplit(":", 1)[1])
    assert victim in cluster.descendants()
    os.kill(victim, signal.SIGKILL)

    q_workers.wait_for(lambda: captured(payment), timeout=60)
    assert len(charges(payment)) == 1
    assert payment.order.__class__.objects.get(pk=payment.order_id).status == OrderStatus.PAID
    record.refresh_from_db()
    assert (record.status, record.attempts) == ("SUCCESSFUL", 2)
    assert record.errors[0]["exception_class_path"] == "project.background.runner.WorkerLost"


def test_a_duplicated_payment_task_charges_once(q_workers, ledger):  # noqa: F811
    payment = place_payment()
    duplicates = [payment_tasks.process_order_payment.enqueue(payment.pk) for _ in range(3)]
    q_workers.start("critical", Q_WORKERS_CRITICAL="4")

    q_workers.wait_for(lambda: captured(payment), timeout=30)
    for result in duplicates:
        q_workers.wait_for(
            lambda result=result: (result.refresh(), result.is_finished)[1], timeout=30
        )
        assert result.status == TaskResultStatus.SUCCESSFUL
    assert len(charges(payment)) == 1
    assert TaskRecord.objects.filter(task_path=PAYMENT_TASK).count() == 4


def test_a_flooded_analytics_queue_does_not_delay_a_payment(q_workers, ledger):  # noqa: F811
    for _ in range(1000):
        fixture_tasks.sleep_for.enqueue(1.0)
    q_workers.start("critical", "analytics")
    time.sleep(1)  # the analytics workers are busy

    started = time.monotonic()
    payment = place_payment()
    q_workers.wait_for(lambda: captured(payment), timeout=30)
    elapsed = time.monotonic() - started

    assert elapsed < 10  # an order of magnitude, not a benchmark
    waiting = TaskRecord.objects.filter(queue="analytics", status="READY").count()
    assert waiting > 900
    assert len(charges(payment)) == 1
