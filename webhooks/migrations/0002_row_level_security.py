"""Row-level security on the webhook tables, like every vendor-owned table
(shop/migrations/0005_row_level_security.py, docs/database-security.md): 'system' sees and
changes every row, a vendor scope only its own, an unset scope nothing. SQLite gets nothing."""

from django.db import migrations

SYSTEM = "(SELECT app_scope_is_system())"
VENDOR_ID = "(SELECT app_scope_vendor_id())"
TABLES = ["webhooks_endpoint", "webhooks_delivery"]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        for statement in [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY {table}_system ON {table} USING ({SYSTEM}) WITH CHECK ({SYSTEM})",
            f"CREATE POLICY {table}_vendor ON {table} "
            f"USING (vendor_id = {VENDOR_ID}) WITH CHECK (vendor_id = {VENDOR_ID})",
        ]:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        for statement in [
            f"DROP POLICY IF EXISTS {table}_vendor ON {table}",
            f"DROP POLICY IF EXISTS {table}_system ON {table}",
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        ]:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_endpoints_and_deliveries"),
        # The scope functions the policies call.
        ("shop", "0005_row_level_security"),
    ]

    operations = [migrations.RunPython(forward, backward)]
