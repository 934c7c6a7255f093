"""Purging what the background machinery leaves behind: finished task records, send-once
email keys and the heartbeats of processes long gone."""

from django.conf import settings
from django.db.models import Q
from django.tasks import TaskResultStatus
from django_q.models import Task as Q2Task

from project.background.models import Heartbeat, SentEmail, TaskRecord
from project.housekeeping import delete_in_batches, older_than


def purge_finished_tasks(*, dry_run: bool = False) -> int:
    """Delete task records that succeeded more than PURGE_TASKS_AFTER_DAYS ago or failed for
    good more than PURGE_FAILED_TASKS_AFTER_DAYS ago (staff may still retry those until then),
    and Django-Q2's own results of the same age. Ready and running tasks are never touched."""
    finished = TaskRecord.objects.filter(
        Q(
            status=TaskResultStatus.SUCCESSFUL,
            finished_at__lt=older_than(settings.PURGE_TASKS_AFTER_DAYS),
        )
        | Q(
            status=TaskResultStatus.FAILED,
            finished_at__lt=older_than(settings.PURGE_FAILED_TASKS_AFTER_DAYS),
        )
    )
    q2_results = Q2Task.objects.filter(
        Q(success=True, stopped__lt=older_than(settings.PURGE_TASKS_AFTER_DAYS))
        | Q(success=False, stopped__lt=older_than(settings.PURGE_FAILED_TASKS_AFTER_DAYS))
    )
    return delete_in_batches(finished, dry_run=dry_run) + delete_in_batches(
        q2_results, dry_run=dry_run
    )


def purge_sent_email_keys(*, dry_run: bool = False) -> int:
    """Delete the send-once keys of emails sent more than PURGE_SENT_EMAILS_AFTER_DAYS ago.
    Keys still "sending" (staff decide on them) or "failed" (a retry will send) stay."""
    sent = SentEmail.objects.filter(
        status=SentEmail.Status.SENT,
        created_at__lt=older_than(settings.PURGE_SENT_EMAILS_AFTER_DAYS),
    )
    return delete_in_batches(sent, dry_run=dry_run)


def purge_heartbeats(*, dry_run: bool = False) -> int:
    """Delete the heartbeats of worker clusters and dispatchers silent for
    PURGE_HEARTBEATS_AFTER_DAYS (replaced pods, stopped processes)."""
    silent = Heartbeat.objects.filter(beat_at__lt=older_than(settings.PURGE_HEARTBEATS_AFTER_DAYS))
    return delete_in_batches(silent, dry_run=dry_run)
