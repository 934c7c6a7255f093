from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from project.audit import admin_hooks
from project.events import dispatcher
from project.events.models import HandlerReceipt, OutboxEvent


class DeliveryState(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("pending", "Pending"),
            ("retrying", "Retrying"),
            ("parked", "Parked"),
            ("delivered", "Delivered"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "pending":
                return queryset.pending().filter(attempts=0)
            case "retrying":
                return queryset.pending().filter(attempts__gt=0)
            case "parked":
                return queryset.parked()
            case "delivered":
                return queryset.filter(delivered_at__isnull=False)
        return queryset


class HandlerReceiptInline(admin.TabularInline):
    model = HandlerReceipt
    extra = 0
    can_delete = False
    fields = readonly_fields = ("handler", "handled_by", "handled_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "state",
        "attempts",
        "next_attempt_at",
    ]
    list_filter = [DeliveryState, "event_type", "aggregate_type"]
    search_fields = ["=aggregate_id", "=request_id", "=id"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [HandlerReceiptInline]
    actions = ["replay_events"]
    readonly_fields = [
        "id",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "payload",
        "request_id",
        "created_at",
        "delivered_at",
        "attempts",
        "next_attempt_at",
        "parked_at",
        "last_error",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="State")
    def state(self, obj: OutboxEvent) -> str:
        return obj.state

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # Rows stay read-only in the admin; replaying is what "change" allows.
        return request.user.has_perm("events.change_outboxevent")

    @admin.action(description="Replay selected undelivered events", permissions=["replay"])
    def replay_events(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        undelivered = list(queryset.filter(delivered_at__isnull=True))
        count = dispatcher.replay(event_ids=[event.pk for event in undelivered])
        for event in undelivered:
            admin_hooks.log_staff_action(
                request, event, "Replayed: a fresh set of delivery attempts, due now."
            )
        self.message_user(
            request,
            f"{count} event(s) queued for delivery again.",
            messages.SUCCESS if count else messages.WARNING,
        )
