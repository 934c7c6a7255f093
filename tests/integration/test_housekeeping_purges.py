"""The scheduled purges on PostgreSQL: what is old and finished goes, in batches; what is young,
pending or in use stays. Each purge is run as operators and the scheduler run it: through
`manage.py purge` or the `purge` task."""

import ast
import datetime
import importlib
import io
import logging
import threading

import pytest
from django.apps import apps as django_apps
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule
from django_q.models import Task as Q2Task

from accounts.models import DataExport
from project import tasks as project_tasks
from project.audit.models import AuditEntry
from project.audit.services import record as record_audit
from project.background.models import Heartbeat, SentEmail, TaskRecord
from project.events.models import HandlerReceipt, OutboxEvent
from project.housekeeping import PURGES
from shop.models import Cart, CartItem, ReportJob
from shop.models.reports import ReportKind, ReportStatus
from tests.factories import CartFactory, CartItemFactory, UserFactory, VendorFactory


def days_ago(days: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


def purge(*names: str, dry_run: bool = False) -> str:
    out = io.StringIO()
    args = [arg for name in names for arg in ("--only", name)]
    call_command("purge", *args, *(["--dry-run"] if dry_run else []), stdout=out)
    return out.getvalue()


@pytest.fixture
def private_root(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {
            "BACKEND": "project.files.PrivateFileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private"},
        },
    }
    return tmp_path / "private"


def make_event(sequence: int, **fields) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type="test.happened",
        aggregate_type="test",
        aggregate_id="1",
        sequence=sequence,
        payload={},
        **fields,
    )


def test_delivered_outbox_events_older_than_the_setting_go_with_their_receipts(db, settings):
    settings.PURGE_OUTBOX_AFTER_DAYS = 7
    old = make_event(1, created_at=days_ago(9), delivered_at=days_ago(8))
    HandlerReceipt.objects.create(event=old, handler="a.b")
    young = make_event(2, created_at=days_ago(2), delivered_at=days_ago(2))
    parked = make_event(3, created_at=days_ago(30), parked_at=days_ago(29), attempts=5)
    pending = make_event(4, created_at=days_ago(30))

    assert purge("outbox", dry_run=True) == "outbox: would delete 1\n"
    assert OutboxEvent.objects.count() == 4
    assert purge("outbox") == "outbox: deleted 1\n"

    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {
        young.pk,
        parked.pk,
        pending.pk,
    }
    assert not HandlerReceipt.objects.exists()


def test_a_big_purge_deletes_in_batches_of_the_setting(db, settings):
    settings.PURGE_BATCH_SIZE = 2
    for sequence in range(5):
        make_event(sequence, created_at=days_ago(30), delivered_at=days_ago(30))

    with CaptureQueriesContext(connection) as queries:
        assert purge("outbox") == "outbox: deleted 5\n"

    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "events_outboxevent"')]
    assert len(deletes) == 3  # 2 + 2 + 1, each in its own transaction
    assert not OutboxEvent.objects.exists()


def make_record(status: str, finished_days_ago: float | None) -> TaskRecord:
    finished = days_ago(finished_days_ago) if finished_days_ago is not None else None
    return TaskRecord.objects.create(
        id=f"r{TaskRecord.objects.count()}",
        task_path="tests.fixtures.tasks.noop",
        queue="default",
        status=status,
        enqueued_at=finished or timezone.now(),
        next_attempt_at=finished or timezone.now(),
        finished_at=finished,
    )


def make_q2_result(name: str, *, success: bool, stopped_days_ago: float) -> Q2Task:
    stopped = days_ago(stopped_days_ago)
    return Q2Task.objects.create(
        id=name,
        name=name,
        func="tests.fixtures.tasks.noop",
        started=stopped,
        stopped=stopped,
        success=success,
    )


