"""Django's PostgreSQL backend, with every connection starting in the 'system' scope.

Row-level security (docs/database-security.md) lets a connection whose `app.vendor_id` is
unset see only the public catalogue. The app's own processes are trusted with every row
unless a backoffice request narrows its transaction to one vendor (project.db.scope), so each
connection Django hands out (new, or taken from psycopg's pool) has the session default set
to 'system' again: a vendor scope is transaction-local and cannot outlive its request, and
even a scope set by mistake for the session would not survive the next checkout.
"""

from django.db.backends.postgresql import base

from project.db import scope


class DatabaseWrapper(base.DatabaseWrapper):
    def init_connection_state(self) -> None:
        super().init_connection_state()
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, false)", [scope.SETTING, scope.SYSTEM])
        if not self.get_autocommit():
            self.connection.commit()
