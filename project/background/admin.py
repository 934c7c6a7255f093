"""Staff see every task (failed ones first of all) and can send a failed task round again;
they decide what becomes of an email whose delivery is unknown."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.tasks import TaskResultStatus
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join

from project.audit import admin_hooks
from project.background import backend
from project.background import emails as sent_emails
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
                admin_hooks.log_staff_action(
                    request,
                    record,
                    f"Retried now: {settings.TASK_MAX_ATTEMPTS} fresh attempts after "
                    f"{record.attempts} failed.",
                )
            retried += 1
        self.message_user(
            request,
            f"{retried} failed task(s) queued again." if retried else "No failed task selected.",
            messages.SUCCESS if retried else messages.WARNING,
        )


# An email left "sending" may or may not have reached its recipient. Staff decide, after a
# page that says what the decision means. action -> (guard function, verb, done, meaning)
UNKNOWN_OUTCOME_DECISIONS = {
    "allow_sending_again": (
        sent_emails.allow_sending_again,
        "Allow sending again",
        'may be sent again: use "Retry now" on their failed task to send them',
        "They are marked failed, and the next attempt of their task sends them: use "
        '"Retry now" on the failed task (Task records). A recipient who did get the first '
        "copy gets a second one, with the same Message-ID, so a receiving system can spot "
        "the duplicate. If you can, look the Message-ID up in the mail server's log first.",
    ),
    "mark_delivered": (
        sent_emails.mark_delivered,
        "Mark as delivered",
        "marked delivered: never sent again",
        "They are taken as delivered and never sent again, whatever their task does next: "
        'a recipient who did not get one gets nothing. "Retry now" on the failed task '
        "then sends only its other emails, if it has any.",
    ),
}


@admin.register(SentEmail)
class SentEmailAdmin(admin.ModelAdmin):
    list_display = [
        "template",
        "to",
        "subject",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "message_id",
    ]
    list_filter = ["status", "template"]
    search_fields = ["key", "to", "subject", "message_id"]
    readonly_fields = [field.name for field in SentEmail._meta.fields]
    actions = ["allow_sending_again", "mark_delivered"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request) -> bool:
        return request.user.has_perm("background.change_sentemail")

    @admin.action(
        description="Allow sending again (emails left sending; may arrive twice)",
        permissions=["decide"],
    )
    def allow_sending_again(self, request, queryset):
        return self._decide_unknown_outcome(request, queryset, "allow_sending_again")

    @admin.action(
        description="Mark as delivered (emails left sending; never sent again)",
        permissions=["decide"],
    )
    def mark_delivered(self, request, queryset):
        return self._decide_unknown_outcome(request, queryset, "mark_delivered")

    def _decide_unknown_outcome(self, request, queryset, action: str):
        decide, verb, done, meaning = UNKNOWN_OUTCOME_DECISIONS[action]
        stuck = list(queryset.filter(status=SentEmail.Status.SENDING))
        if not stuck:
            self.message_user(
                request, "No selected email is left sending; nothing changed.", messages.WARNING
            )
            return None
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"{verb}?",
                "verb": verb,
                "emails": stuck,
                "meaning": meaning,
                "action": action,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/background/sentemail/unknown_outcome.html", context
            )
        changed = decide(record_ids=[record.pk for record in stuck])
        for record in stuck:
            if record.pk in changed:
                self.log_change(request, record, f"Outcome unknown: {done}.")
        self.message_user(request, f"{len(changed)} email(s) {done}.", messages.SUCCESS)
        return None
