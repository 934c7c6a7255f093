"""/metrics, the queue-depth alert and the staff's view of failed tasks."""

import datetime
import logging

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from project.background import monitoring, notify, runner
from project.background.models import TaskRecord
from project.events.models import OutboxEvent
from tests.fixtures import tasks as fixture_tasks
from tests.fixtures.twofactor import sign_in_with_second_factor

Q2_TASKS = {
    "default": {
        "BACKEND": "project.background.backend.DjangoQ2Backend",
        "QUEUES": ["default", "critical", "emails", "analytics"],
    }
}
ALERT_KEYS = [f"background:queue-alert:{queue}" for queue in ("critical", "emails", "analytics")]


@pytest.fixture
def q2_backend(settings):
    settings.TASKS = Q2_TASKS
    settings.TASK_FAILURE_WEBHOOK_URL = ""
    cache.delete_many([*ALERT_KEYS, "background:queue-depth-check"])


def make_record(**fields) -> TaskRecord:
    now = timezone.now()
    defaults = {
        "id": f"r{TaskRecord.objects.count():031d}",
        "task_path": "tests.fixtures.tasks.noop",
        "queue": "critical",
        "enqueued_at": now,
        "next_attempt_at": now,
    }
    return TaskRecord.objects.create(**{**defaults, **fields})


@pytest.mark.django_db
def test_metrics_are_refused_to_other_addresses_without_the_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    wrong = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    # A forwarded-for header proves nothing.
    spoofed = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert spoofed.status_code == 403


