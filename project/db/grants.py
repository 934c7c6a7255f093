"""After every `manage.py migrate` (run as the owner), the app role gets its privileges."""

from django.apps import AppConfig, apps
from django.conf import settings
from django.db import connections

from project.db import roles


def grant_after_migrate(*, app_config: AppConfig, using: str, verbosity: int = 1, **kwargs):
    # post_migrate is sent once per app with models, after every migration ran: act once.
    if app_config is not [config for config in apps.get_app_configs() if config.models_module][-1]:
        return
    connection = connections[using]
    app = settings.DATABASE_APP_ROLE
    if connection.vendor != "postgresql" or not app:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
        if owner == app:
            raise roles.RoleError(
                f"manage.py migrate ran as the app role {app!r}; set DATABASE_MIGRATE_URL to "
                "the owner role's URL (docs/database-security.md)."
            )
        roles.grant_app_privileges(cursor, owner=owner, app=app)
    if verbosity >= 1:
        print(f"Granted the app role {app} its privileges on the tables of {owner}.")
