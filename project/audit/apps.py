from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "project.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from project.audit import admin_hooks, auth_hooks

        auth_hooks.connect()
        # The admin has discovered every admin module by now (django.contrib.admin's ready()
        # runs first): audit each registered ModelAdmin.
        admin_hooks.audit_every_model_admin()