@pytest.mark.django_db
def test_metrics_open_to_an_allowed_address_or_the_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    with_token = client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-token"
    )
    assert with_token.status_code == 200
    assert with_token["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_no_token_configured_means_addresses_only(client, settings):
    settings.METRICS_TOKEN = ""

    assert (
        client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer ").status_code
        == 403
    )


@pytest.mark.django_db
def test_metrics_report_depth_age_runs_failures_retries_and_durations(
    client, q2_backend, django_assert_max_num_queries
):
    now = timezone.now()
    make_record(queue="analytics", next_attempt_at=now - datetime.timedelta(seconds=90))
    make_record(queue="analytics", next_attempt_at=now - datetime.timedelta(seconds=10))
    make_record(queue="analytics", next_attempt_at=now + datetime.timedelta(seconds=60))
    make_record(status="SUCCESSFUL", attempts=3, duration=0.2, finished_at=now)
    make_record(status="SUCCESSFUL", attempts=1, duration=3.0, finished_at=now)
    make_record(status="FAILED", attempts=3, duration=0.01, finished_at=now)

    # Queue stats, counters, durations, outbox, and the liveness heartbeats: one query each.
    with django_assert_max_num_queries(6):
        body = client.get("/metrics").content.decode()

    assert 'bazaar_task_queue_depth{queue="analytics"} 2.0' in body
    assert 'bazaar_task_queue_depth{queue="critical"} 0.0' in body
    assert 'bazaar_task_queue_scheduled{queue="analytics"} 1.0' in body
    age_line = next(
        line
        for line in body.splitlines()
        if line.startswith('bazaar_task_queue_oldest_age_seconds{queue="analytics"}')
    )
    assert 89 <= float(age_line.split()[-1]) <= 120
    labels = 'queue="critical",task="tests.fixtures.tasks.noop"'
    assert f"bazaar_task_runs_total{{{labels}}} 7.0" in body
    assert f"bazaar_task_retries_total{{{labels}}} 4.0" in body
    assert f"bazaar_task_failures_total{{{labels}}} 1.0" in body
    assert f"bazaar_task_successes_total{{{labels}}} 2.0" in body
    task = 'task="tests.fixtures.tasks.noop"'
    assert f'bazaar_task_duration_seconds_bucket{{le="0.25",{task}}} 2.0' in body
    assert f'bazaar_task_duration_seconds_bucket{{le="5.0",{task}}} 3.0' in body
    assert f"bazaar_task_duration_seconds_count{{{task}}} 3.0" in body


@pytest.mark.django_db
def test_a_deep_queue_alerts_once_per_interval(q2_backend, settings, caplog, monkeypatch):
    settings.QUEUE_ALERT_THRESHOLDS = {"critical": 2, "emails": 100, "analytics": 100}
    settings.QUEUE_ALERT_INTERVAL = 60
    posted = []
    monkeypatch.setattr(notify, "post_webhook", posted.append)
    for _ in range(3):
        make_record()

    with caplog.at_level(logging.WARNING, logger="project.background"):
        assert monitoring.check_queue_depths() == ["critical"]
        assert monitoring.check_queue_depths() == []  # within the interval: quiet

    assert posted == [
        {
            "event": "queue_depth_alert",
            "queue": "critical",
            "depth": 3,
            "threshold": 2,
            "oldest_age_seconds": posted[0]["oldest_age_seconds"],
        }
    ]
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert "queue=critical depth=3 threshold=2" in warning.getMessage()
    assert warning.event["event"] == "queue_depth_alert"

    cache.delete("background:queue-alert:critical")  # the interval has passed
    assert monitoring.check_queue_depths() == ["critical"]


@pytest.mark.django_db
def test_a_queue_at_its_threshold_does_not_alert(q2_backend, settings, monkeypatch):
    settings.QUEUE_ALERT_THRESHOLDS = {"critical": 2}
    monkeypatch.setattr(notify, "post_webhook", pytest.fail)
    make_record()
    make_record()

    assert monitoring.check_queue_depths() == []


@pytest.mark.django_db
def test_staff_see_failed_tasks_and_can_retry_them(client, staff, q2_backend):
    result = fixture_tasks.always_fails.enqueue(order_id=7)
    for _ in range(3):
        TaskRecord.objects.filter(pk=result.id).update(next_attempt_at=timezone.now())
        runner.run_task(result.id)
    succeeded = make_record(status="SUCCESSFUL", attempts=1)
    sign_in_with_second_factor(client, staff)
    changelist = reverse("admin:background_taskrecord_changelist")

    page = client.get(changelist, {"status__exact": "FAILED"})

    assert page.status_code == 200
    body = page.content.decode()
    assert result.id in body
    assert "RuntimeError: the processor is on fire" in body
    assert succeeded.id not in body
    detail = client.get(reverse("admin:background_taskrecord_change", args=[result.id]))
    assert "the processor is on fire" in detail.content.decode()

    client.post(changelist, {"action": "retry_now", "_selected_action": [result.id]})

    record = TaskRecord.objects.get(pk=result.id)
    assert (record.status, record.attempts, record.max_attempts) == ("READY", 3, 6)
    assert runner.run_task(result.id) == "retrying"


@pytest.mark.django_db
def test_shoppers_cannot_see_tasks(client, shopper):
    client.force_login(shopper)

    response = client.get(reverse("admin:background_taskrecord_changelist"))

    assert response.status_code == 302


def test_metrics_report_the_outbox_lag_and_parked_events(client, db):
    now = timezone.now()
    for sequence, (age, parked) in enumerate([(120, False), (5, False), (600, True)], start=1):
        OutboxEvent.objects.create(
            event_type="shop.OrderPlaced",
            aggregate_type="shop.order",
            aggregate_id="1",
            sequence=sequence,
            payload={},
            created_at=now - datetime.timedelta(seconds=age),
            parked_at=now if parked else None,
        )
    OutboxEvent.objects.create(
        event_type="shop.OrderPlaced",
        aggregate_type="shop.order",
        aggregate_id="2",
        sequence=1,
        payload={},
        created_at=now - datetime.timedelta(seconds=900),
        delivered_at=now,
    )

    body = client.get("/metrics").content.decode()

    assert "bazaar_outbox_pending 2.0" in body
    assert "bazaar_outbox_parked 1.0" in body
    lag = next(line for line in body.splitlines() if line.startswith("bazaar_outbox_lag_seconds "))
    assert 119 <= float(lag.split()[-1]) <= 150


@pytest.mark.django_db
def test_in_production_only_the_token_opens_metrics(client, settings):
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = "s3cret-token"
    settings.TRUSTED_PROXIES = ["127.0.0.1"]

    # Behind a proxy on the same host every request comes from 127.0.0.1.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    spoofed = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert spoofed.status_code == 403
    with_token = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer s3cret-token"
    )
    assert with_token.status_code == 200


@pytest.mark.django_db
def test_a_spoofed_forwarded_for_never_opens_metrics_outside_production(client, settings):
    settings.METRICS_TOKEN = ""
    settings.TRUSTED_PROXIES = ["10.0.0.1"]

    untrusted = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="127.0.0.1")
    # From a trusted proxy, the client is the right-most address the proxy appended.
    via_proxy = client.get(
        "/metrics", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.9"
    )

    assert untrusted.status_code == 403
    assert via_proxy.status_code == 403
