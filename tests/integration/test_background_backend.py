"""The Django-Q2 tasks backend and its runner, driven in-process (no worker processes).

The worker tests (test_background_workers.py) prove the same behaviour end to end; these pin
the rules precisely: what enqueue writes, how a delivery is judged, how retries are timed.
"""

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.cache import cache
from django.db import transaction
from django.tasks import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from project.background import conf, runner
from project.background.models import TaskRecord
from tests.fixtures import tasks as fixture_tasks

Q2_TASKS = {
    "default": {
        "BACKEND": "project.background.backend.DjangoQ2Backend",
        "QUEUES": ["default", "critical", "emails", "analytics"],
    }
}


@pytest.fixture
def q2_backend(settings):
    settings.TASKS = Q2_TASKS
    settings.TASK_RETRY_BASE_DELAY = 2
    settings.TASK_RETRY_JITTER = 0.25
    settings.TASK_MAX_ATTEMPTS = 3
    cache.clear()


def broker_rows(record_id: str) -> list[OrmQ]:
    return [row for row in OrmQ.objects.all() if row.task.get("args") == (record_id,)]


@pytest.mark.django_db
def test_enqueue_records_the_task_and_queues_it_on_its_cluster(q2_backend):
    result = fixture_tasks.flaky.enqueue("k", failures=0)

    record = TaskRecord.objects.get(pk=result.id)
    assert record.task_path == "tests.fixtures.tasks.flaky"
    assert (record.queue, record.status, record.attempts) == ("critical", "READY", 0)
    assert (record.args, record.kwargs) == (["k"], {"failures": 0})
    [row] = broker_rows(result.id)
    assert row.key == "critical"
    package = SignedPackage.loads(row.payload)
    assert package["func"] == "project.background.runner.run_task"
    assert package["cluster"] == "critical"
    assert result.status == TaskResultStatus.READY
    assert result.attempts == 0


@pytest.mark.django_db
def test_each_queue_goes_to_its_own_cluster(q2_backend):
    fixture_tasks.noop.using(queue_name="emails").enqueue()
    fixture_tasks.sleep_for.enqueue(0)
    fixture_tasks.noop.enqueue()

    assert sorted(OrmQ.objects.values_list("key", flat=True)) == [
        "analytics",
        "critical",
        "emails",
    ]


@pytest.mark.django_db
def test_a_rolled_back_transaction_enqueues_nothing(q2_backend):
    def failing_request():
        with transaction.atomic():
            fixture_tasks.noop.enqueue(1)
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        failing_request()

    assert TaskRecord.objects.count() == 0
    assert OrmQ.objects.count() == 0


@pytest.mark.django_db
def test_run_after_delays_the_broker_row(q2_backend):
    later = timezone.now() + datetime.timedelta(minutes=5)

    result = fixture_tasks.noop.using(run_after=later).enqueue(1)

    [row] = broker_rows(result.id)
    assert row.lock == later
    assert TaskRecord.objects.get(pk=result.id).next_attempt_at == later
    assert runner.run_task(result.id) == "skipped"  # delivered early: not run


@pytest.mark.django_db
def test_get_result_reads_the_record_back(q2_backend):
    result = fixture_tasks.noop.enqueue(5)

    assert runner.run_task(result.id) == "succeeded"

    fetched = fixture_tasks.noop.get_result(result.id)
    assert fetched.status == TaskResultStatus.SUCCESSFUL
    assert fetched.return_value == 5
    assert fetched.attempts == 1
    assert fetched.errors == []
    assert fetched.started_at is not None
    assert fetched.finished_at is not None
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL


@pytest.mark.django_db
def test_get_result_of_an_unknown_id_raises(q2_backend):
    with pytest.raises(TaskResultDoesNotExist):
        fixture_tasks.noop.get_result("nope")


@pytest.mark.django_db
def test_a_failed_attempt_is_retried_with_exponential_backoff(q2_backend):
    cache.delete("backoff")
    result = fixture_tasks.flaky.enqueue("backoff", failures=2)
    delays = []
    for expected in (2, 4):
        before = timezone.now()
        assert runner.run_task(result.id) == "retrying"
        record = TaskRecord.objects.get(pk=result.id)
        delay = (record.next_attempt_at - before).total_seconds()
        assert expected * 0.75 - 0.1 <= delay <= expected * 1.25 + 0.1
        delays.append(delay)
        # The retry is a broker row hidden until it is due.
        assert max(row.lock for row in broker_rows(result.id)) == record.next_attempt_at
        assert runner.run_task(result.id) == "skipped"  # not due yet
        TaskRecord.objects.filter(pk=result.id).update(next_attempt_at=timezone.now())

    assert runner.run_task(result.id) == "succeeded"
    fetched = fixture_tasks.flaky.get_result(result.id)
    assert fetched.status == TaskResultStatus.SUCCESSFUL
    assert fetched.attempts == 3
    assert [error.exception_class_path for error in fetched.errors] == ["builtins.RuntimeError"] * 2
    assert "flaky failure number 2" in fetched.errors[1].traceback
    assert delays[1] > delays[0]


