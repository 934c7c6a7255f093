"""PostgreSQL's side of a backup: the owner's connection, pg_dump and pg_restore, and the
row counts and checksums a backup records and a restore checks.

pg_dump and pg_restore run as the owner role (DATABASE_MIGRATE_URL, else DATABASE_DIRECT_URL
or DATABASE_URL), in the 'system' row-level-security scope so the owner's FORCEd policies let
every row through.
"""

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dj_database_url
import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.conninfo import make_conninfo

from project.backups.errors import BackupError
from project.db import roles, scope

# Keeps every table's text form identical between the backup and the restored copy.
SESSION_OPTIONS = f"-c {scope.SETTING}={scope.SYSTEM} -c TimeZone=UTC -c DateStyle=ISO"


class ToolError(BackupError):
    """pg_dump or pg_restore failed; the message carries its error output."""


@dataclass(frozen=True)
class OwnerDatabase:
    """Where and as whom pg_dump and pg_restore connect."""

    host: str
    port: int
    user: str
    password: str
    name: str

    @classmethod
    def from_settings(cls) -> "OwnerDatabase":
        # PostgreSQL itself, never PgBouncer (DATABASE_URL may lead there): pg_dump and
        # pg_restore need sessions of their own.
        parsed = dj_database_url.parse(
            settings.DATABASE_MIGRATE_URL or settings.DATABASE_DIRECT_URL or settings.DATABASE_URL
        )
        return cls(
            host=parsed.get("HOST") or "127.0.0.1",
            port=int(parsed.get("PORT") or 5432),
            user=parsed.get("USER") or "",
            password=parsed.get("PASSWORD") or "",
            name=parsed["NAME"],
        )

    @property
    def conninfo(self) -> str:
        # The password travels in PGPASSWORD, never on a command line others can read.
        return make_conninfo(host=self.host, port=self.port, user=self.user, dbname=self.name)

    def tool_environment(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password, "PGOPTIONS": SESSION_OPTIONS}

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.conninfo,
            password=self.password or None,
            options=SESSION_OPTIONS,
            autocommit=True,
            connect_timeout=10,
        )


def start_dump(database: OwnerDatabase, *, snapshot: str, path: Path) -> subprocess.Popen:
    """Start `pg_dump -Fc` of the exported `snapshot` into `path` (it runs beside the export;
    `wait_for` collects it). Row security stays on: the 'system' scope lets all rows through."""
    return subprocess.Popen(  # noqa: S603 - fixed program, arguments from settings
        [
            _program("pg_dump"),
            "--format=custom",
            f"--snapshot={snapshot}",
            "--enable-row-security",
            "--no-password",
            f"--file={path}",
            f"--dbname={database.conninfo}",
        ],
        env=database.tool_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ToolError(
            f"{name} is not installed: install PostgreSQL's client programs, of the server's "
            "major version or newer (Debian: postgresql-client)."
        )
    return found


def wait_for(process: subprocess.Popen, *, what: str) -> None:
    _, errors = process.communicate()
    if process.returncode != 0:
        raise ToolError(f"{what} failed (exit {process.returncode}): {errors.strip()}")


def restore_dump(database: OwnerDatabase, *, path: Path) -> None:
    """Load a dump into the (empty) database in one transaction: all of it, or nothing.

    Objects end up owned by the connecting owner role and without the dump's grants
    (`--no-owner --no-acl`), so a backup restores onto a server whose roles have other names;
    `grant_app_role` then gives the app role its privileges as after a migrate.
    """
    process = subprocess.Popen(  # noqa: S603 - fixed program, arguments from settings
        [
            _program("pg_restore"),
            "--no-owner",
            "--no-acl",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={database.conninfo}",
            str(path),
        ],
        env=database.tool_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(process, what="pg_restore")


def user_tables(cursor) -> list[str]:
    """Every table of the database's own schemas, by name."""
    cursor.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        ORDER BY c.relname
        """
    )
    return [name for (name,) in cursor.fetchall()]


def existing_relations(cursor) -> list[str]:
    """Tables, views, sequences and functions outside PostgreSQL's own schemas: what makes
    a database not empty."""
    cursor.execute(
        """
        SELECT n.nspname || '.' || c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        UNION ALL
        SELECT n.nspname || '.' || p.proname || '()' FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
        ORDER BY 1
        """
    )
    return [name for (name,) in cursor.fetchall()]


def count_rows(cursor, tables: Iterable[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)).as_string())
        counts[table] = cursor.fetchone()[0]
    return counts


def table_checksum(connection: psycopg.Connection, table: str, *, order_by: str) -> str:
    """SHA-256 over the text form of every row in primary-key order, read through a
    server-side cursor: equal only when every value of every row is equal. Call it inside a
    transaction (the snapshot a backup reads, or the restored database)."""
    digest = hashlib.sha256()
    query = sql.SQL("SELECT t::text FROM {} AS t ORDER BY {}").format(
        sql.Identifier(table), sql.Identifier(order_by)
    )
    with connection.cursor(name=f"checksum_{table}") as cursor:
        cursor.itersize = 5000
        cursor.execute(query)
        for (text,) in cursor:
            digest.update(text.encode())
            digest.update(b"\n")
    return digest.hexdigest()


def grant_app_role(database: OwnerDatabase) -> str | None:
    """After a restore, give the app role (DATABASE_APP_ROLE) its privileges, as a migrate
    does. Returns the role granted, or None with one role for everything."""
    app = settings.DATABASE_APP_ROLE
    if not app:
        return None
    with database.connect() as connection, connection.cursor() as cursor:
        roles.grant_app_privileges(cursor, owner=connection.info.user, app=app)
    return app
