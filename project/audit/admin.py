"""Staff read the audit log here: filters, search, readable changes; nobody edits it."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from project.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "actor_email", "vendor_name", "target_repr", "ip")
    # The vendor filter lists today's vendors; a deleted one's entries are found by searching
    # its name (kept as a snapshot on each entry).
    list_filter = ("action", ("created_at", admin.DateFieldListFilter), "vendor")
    search_fields = ("actor_email", "target_repr", "target_id", "request_id", "ip", "vendor_name")
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
