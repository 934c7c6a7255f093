"""Every add, change, delete and action in the Django admin is audited.

`AuditedAdmin` hooks the admin's own logging points (log_addition, log_change, log_deletions,
which Django calls inside the admin's transaction) and response_action (the changelist's
actions). `audit_every_model_admin()` mixes it into every ModelAdmin registered on the
site, ours and Django's or Django-Q2's alike, so a new admin cannot forget it; it runs in
AuditConfig.ready(), after the admin has discovered every admin module.
"""

import json
from typing import TYPE_CHECKING

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.template.response import TemplateResponse

from project.audit import services as audit
from shop.models import Vendor

# Its entries are audited by the change itself (the deletions), not again as an action.
_SELF_AUDITED_ACTIONS = {"delete_selected"}


# The mixin's base: ModelAdmin for the type checker, which then checks its super() calls.
if TYPE_CHECKING:
    _Base = admin.ModelAdmin
else:
    _Base = object


class AuditedAdmin(_Base):
    """Mixin for ModelAdmin: before/after of the changed fields, who, which vendor."""

    def save_model(self, request, obj, form, change):
        obj._audit_changes = _form_changes(form, change=change)
        return super().save_model(request, obj, form, change)

    def log_addition(self, request, obj, message):
        logged = super().log_addition(request, obj, message)
        _record("admin.added", request, obj, message)
        return logged

    def log_change(self, request, obj, message):
        logged = super().log_change(request, obj, message)
        _record("admin.changed", request, obj, message)
        return logged

    def log_deletions(self, request, queryset):
        for obj in queryset:
            _record("admin.deleted", request, obj, "")
        return super().log_deletions(request, queryset)

    def response_action(self, request, queryset, *args, **kwargs):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        response = super().response_action(request, queryset, *args, **kwargs)
        name = _action_name(request)
        # None: the action form was invalid or nothing was selected; nothing ran. A page
        # (TemplateResponse) asks for a confirmation or a note first: recorded when that is sent.
        ran = response is not None and not isinstance(response, TemplateResponse)
        if ran and name and name not in _SELF_AUDITED_ACTIONS:
            audit.record(
                "admin.action",
                actor=request.user,
                metadata={
                    "action": name,
                    "model": self.model._meta.label_lower,
                    "selected": selected[:100],
                    "select_across": request.POST.get("select_across") == "1",
                },
            )
        return response


def log_staff_action(request, obj, message: str) -> LogEntry:
    """Show a custom button's or action's work on `obj` in the admin's "Recent actions" and
    the object's history.

    Written straight to LogEntry, not through ModelAdmin.log_change: the service that did the
    work audited it already, and the action itself is audited by response_action above, so
    going through the hooked log_change would record it in the audit log a second time.
    """
    return LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def audit_every_model_admin(site: admin.AdminSite | None = None) -> None:
    site = site or admin.site
    for model_admin in site._registry.values():
        cls = type(model_admin)
        if not issubclass(cls, AuditedAdmin):
            model_admin.__class__ = type(f"Audited{cls.__name__}", (AuditedAdmin, cls), {})


def _record(action: str, request, obj, message) -> None:
    changes = getattr(obj, "_audit_changes", None) or {}
    if not changes and _mentions_password(message):
        changes = {"password": [None, None]}  # the admin's password form: redacted
    audit.record(
        action,
        actor=request.user,
        vendor=_vendor_of(obj),
        target=obj,
        changes=changes,
        metadata={"message": _readable(message)} if message else None,
    )


def _form_changes(form, *, change: bool) -> dict:
    changes = {}
    for name in form.changed_data:
        before = form.initial.get(name) if change else None
        changes[name] = [_value(before), _value(form.cleaned_data.get(name))]
    return changes


def _value(value):
    if hasattr(value, "all") and callable(value.all):  # a queryset or manager (many-to-many)
        return sorted(str(item) for item in value.all())
    if isinstance(value, list | tuple | set):
        return sorted(str(item) for item in value)
    if hasattr(value, "pk"):
        return value.pk
    return value


def _vendor_of(obj):
    if isinstance(obj, Vendor):
        return obj
    return getattr(obj, "vendor_id", None)


def _readable(message) -> str:
    if isinstance(message, list):
        return LogEntry(change_message=json.dumps(message)).get_change_message()
    return str(message)


def _mentions_password(message) -> bool:
    return "password" in _readable(message).lower()


def _action_name(request) -> str:
    actions = request.POST.getlist("action")
    try:
        return actions[int(request.POST.get("index", 0))]
    except (IndexError, ValueError):
        return actions[0] if actions else ""