def test_retry_delays_double_with_bounded_jitter(settings):
    settings.TASK_RETRY_BASE_DELAY = 2
    settings.TASK_RETRY_MAX_DELAY = 300
    settings.TASK_RETRY_JITTER = 0.25
    samples = {attempt: [conf.retry_delay(attempt) for _ in range(200)] for attempt in (1, 2, 3)}

    for attempt, expected in ((1, 2), (2, 4), (3, 8)):
        assert all(expected * 0.75 <= delay <= expected * 1.25 for delay in samples[attempt])
        assert len(set(samples[attempt])) > 100  # jittered, not fixed
    settings.TASK_RETRY_MAX_DELAY = 5
    assert conf.retry_delay(10) <= 5 * 1.25


@pytest.mark.django_db
def test_finished_tasks_are_never_run_again(q2_backend):
    cache.delete("once")
    result = fixture_tasks.flaky.enqueue("once", failures=0)
    assert runner.run_task(result.id) == "succeeded"

    assert runner.run_task(result.id) == "skipped"
    assert fixture_tasks.count("once") == 1


@pytest.mark.django_db
def test_a_running_attempt_with_a_live_lease_is_left_alone(q2_backend):
    result = fixture_tasks.noop.enqueue(1)
    TaskRecord.objects.filter(pk=result.id).update(
        status="RUNNING",
        attempts=1,
        worker_ids=["elsewhere:1"],
        lease_expires_at=timezone.now() + datetime.timedelta(seconds=30),
    )

    assert runner.run_task(result.id) == "skipped"

    record = TaskRecord.objects.get(pk=result.id)
    assert (record.status, record.attempts) == ("RUNNING", 1)
    # A check-back row, due when the lease ends, recovers the task if that worker died.
    assert max(row.lock for row in broker_rows(result.id)) == record.lease_expires_at


@pytest.mark.django_db
def test_an_attempt_whose_worker_died_counts_and_the_task_runs_again(q2_backend):
    result = fixture_tasks.noop.enqueue(1)
    TaskRecord.objects.filter(pk=result.id).update(
        status="RUNNING",
        attempts=1,
        worker_ids=["gone:1"],
        lease_expires_at=timezone.now() - datetime.timedelta(seconds=1),
    )

    assert runner.run_task(result.id) == "succeeded"

    fetched = fixture_tasks.noop.get_result(result.id)
    assert fetched.attempts == 2
    assert [error.exception_class_path for error in fetched.errors] == [
        "project.background.runner.WorkerLost"
    ]


@pytest.mark.django_db
def test_a_task_that_keeps_killing_its_worker_fails_instead_of_looping(
    q2_backend, django_capture_on_commit_callbacks
):
    result = fixture_tasks.noop.enqueue(1)
    TaskRecord.objects.filter(pk=result.id).update(
        status="RUNNING",
        attempts=3,
        worker_ids=["a:1", "b:2", "c:3"],
        lease_expires_at=timezone.now() - datetime.timedelta(seconds=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert runner.run_task(result.id) == "skipped"

    record = TaskRecord.objects.get(pk=result.id)
    assert (record.status, record.attempts) == ("FAILED", 3)
    assert record.failure_notified_at is not None


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(settings):
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.TASK_FAILURE_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        yield _Receiver.received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_the_last_failure_marks_failed_and_calls_the_webhook_once(
    q2_backend, webhook, django_capture_on_commit_callbacks
):
    result = fixture_tasks.always_fails.enqueue(order_id=42)
    outcomes = []
    for _ in range(3):
        TaskRecord.objects.filter(pk=result.id).update(next_attempt_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            outcomes.append(runner.run_task(result.id))
    with django_capture_on_commit_callbacks(execute=True):
        outcomes.append(runner.run_task(result.id))  # a late redelivery

    assert outcomes == ["retrying", "retrying", "failed", "skipped"]
    fetched = fixture_tasks.always_fails.get_result(result.id)
    assert fetched.status == TaskResultStatus.FAILED
    assert fetched.attempts == 3
    assert len(fetched.errors) == 3
    assert webhook == [
        {
            "event": "task_failed",
            "task": "tests.fixtures.tasks.always_fails",
            "id": result.id,
            "queue": "critical",
            "args": "order_id=42",
            "error": "RuntimeError: the processor is on fire",
            "attempts": 3,
            "request_id": "",
        }
    ]


@pytest.mark.django_db
def test_a_domain_error_is_not_retried(q2_backend):
    result = fixture_tasks.refuses.enqueue(order_id=1)

    assert runner.run_task(result.id) == "failed"

    record = TaskRecord.objects.get(pk=result.id)
    assert (record.status, record.attempts) == ("FAILED", 1)
    assert record.errors[0]["exception_class_path"] == "project.errors.DomainError"


@pytest.mark.django_db
def test_the_request_id_travels_with_the_task(q2_backend):
    from project.request_context import current_request_id

    token = current_request_id.set("req-123")
    try:
        result = fixture_tasks.noop.enqueue(1)
    finally:
        current_request_id.reset(token)

    assert TaskRecord.objects.get(pk=result.id).request_id == "req-123"
