from django.db import models
from django.tasks import TaskResultStatus


class TaskRecord(models.Model):
    """One enqueued task and everything Django's `TaskResult` reports about it.

    The row is the source of truth; the Django-Q2 broker row only says "look at record X".
    """

    id = models.CharField(primary_key=True, max_length=32, editable=False)
    task_path = models.CharField(max_length=200, db_index=True)
    queue = models.CharField(max_length=32)
    priority = models.SmallIntegerField(default=0)
    backend = models.CharField(max_length=64, default="default")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=TaskResultStatus.choices, default=TaskResultStatus.READY
    )
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    # [{"exception_class_path": ..., "traceback": ...}], one per failed attempt.
    errors = models.JSONField(default=list, blank=True)
    # One entry per attempt ("host:pid"); Django's TaskResult.attempts is its length.
    worker_ids = models.JSONField(default=list, blank=True)
    return_value = models.JSONField(null=True, blank=True)
    enqueued_at = models.DateTimeField()
    run_after = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due (the broker row is locked until then).
    next_attempt_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # While RUNNING: after this the attempt is presumed dead (its worker crashed).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds, last attempt")
    request_id = models.CharField(max_length=64, blank=True)
    failure_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-enqueued_at"]
        indexes = [
            models.Index(
                fields=["queue", "status", "next_attempt_at"], name="taskrecord_queue_due"
            ),
            models.Index(fields=["status", "finished_at"], name="taskrecord_status_finished"),
            # Stall detection: has any attempt started on the queue lately?
            models.Index(fields=["last_attempted_at"], name="taskrecord_last_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} [{self.id}] {self.status}"

    @property
    def retries(self) -> int:
        return max(self.attempts - 1, 0)

    @property
    def last_error(self) -> str:
        if not self.errors:
            return ""
        error = self.errors[-1]
        lines = [line for line in error.get("traceback", "").strip().splitlines() if line]
        return lines[-1] if lines else error.get("exception_class_path", "")


class SentEmail(models.Model):
    """An email sent under an idempotency key: the same key is never sent twice."""

    class Status(models.TextChoices):
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will be retried)"

    key = models.CharField(max_length=200, unique=True)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=200)
    template = models.CharField(max_length=100)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.SENDING)
    attempts = models.PositiveIntegerField(default=0)
    message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.template} to {self.to} ({self.status})"


class Heartbeat(models.Model):
    """A worker cluster's or a dispatcher's last sign of progress, written every
    LIVENESS_HEARTBEAT_SECONDS, so /metrics (in any process, on any machine) reports liveness."""

    class Kind(models.TextChoices):
        WORKER = "worker", "Worker cluster"
        DISPATCHER = "dispatcher", "Event dispatcher"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The worker's queue; empty for a dispatcher.
    queue = models.CharField(max_length=32, blank=True)
    instance = models.CharField(max_length=100, help_text="host:pid")
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "queue", "instance"], name="background_heartbeat_once"
            )
        ]
        indexes = [models.Index(fields=["beat_at"], name="background_heartbeat_beat")]

    def __str__(self) -> str:
        return f"{self.kind} {self.queue or ''} {self.instance} at {self.beat_at}".replace(
            "  ", " "
        )
