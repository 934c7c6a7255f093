"""Which vendor's rows this connection may see: the `app.vendor_id` setting that the
row-level security policies read (docs/database-security.md).

Every connection starts in the 'system' scope (project.db.backends.postgresql sets it as the
session default): workers, the dispatcher, management commands, the admin and the shop's
pages see every row. A backoffice request narrows its own transaction to one vendor with
`vendor_scope`; the setting is transaction-local, so it ends with the transaction and can
never follow the connection into the next request. On SQLite (no RLS) both are no-ops.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections
from psycopg.pq import TransactionStatus

SETTING = "app.vendor_id"
SYSTEM = "system"


def current(*, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """The scope this connection's queries run in now: 'system', a vendor id, or None (unset)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return SYSTEM
    with connection.cursor() as cursor:
        cursor.execute("SELECT NULLIF(current_setting(%s, true), '')", [SETTING])
        return cursor.fetchone()[0]


@contextmanager
def vendor_scope(vendor_id: int, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Inside the current transaction, let this connection see and change only the rows of
    vendor `vendor_id` in the vendor-owned tables. Use it as
    `with transaction.atomic(), vendor_scope(vendor.pk):` — when that is the outermost
    transaction its end clears the scope; inside another one (a test's) the previous scope
    comes back on exit."""
    connection = connections[using]
    outermost = len(connection.atomic_blocks) == 1
    with _scoped(str(int(vendor_id)), using=using, restore=not outermost):
        yield


@contextmanager
def system_scope(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Inside a vendor scope, briefly see every vendor's rows: for the few decisions that are
    the whole order's or the whole marketplace's (an order is shipped when no vendor's line
    is left; a refund never exceeds what all refunds left; a slug is free across shops)."""
    with _scoped(SYSTEM, using=using, restore=True):
        yield


@contextmanager
def _scoped(value: str, *, using: str, restore: bool) -> Iterator[None]:
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    if not connection.in_atomic_block:
        if value == SYSTEM:  # a vendor scope lives only inside a transaction: none to widen
            yield
            return
        # Outside a transaction a transaction-local setting would vanish with the statement.
        raise RuntimeError("A vendor scope is set inside transaction.atomic() only.")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(%s, true), set_config(%s, %s, true)",
            [SETTING, SETTING, value],
        )
        previous = cursor.fetchone()[0] or ""
    try:
        yield
    finally:
        # After a database error the transaction is aborted and takes no query; rolling it
        # (or its savepoint) back undoes the setting anyway. Otherwise put the scope back,
        # also when a domain error is on its way out to a view that will catch it.
        # Left out (one statement less per request) only where the transaction ends right
        # after; a later query in it would see fewer rows, never more.
        ok = connection.connection.info.transaction_status != TransactionStatus.INERROR
        if restore and ok:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, previous])
