from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "project.audit"
    label = "audit"
    verbose_name = "Audit log"