def test_finished_task_records_go_after_their_age_failed_ones_later(db, settings):
    settings.PURGE_TASKS_AFTER_DAYS = 14
    settings.PURGE_FAILED_TASKS_AFTER_DAYS = 90
    old_success = make_record(TaskResultStatus.SUCCESSFUL, 15)
    young_success = make_record(TaskResultStatus.SUCCESSFUL, 13)
    recent_failure = make_record(TaskResultStatus.FAILED, 30)
    old_failure = make_record(TaskResultStatus.FAILED, 91)
    ready = make_record(TaskResultStatus.READY, None)
    running = make_record(TaskResultStatus.RUNNING, None)
    make_q2_result("q2-old", success=True, stopped_days_ago=20)
    make_q2_result("q2-young", success=True, stopped_days_ago=1)
    make_q2_result("q2-failed", success=False, stopped_days_ago=20)

    assert purge("tasks") == "tasks: deleted 3\n"

    assert set(TaskRecord.objects.values_list("pk", flat=True)) == {
        young_success.pk,
        recent_failure.pk,
        ready.pk,
        running.pk,
    }
    assert not TaskRecord.objects.filter(pk__in=[old_success.pk, old_failure.pk]).exists()
    assert set(Q2Task.objects.values_list("id", flat=True)) == {"q2-young", "q2-failed"}


def make_sent_email(key: str, status: str, created_days_ago: float) -> SentEmail:
    email = SentEmail.objects.create(
        key=key, to="a@example.com", subject="Hi", template="t", status=status
    )
    SentEmail.objects.filter(pk=email.pk).update(created_at=days_ago(created_days_ago))
    return email


def test_sent_email_keys_go_after_their_age_but_never_while_sending_or_failed(db, settings):
    settings.PURGE_SENT_EMAILS_AFTER_DAYS = 120
    make_sent_email("old-sent", SentEmail.Status.SENT, 121)
    make_sent_email("young-sent", SentEmail.Status.SENT, 100)
    make_sent_email("old-sending", SentEmail.Status.SENDING, 200)
    make_sent_email("old-failed", SentEmail.Status.FAILED, 200)

    assert purge("emails") == "emails: deleted 1\n"

    assert set(SentEmail.objects.values_list("key", flat=True)) == {
        "young-sent",
        "old-sending",
        "old-failed",
    }


def test_the_default_ages_keep_email_keys_longer_than_any_task_could_be_retried(settings):
    # A task retried (or an event redelivered) after its email's key is gone would send the
    # email again: the keys must outlive both.
    assert settings.PURGE_SENT_EMAILS_AFTER_DAYS > settings.PURGE_FAILED_TASKS_AFTER_DAYS
    assert settings.PURGE_SENT_EMAILS_AFTER_DAYS > settings.PURGE_OUTBOX_AFTER_DAYS


def test_expired_export_and_report_files_leave_the_storage(db, settings, private_root):
    user = UserFactory()
    vendor = VendorFactory()
    expired_export = DataExport.objects.create(
        user=user, status=DataExport.Status.READY, expires_at=days_ago(1)
    )
    expired_export.file.save("old.zip", ContentFile(b"old"))
    current_export = DataExport.objects.create(
        user=user, status=DataExport.Status.READY, expires_at=timezone.now() + datetime.timedelta(1)
    )
    current_export.file.save("current.zip", ContentFile(b"current"))
    today = timezone.localdate()
    report = {"kind": ReportKind.VENDOR_SALES_BY_DAY, "vendor": vendor, "date_from": today}
    expired_report = ReportJob.objects.create(
        **report, date_to=today, status=ReportStatus.DONE, expires_at=days_ago(1)
    )
    expired_report.file.save("old.csv", ContentFile(b"old"))
    current_report = ReportJob.objects.create(
        **report,
        date_to=today,
        status=ReportStatus.DONE,
        expires_at=timezone.now() + datetime.timedelta(days=1),
    )
    current_report.file.save("current.csv", ContentFile(b"current"))
    old_files = [private_root / expired_export.file.name, private_root / expired_report.file.name]
    current_files = [
        private_root / current_export.file.name,
        private_root / current_report.file.name,
    ]
    assert all(path.is_file() for path in old_files + current_files)

    assert purge("exports", "reports") == "exports: deleted 1\nreports: deleted 1\n"

    assert not any(path.exists() for path in old_files)
    assert all(path.is_file() for path in current_files)
    expired_export.refresh_from_db()
    expired_report.refresh_from_db()
    assert (expired_export.status, expired_export.file.name) == (DataExport.Status.EXPIRED, "")
    assert (expired_report.status, expired_report.file.name) == (ReportStatus.EXPIRED, "")


def age_cart(cart: Cart, days: float) -> None:
    Cart.objects.filter(pk=cart.pk).update(updated_at=days_ago(days))


