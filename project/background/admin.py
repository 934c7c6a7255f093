"""Staff see every task (failed ones first of all) and can send a failed task round again."""

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.utils.html import format_html_join

from project.background import backend
from project.background.models import SentEmail, TaskRecord


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "task_path",
        "queue",
        "status",
        "attempts",
        "enqueued_at",
        "finished_at",
        "short_error",
    ]
    list_filter = ["status", "queue", "task_path"]
    search_fields = ["id", "task_path", "request_id"]
    date_hierarchy = "enqueued_at"
    ordering = ["-enqueued_at"]
    actions = ["retry_now"]
    readonly_fields = [
        "id",
        "task_path",
        "queue",
        "priority",
        "backend",
        "args",
        "kwargs",
        "status",
        "attempts",
        "max_attempts",
        "worker_ids",
        "return_value",
        "enqueued_at",
        "run_after",
        "next_attempt_at",
        "started_at",
        "last_attempted_at",
        "finished_at",
        "lease_expires_at",
        "duration",
        "request_id",
        "failure_notified_at",
        "error_tracebacks",
    ]
    exclude = ["errors"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="last error")
    def short_error(self, obj: TaskRecord) -> str:
        return obj.last_error[:120]

    @admin.display(description="errors")
    def error_tracebacks(self, obj: TaskRecord) -> str:
        return format_html_join(
            "",
            "<p><strong>{}</strong></p><pre>{}</pre>",
            ((error["exception_class_path"], error["traceback"]) for error in obj.errors),
        )

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("background.change_taskrecord")

    @admin.action(description="Retry now (a fresh set of attempts)", permissions=["retry"])
    def retry_now(self, request, queryset):
        retried = 0
        for record_id in queryset.filter(status=TaskResultStatus.FAILED).values_list(
            "pk", flat=True
        ):
            with transaction.atomic():
                record = (
                    TaskRecord.objects.select_for_update()
                    .filter(pk=record_id, status=TaskResultStatus.FAILED)
                    .first()
                )
                if record is None:
                    continue
                record.status = TaskResultStatus.READY
                record.next_attempt_at = timezone.now()
                record.finished_at = None
                record.failure_notified_at = None
                record.max_attempts = record.attempts + settings.TASK_MAX_ATTEMPTS
                record.save()
                backend.hand_to_q2(record)
            retried += 1
        self.message_user(
            request,
            f"{retried} failed task(s) queued again." if retried else "No failed task selected.",
            messages.SUCCESS if retried else messages.WARNING,
        )


@admin.register(SentEmail)
class SentEmailAdmin(admin.ModelAdmin):
    list_display = ["template", "to", "subject", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "template"]
    search_fields = ["key", "to", "subject"]
    readonly_fields = [field.name for field in SentEmail._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
