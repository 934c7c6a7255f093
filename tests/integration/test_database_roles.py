"""`manage.py setup_database_roles` and a migrate as the owner (DATABASE_MIGRATE_URL) give the
production shape: the app role (DATABASE_URL) reads and writes rows, bound by row-level
security, and can change nothing else."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import sql

from tests.fixtures import database

OWNER = ("bazaar_cmdtest_owner", "owner-secret")
APP = ("bazaar_cmdtest_app", "app-secret")


def _url(user: str, password: str | None, dbname: str) -> str:
    params = connection.settings_dict
    secret = f":{password}" if password else ""
    host, port = params["HOST"] or "127.0.0.1", params["PORT"] or 5432
    return f"postgres://{user}{secret}@{host}:{port}/{dbname}"


def _manage(*args: str, dbname: str) -> subprocess.CompletedProcess:
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": _url(*APP, dbname),
        "DATABASE_MIGRATE_URL": _url(*OWNER, dbname),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=environment,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
        timeout=300,
    )


@pytest.fixture
def scratch_database():
    """A database made by the superuser, with a table it owns (a single-role install)."""
    name = f"{connection.settings_dict['NAME']}_roles"
    with database.admin_connect("postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with database.admin_connect(name, autocommit=True) as admin:
        admin.execute("CREATE TABLE legacy_note (id serial PRIMARY KEY, body text)")
    yield name
    with database.admin_connect("postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_roles_then_migrate_as_the_owner_leave_the_app_role_rows_only(scratch_database):
    admin_url = _url(database._ADMIN["USER"], database._ADMIN["PASSWORD"], "postgres")

    setup = _manage("setup_database_roles", "--admin-url", admin_url, dbname=scratch_database)
    migrate = _manage("migrate", "--no-input", dbname=scratch_database)

    assert setup.returncode == 0, setup.stderr
    assert f"Roles ready on {scratch_database}: owner bazaar_cmdtest_owner" in setup.stdout
    assert migrate.returncode == 0, migrate.stderr
    assert "Granted the app role bazaar_cmdtest_app its privileges" in migrate.stdout
    with psycopg.connect(_url(*APP, scratch_database), autocommit=True) as app:
        flags = app.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        owners = {
            row[0]
            for row in app.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        }
        can = app.execute(
            "SELECT has_table_privilege('legacy_note', 'SELECT'),"
            " has_table_privilege('shop_product', 'UPDATE'),"
            " has_table_privilege('audit_auditentry', 'INSERT'),"
            " has_table_privilege('audit_auditentry', 'UPDATE'),"
            " has_table_privilege('audit_auditentry', 'DELETE'),"
            " has_table_privilege('shop_product', 'TRUNCATE')"
        ).fetchone()
        # without a scope (a connection that bypassed the app's backend) nothing vendor-owned
        app.execute("INSERT INTO shop_category (name, slug, description) VALUES ('C', 'c', '')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute(
                "INSERT INTO shop_vendor (name, slug, description, contact_email, contact_phone,"
                " payout_details, review_note, status, created_at)"
                " VALUES ('V', 'v', '', '', '', '', '', 'approved', now())"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("CREATE TABLE sneaky (id int)")

    assert flags == (False, False)
    assert owners == {"bazaar_cmdtest_owner"}  # the legacy table too
    assert can == (True, True, True, False, False, False)


def test_refuses_without_two_urls_and_changes_nothing(settings):
    settings.DATABASE_MIGRATE_URL = ""

    with pytest.raises(CommandError, match="Set DATABASE_URL .* and DATABASE_MIGRATE_URL"):
        call_command("setup_database_roles")

    settings.DATABASE_URL = settings.DATABASE_MIGRATE_URL = _url(*OWNER, "bazaar")
    with pytest.raises(CommandError, match="two different users"):
        call_command("setup_database_roles")


def test_refuses_a_superuser_as_the_app_role_and_changes_nothing(settings, scratch_database):
    settings.DATABASE_URL = _url(database._ADMIN["USER"], None, scratch_database)
    settings.DATABASE_MIGRATE_URL = _url("bazaar_cmdtest_other_owner", None, scratch_database)
    admin_url = _url(database._ADMIN["USER"], database._ADMIN["PASSWORD"], "postgres")

    with pytest.raises(CommandError, match="is a superuser or has BYPASSRLS"):
        call_command("setup_database_roles", admin_url=admin_url)

    with database.admin_connect(scratch_database) as admin:
        created = admin.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = 'bazaar_cmdtest_other_owner'"
        ).fetchone()
        owner = admin.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            [scratch_database],
        ).fetchone()[0]
    assert created is None
    assert owner == database._ADMIN["USER"]
