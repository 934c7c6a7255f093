"""The two database roles and what the app role may do (docs/database-security.md).

- The OWNER role owns the tables and runs the migrations (DATABASE_MIGRATE_URL).
- The APP role is what every web, worker and dispatcher process connects as (DATABASE_URL):
  not the owner, not a superuser, not BYPASSRLS, so PostgreSQL's row-level security binds it.
  It may SELECT, INSERT, UPDATE and DELETE rows and use the sequences, nothing else.

Tables listed in APPEND_ONLY_TABLES get only SELECT and INSERT for the app role: rows are
appended, never changed or removed by the application.
"""

from dataclasses import dataclass

from psycopg import sql

from project.db import scope

APPEND_ONLY_TABLES = [
    "audit_auditentry",
]

APP_TABLE_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE"]
APPEND_ONLY_PRIVILEGES = ["SELECT", "INSERT"]
# Concurrent role set-ups (several test runs on one server) queue behind this advisory lock:
# CREATE ROLE and ALTER ROLE on one role from two sessions at once fail.
ROLES_LOCK = 0x0BA2AA2


class RoleError(Exception):
    """A role is missing or unsafe (superuser, BYPASSRLS, or the owner itself)."""


@dataclass(frozen=True)
class Role:
    name: str
    password: str | None = None


def ensure_roles(cursor, *, owner: Role, app: Role, can_create_databases: bool = False) -> None:
    """Create the owner and app roles if missing (as a superuser or CREATEROLE role).

    A role that exists keeps its attributes (a superuser is never demoted by accident); a
    given password is set again, except on a superuser. An existing app role that is a
    superuser or BYPASSRLS is refused: row-level security would not bind it.
    """
    if owner.name == app.name:
        raise RoleError("The owner and the app role must be two different roles.")
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLES_LOCK])
    for role, attributes in (
        (owner, ["LOGIN", "NOSUPERUSER", *(["CREATEDB"] if can_create_databases else [])]),
        (app, ["LOGIN", "NOSUPERUSER", "NOBYPASSRLS", "NOCREATEDB", "NOCREATEROLE"]),
    ):
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role.name])
        row = cursor.fetchone()
        name = sql.Identifier(role.name)
        if row is None:
            statement = sql.SQL("CREATE ROLE {} WITH " + " ".join(attributes)).format(name)
        elif role.password is not None and not row[0]:
            statement = sql.SQL("ALTER ROLE {} WITH LOGIN").format(name)
        else:
            continue
        if role.password is not None:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(role.password))
        cursor.execute(statement)
    check_app_role(cursor, app=app.name, owner=owner.name)


def grant_app_privileges(
    cursor, *, owner: str, app: str, schema: str = "public", truncate: bool = False
) -> None:
    """Give the app role row access to every table of `schema` and its sequences, now and for
    tables the owner creates later (default privileges); append-only tables get only
    SELECT and INSERT. Run as the owner (or a superuser) after every migrate.

    `truncate` (tests only: their flush between transactional tests) adds TRUNCATE.
    """
    check_app_role(cursor, app=app, owner=owner)
    app_id, owner_id, schema_id = map(sql.Identifier, (app, owner, schema))
    table_privileges = [*APP_TABLE_PRIVILEGES, *(["TRUNCATE"] if truncate else [])]
    privileges = sql.SQL(", ").join(map(sql.SQL, table_privileges))
    cursor.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_id, app_id))
    cursor.execute(
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(privileges, schema_id, app_id)
    )
    cursor.execute(
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema_id, app_id)
    )
    cursor.execute(
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}"
        ).format(owner_id, schema_id, privileges, app_id)
    )
    cursor.execute(
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} "
            "GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(owner_id, schema_id, app_id)
    )
    cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
        [schema, APPEND_ONLY_TABLES],
    )
    for (table,) in cursor.fetchall():
        table_id = sql.Identifier(schema, table)
        cursor.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(table_id, app_id))
        kept = [*APPEND_ONLY_PRIVILEGES, *(["TRUNCATE"] if truncate else [])]
        cursor.execute(
            sql.SQL("GRANT {} ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.SQL, kept)), table_id, app_id
            )
        )


def start_sessions_in_system_scope(cursor, *, app: str, database: str) -> None:
    """Make 'system' the row-level-security scope every session of the app role starts in,
    in `database` only (what the app's backend sets per connection when it connects
    directly). Needed behind PgBouncer's transaction pooling, where the app can set nothing
    per session (docs/pgbouncer.md). A superuser's statement: PostgreSQL lets no other role
    set a default for a custom setting such as app.vendor_id."""
    cursor.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
            sql.Identifier(app),
            sql.Identifier(database),
            sql.Identifier(*scope.SETTING.split(".")),
            sql.Literal(scope.SYSTEM),
        )
    )


def check_app_role(cursor, *, app: str, owner: str | None = None) -> None:
    """Refuse an app role that row-level security would not bind."""
    cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [app])
    row = cursor.fetchone()
    if row is None:
        raise RoleError(f"The app role {app!r} does not exist; run manage.py setup_database_roles.")
    if row[0] or row[1]:
        raise RoleError(
            f"The app role {app!r} is a superuser or has BYPASSRLS: row-level security "
            "would not apply to it."
        )
    if owner is not None and app == owner:
        raise RoleError("The app role must not be the owner of the tables.")


def take_ownership(cursor, *, owner: str, schema: str = "public") -> list[str]:
    """Make `owner` the owner of every table, sequence and view of `schema` (an existing
    single-role database moving to two roles). Returns the objects whose owner changed."""
    cursor.execute(
        """
        SELECT c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND pg_get_userbyid(c.relowner) <> %s
          -- sequences owned by a column follow their table
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
        ORDER BY c.relname
        """,
        [schema, owner],
    )
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    changed = []
    for name, kind in cursor.fetchall():
        cursor.execute(
            sql.SQL("ALTER {} {} OWNER TO {}").format(
                sql.SQL(kinds[kind]), sql.Identifier(schema, name), sql.Identifier(owner)
            )
        )
        changed.append(name)
    return changed
