"""Create the owner and app roles and grant the app role its privileges:
`manage.py setup_database_roles --admin-url postgres://postgres@db/bazaar`."""

import dj_database_url
import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

from project.db import roles


class Command(BaseCommand):
    help = (
        "Create (or update) the database's two roles from the settings: the owner named by "
        "DATABASE_MIGRATE_URL (owns the database, its tables and sequences; runs migrate) and "
        "the app role named by DATABASE_URL (no superuser, no BYPASSRLS: row-level security "
        "binds it; SELECT/INSERT/UPDATE/DELETE on the tables, SELECT/INSERT only on "
        "append-only tables). Passwords come from the URLs. Run it as a superuser (or a "
        "CREATEROLE role) once before the first migrate; it is safe to run again. With "
        "DATABASE_PGBOUNCER on it also makes 'system' the scope the app role's sessions start "
        "in (a superuser only; docs/pgbouncer.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--admin-url",
            default="",
            help="A superuser's postgres:// URL (its database name is ignored: the app's "
            "database is used). Default: DATABASE_MIGRATE_URL.",
        )

    def handle(self, *args, admin_url: str, **options):
        app, owner, database = self._roles_from_settings()
        admin_url = admin_url or settings.DATABASE_MIGRATE_URL
        admin = dj_database_url.parse(admin_url)
        try:
            connection = psycopg.connect(
                host=admin.get("HOST") or "127.0.0.1",
                port=admin.get("PORT") or 5432,
                user=admin.get("USER") or None,
                password=admin.get("PASSWORD") or None,
                dbname=database,
                connect_timeout=10,
            )
        except psycopg.OperationalError as error:
            raise CommandError(f"Cannot connect to {database!r} as the admin: {error}") from None
        try:
            with connection, connection.cursor() as cursor:
                roles.ensure_roles(cursor, owner=owner, app=app)
                cursor.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(database), sql.Identifier(owner.name)
                    )
                )
                # Only the owner creates tables (PostgreSQL before 15 let everyone).
                cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
                moved = roles.take_ownership(cursor, owner=owner.name)
                roles.grant_app_privileges(cursor, owner=owner.name, app=app.name)
                if settings.DATABASE_PGBOUNCER:
                    self._start_sessions_in_system_scope(cursor, app=app.name, database=database)
        except (psycopg.Error, roles.RoleError) as error:
            raise CommandError(f"Nothing changed: {error}") from None
        finally:
            connection.close()
        if moved:
            self.stdout.write(f"{owner.name} now owns {len(moved)} tables and sequences.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Roles ready on {database}: owner {owner.name} (DATABASE_MIGRATE_URL, runs "
                f"migrate), app {app.name} (DATABASE_URL, bound by row-level security)."
            )
        )

    def _start_sessions_in_system_scope(self, cursor, *, app: str, database: str) -> None:
        try:
            roles.start_sessions_in_system_scope(cursor, app=app, database=database)
        except psycopg.errors.InsufficientPrivilege:
            raise CommandError(
                "Nothing changed: behind PgBouncer (DATABASE_PGBOUNCER) the app role's sessions "
                "must start in the 'system' scope, and only a superuser may make that its "
                "default. Run this with a superuser's --admin-url, or drop DATABASE_PGBOUNCER "
                "here and set PgBouncer's connect_query instead (docs/pgbouncer.md)."
            ) from None
        self.stdout.write(f"Sessions of {app} on {database} start in the 'system' scope.")

    def _roles_from_settings(self) -> tuple[roles.Role, roles.Role, str]:
        if not settings.DATABASE_URL or not settings.DATABASE_MIGRATE_URL:
            raise CommandError(
                "Set DATABASE_URL (the app role) and DATABASE_MIGRATE_URL (the owner role) to "
                "postgres:// URLs with two different users; see docs/database-security.md."
            )
        app_url = dj_database_url.parse(settings.DATABASE_URL)
        owner_url = dj_database_url.parse(settings.DATABASE_MIGRATE_URL)
        if "postgresql" not in app_url["ENGINE"] or "postgresql" not in owner_url["ENGINE"]:
            raise CommandError("Database roles exist only on PostgreSQL.")
        if not app_url.get("USER") or app_url.get("USER") == owner_url.get("USER"):
            raise CommandError(
                "DATABASE_URL and DATABASE_MIGRATE_URL must name two different users: the app "
                "must not connect as the owner of the tables."
            )
        if app_url["NAME"] != owner_url["NAME"]:
            raise CommandError("DATABASE_URL and DATABASE_MIGRATE_URL name different databases.")
        return (
            roles.Role(app_url["USER"], app_url.get("PASSWORD") or None),
            roles.Role(owner_url["USER"], owner_url.get("PASSWORD") or None),
            app_url["NAME"],
        )
