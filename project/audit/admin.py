"""Staff read the audit log here: filters, search, readable changes; nobody edits it."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from project.audit.models import AuditEntry


class VendorFilter(admin.SimpleListFilter):
    """Vendors named in the log (by their snapshot name: a deleted vendor stays listed)."""

    title = "vendor"
    parameter_name = "vendor"

    def lookups(self, request, model_admin):
        rows = (
            AuditEntry.objects.exclude(vendor_id=None)
            .order_by("vendor_name", "vendor_id")
            .values_list("vendor_id", "vendor_name")
            .distinct()
        )
        return [(str(vendor_id), name or f"Vendor #{vendor_id}") for vendor_id, name in rows]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(vendor_id=int(value))
        return queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "actor_email", "vendor_name", "target_repr", "ip")
    list_filter = ("action", ("created_at", admin.DateFieldListFilter), VendorFilter)
    search_fields = ("actor_email", "target_repr", "target_id", "request_id", "ip")
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False
    actions = None  # not even "delete selected"
    fields = (
        "created_at",
        "action",
        "actor_id",
        "actor_email",
        "vendor_id",
        "vendor_name",
        "target_type",
        "target_id",
        "target_repr",
        "changes_display",
        "metadata",
        "ip",
        "user_agent",
        "request_id",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="changes")
    def changes_display(self, obj: AuditEntry) -> str:
        if not obj.changes:
            return "—"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>→</td><td>{}</td></tr>",
            (
                (field, _shown(values[0]), _shown(values[1]))
                for field, values in sorted(obj.changes.items())
            ),
        )
        return format_html(
            "<table><thead><tr><th>field</th><th>before</th><th></th><th>after</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )


def _shown(value) -> str:
    return "—" if value is None or value == "" else str(value)
