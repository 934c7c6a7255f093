from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ProjectConfig(AppConfig):
    name = "project"
    verbose_name = "Bazaar platform"

    def ready(self) -> None:
        from project.db import grants

        # After every migrate: tables a migration created are granted to the app role at once.
        post_migrate.connect(grants.grant_after_migrate, dispatch_uid="project.db.grants")
