"""Migration operations that differ by database vendor."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations


class _ConcurrentlyOnPostgres(migrations.operations.base.Operation):
    """The CONCURRENTLY form of an index operation on PostgreSQL (writes go on while a big
    table is indexed; the migration must have `atomic = False`), its plain form elsewhere
    (SQLite)."""

    concurrent: type[migrations.operations.base.Operation]
    plain: type[migrations.operations.base.Operation]

    def _operation(self, schema_editor) -> type[migrations.operations.base.Operation]:
        return self.concurrent if schema_editor.connection.vendor == "postgresql" else self.plain

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._operation(schema_editor).database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._operation(schema_editor).database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


class AddIndexConcurrentlyOnPostgres(_ConcurrentlyOnPostgres, AddIndexConcurrently):
    """`CREATE INDEX CONCURRENTLY` on PostgreSQL, a plain `CREATE INDEX` elsewhere."""

    concurrent = AddIndexConcurrently
    plain = migrations.AddIndex


class RemoveIndexConcurrentlyOnPostgres(_ConcurrentlyOnPostgres, RemoveIndexConcurrently):
    """`DROP INDEX CONCURRENTLY` on PostgreSQL, a plain `DROP INDEX` elsewhere."""

    concurrent = RemoveIndexConcurrently
    plain = migrations.RemoveIndex