def test_guest_carts_untouched_for_the_setting_go_users_carts_never(db, settings):
    settings.PURGE_CARTS_AFTER_DAYS = 30
    abandoned = CartItemFactory(cart=CartFactory()).cart
    recent = CartItemFactory(cart=CartFactory()).cart
    users = CartItemFactory(cart=CartFactory(user=UserFactory())).cart
    age_cart(abandoned, 31)
    age_cart(recent, 29)
    age_cart(users, 400)

    assert purge("carts") == "carts: deleted 1\n"

    assert set(Cart.objects.values_list("pk", flat=True)) == {recent.pk, users.pk}
    assert not CartItem.objects.filter(cart_id=abandoned.pk).exists()


def test_a_guest_cart_in_use_right_now_is_not_purged(transactional_db, settings):
    """A cart locked by a checkout, a merge at sign-in or an edit is skipped, not waited for."""
    settings.PURGE_CARTS_AFTER_DAYS = 30
    in_use = CartFactory()
    age_cart(in_use, 31)
    locked, release = threading.Event(), threading.Event()

    def hold_the_cart_lock():
        try:
            with transaction.atomic():
                Cart.objects.select_for_update().get(pk=in_use.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_cart_lock)
    holder.start()
    try:
        assert locked.wait(10)
        assert purge("carts") == "carts: deleted 0\n"
    finally:
        release.set()
        holder.join()
    assert Cart.objects.filter(pk=in_use.pk).exists()


def test_expired_session_rows_go_live_ones_stay(db):
    Session.objects.create(session_key="expired", session_data="x", expire_date=days_ago(1))
    Session.objects.create(
        session_key="live", session_data="x", expire_date=timezone.now() + datetime.timedelta(1)
    )

    assert purge("sessions") == "sessions: deleted 1\n"

    assert list(Session.objects.values_list("session_key", flat=True)) == ["live"]


def test_heartbeats_of_processes_long_silent_go(db, settings):
    settings.PURGE_HEARTBEATS_AFTER_DAYS = 1
    for instance, days in (("gone:1", 2), ("alive:2", 0)):
        Heartbeat.objects.create(
            kind=Heartbeat.Kind.WORKER,
            queue="default",
            instance=instance,
            started_at=days_ago(3),
            beat_at=days_ago(days),
        )

    assert purge("heartbeats") == "heartbeats: deleted 1\n"

    assert list(Heartbeat.objects.values_list("instance", flat=True)) == ["alive:2"]


def test_the_audit_log_is_never_purged(db, settings):
    for name in ("PURGE_OUTBOX_AFTER_DAYS", "PURGE_TASKS_AFTER_DAYS", "PURGE_CARTS_AFTER_DAYS"):
        setattr(settings, name, 0)
    record_audit("auth.login")

    purge()

    assert AuditEntry.objects.count() == 1


def test_each_run_writes_one_log_line_with_its_count(db, caplog):
    Session.objects.create(session_key="expired", session_data="x", expire_date=days_ago(1))

    with caplog.at_level(logging.INFO, logger="bazaar.housekeeping"):
        result = project_tasks.purge.enqueue(name="sessions")

    assert result.return_value == 1
    [line] = [r for r in caplog.records if r.name == "bazaar.housekeeping"]
    assert line.getMessage().startswith("Purge sessions deleted 1 in ")
    assert line.event["count"] == 1


def test_every_purge_runs_hourly_through_the_guarded_scheduler(db):
    # The schedules are data migrations' rows, which transactional tests that may run earlier
    # flush: apply them again, in order (they are idempotent).
    for name in (
        "project.background.migrations.0005_purge_expired_files_schedules",
        "project.background.migrations.0007_purge_schedules",
        "project.background.migrations.0008_purge_api_refresh_tokens_schedule",
        "project.background.migrations.0009_purge_idempotency_schedule",
        "webhooks.migrations.0003_schedules",
    ):
        migration = importlib.import_module(name)
        migration.create_schedules(django_apps, None)
    schedules = {
        schedule.name: schedule for schedule in Schedule.objects.filter(name__startswith="purge-")
    }
    scheduled = set()
    for schedule in schedules.values():
        assert schedule.func == "project.background.schedules.run_scheduled"
        name, func, purge_name = ast.literal_eval(schedule.args)
        assert (name, func) == (schedule.name, "project.tasks.enqueue_purge")
        assert schedule.minutes <= 60
        scheduled.add(purge_name)
    assert scheduled == set(PURGES)
