"""The audit table refuses UPDATE, DELETE and TRUNCATE through the app's own connection."""

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from project.audit import services as audit
from project.audit.models import AuditEntry
from project.db.roles import APPEND_ONLY_TABLES
from tests.fixtures import database

pytestmark = pytest.mark.django_db


def test_audit_table_is_listed_as_append_only_for_the_app_role():
    assert AuditEntry._meta.db_table in APPEND_ONLY_TABLES


def test_update_through_the_app_connection_is_refused():
    # given an entry
    entry = audit.record("auth.login_failed", metadata={"email_domain": "example.com"})

    # when the app's connection tries to rewrite it, then the database refuses
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="auth.login")

    # and the entry is unchanged
    assert AuditEntry.objects.get(pk=entry.pk).action == "auth.login_failed"


def test_delete_through_the_app_connection_is_refused():
    entry = audit.record("auth.logout")

    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()

    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_raw_sql_update_delete_and_truncate_are_refused():
    entry = audit.record("auth.logout")

    for statement in (
        "UPDATE audit_auditentry SET ip = '10.0.0.1'",
        "DELETE FROM audit_auditentry",
        # The test settings let the suite's own flush truncate; without that switch, refused.
        "SET LOCAL bazaar.audit_allow_truncate = 'off'; TRUNCATE audit_auditentry",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)

    assert AuditEntry.objects.get(pk=entry.pk).ip == ""


@pytest.mark.django_db(transaction=True)
def test_flush_between_transactional_tests_still_empties_the_audit_table():
    # given an entry committed by a transactional test (the suite's flush then truncates it)
    audit.record("auth.logout")

    assert AuditEntry.objects.count() == 1


def test_the_app_role_holds_only_select_and_insert_on_the_audit_table():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, "
            + ", ".join(
                f"has_table_privilege('audit_auditentry', '{privilege}')"
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE")
            )
        )
        row = cursor.fetchone()

    assert row == (database.APP.name, True, True, False, False)


@pytest.mark.django_db(transaction=True)
def test_even_the_tables_owner_cannot_update_or_delete_an_entry():
    # given a committed entry
    entry = audit.record("auth.login_failed")
    settings_dict = connection.settings_dict

    # when the role that owns the table (and runs the migrations) tries to change it
    with psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=database.OWNER.name,
        password=database.OWNER.password,
        dbname=settings_dict["NAME"],
        autocommit=True,
    ) as owner:
        for statement in (
            "UPDATE audit_auditentry SET action = 'auth.login'",
            "DELETE FROM audit_auditentry",
        ):
            # then the trigger refuses
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(statement)

    assert AuditEntry.objects.get(pk=entry.pk).action == "auth.login_failed"
