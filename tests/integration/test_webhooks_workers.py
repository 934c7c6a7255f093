"""Webhook deliveries on a real Django-Q2 worker of the `default` queue (run_worker), to a
real receiving server: retried with backoff after a failure, and never lost when the worker
sending it is killed mid-request (the attempt's lease ends, the task runs again, the
receiver gets the same delivery id and can drop the repeat)."""

# The fixtures are imported, then named by each test that uses them.
# ruff: noqa: F811

import os
import signal

from django.tasks import TaskResultStatus

from project.background.models import TaskRecord
from tests import factories
from tests.fixtures.webhook_receiver import webhook_receiver  # noqa: F401
from tests.fixtures.workers import q_workers  # noqa: F401
from webhooks import services
from webhooks.models import Delivery, DeliveryState

WORKER_ENV = {
    "Q_TIMEOUT_DEFAULT": "5",
    "Q_RETRY_DEFAULT": "10",
    "Q_POLL_DEFAULT": "0.05",
    "Q_WORKERS_DEFAULT": "2",
    "WEBHOOKS_TIMEOUT_SECONDS": "3",
    "WEBHOOKS_RETRY_BASE_SECONDS": "0.5",
}


def a_test_event(receiver):
    membership = factories.VendorMembershipFactory()
    endpoint = services.create_endpoint(
        vendor=membership.vendor,
        url=receiver.url,
        events=["order.paid"],
        acting_user=membership.user,
    )
    receiver.secrets.append(endpoint.secret)
    return services.send_test_event(
        vendor=membership.vendor, endpoint_id=endpoint.pk, acting_user=membership.user
    )


def state_of(delivery: Delivery) -> str:
    delivery.refresh_from_db()
    return delivery.state


def test_a_failed_attempt_is_retried_after_its_backoff_by_the_worker(q_workers, webhook_receiver):
    q_workers.start("default", **WORKER_ENV)
    webhook_receiver.answer(500, 502)

    delivery = a_test_event(webhook_receiver)

    q_workers.wait_for(lambda: state_of(delivery) == DeliveryState.DELIVERED, timeout=30)
    assert delivery.attempts == 3
    received = webhook_receiver.received
    assert len(received) == 3
    assert all(request.verified for request in received)
    assert {request.delivery for request in received} == {str(delivery.uuid)}
    assert received[0].json["type"] == "ping"
    # Each attempt was its own task, none failed: the delivery owns its retries.
    records = TaskRecord.objects.filter(task_path="webhooks.tasks.deliver_webhook")
    assert records.count() == 3
    assert set(records.values_list("status", flat=True)) == {TaskResultStatus.SUCCESSFUL}
    assert set(records.values_list("queue", flat=True)) == {"default"}


def test_a_worker_killed_mid_delivery_leaves_it_retried_never_lost(q_workers, webhook_receiver):
    [cluster] = q_workers.start("default", **WORKER_ENV).values()
    webhook_receiver.hang()

    delivery = a_test_event(webhook_receiver)
    q_workers.wait_for(webhook_receiver.holding.is_set, timeout=20)
    assert state_of(delivery) == DeliveryState.SENDING
    record = TaskRecord.objects.get(task_path="webhooks.tasks.deliver_webhook")
    victim = int(record.worker_ids[-1].rsplit(":", 1)[1])
    assert victim in cluster.descendants()
    os.kill(victim, signal.SIGKILL)
    webhook_receiver.release()

    q_workers.wait_for(lambda: state_of(delivery) == DeliveryState.DELIVERED, timeout=60)
    assert delivery.attempts == 2
    first, second = webhook_receiver.received
    assert first.delivery == second.delivery == str(delivery.uuid)
    assert first.body == second.body
    # The task the killed worker ran is run again and finishes (after the delivery's commit).
    q_workers.wait_for(
        lambda: TaskRecord.objects.get(pk=record.pk).status == TaskResultStatus.SUCCESSFUL,
        timeout=10,
    )
    record.refresh_from_db()
    assert record.errors[0]["exception_class_path"] == "project.background.runner.WorkerLost"
