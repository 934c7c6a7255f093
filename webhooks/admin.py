"""Staff's read-only view of webhook endpoints and deliveries (vendors manage them in the
backoffice). Secrets are never shown."""

from django.contrib import admin

from webhooks.models import Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "vendor", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "vendor__name"]
    list_select_related = ["vendor"]
    fields = readonly_fields = (
        "vendor",
        "url",
        "description",
        "events",
        "is_active",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "event_type",
        "vendor",
        "endpoint",
        "state",
        "attempts",
        "status_code",
        "next_attempt_at",
    ]
    list_filter = ["state", "event_type"]
    search_fields = ["uuid", "event_id", "endpoint__url", "vendor__name"]
    list_select_related = ["vendor", "endpoint"]
    readonly_fields = [field.name for field in Delivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
