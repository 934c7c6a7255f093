"""Django's PostgreSQL backend, with every connection starting in the 'system' scope.

Row-level security (docs/database-security.md) lets a connection whose `app.vendor_id` is
unset see only the public catalogue. The app's own processes are trusted with every row
unless a backoffice request narrows its transaction to one vendor (project.db.scope), so each
connection Django hands out (new, or taken from psycopg's pool) has the session default set
to 'system' again: a vendor scope is transaction-local and cannot outlive its request, and
even a scope set by mistake for the session would not survive the next checkout.

Behind PgBouncer in transaction pooling mode (OPTIONS `transaction_pooling`, set by
DATABASE_PGBOUNCER; docs/pgbouncer.md) a session setting would land on whichever server
connection ran it, for other clients to inherit, and the next transaction may run on a
server connection that never saw it. There the app role's own default in the database is
'system' (`ALTER ROLE ... IN DATABASE ... SET`, made by setup_database_roles), so every
server session starts in it; this backend sets nothing and only checks, on its first
connection, that the default is there.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base

from project.db import scope


class DatabaseWrapper(base.DatabaseWrapper):
    scope_default_checked = False

    @property
    def transaction_pooling(self) -> bool:
        return bool(self.settings_dict["OPTIONS"].get("transaction_pooling"))

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        params.pop("transaction_pooling", None)  # ours, not libpq's
        return params

    def init_connection_state(self) -> None:
        super().init_connection_state()
        if self.transaction_pooling:
            if not self.scope_default_checked:
                self._check_scope_default()
            return
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, false)", [scope.SETTING, scope.SYSTEM])
        if not self.get_autocommit():
            self.connection.commit()

    def _check_scope_default(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT current_setting(%s, true)", [scope.SETTING])
            found = cursor.fetchone()[0]
        if not self.get_autocommit():
            self.connection.commit()
        if found != scope.SYSTEM:
            # Never leave this connection open for a query that would run unscoped.
            self.close()
            raise ImproperlyConfigured(
                f"Behind PgBouncer (DATABASE_PGBOUNCER) the app role's sessions must start in "
                f"the 'system' scope, but {scope.SETTING} is {found or 'unset'!r}. Run "
                "manage.py setup_database_roles with DATABASE_PGBOUNCER=true (it runs ALTER "
                f"ROLE ... IN DATABASE ... SET {scope.SETTING} = 'system'), or set PgBouncer's "
                "connect_query (docs/pgbouncer.md)."
            )
        self.scope_default_checked = True
