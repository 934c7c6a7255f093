from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ProjectConfig(AppConfig):
    name = "project"
    verbose_name = "Bazaar platform"

    def ready(self) -> None:
        from project.db import grants

        # Once per migrate (post_migrate is sent per app; this app's comes after every
        # migration ran): tables a migration created are granted to the app role at once.
        post_migrate.connect(grants.grant_after_migrate, sender=self)
