"""Row-level security on every vendor-owned table (docs/database-security.md).

The policies read `app.vendor_id` (project.db.scope): 'system' sees and changes every row;
a vendor id sees and changes only that vendor's rows (USING and WITH CHECK); unset (NULL)
sees only the public catalogue (active products of approved vendors, approved vendors) and
changes nothing. FORCE makes the tables' owner obey them too; only a superuser or a
BYPASSRLS role would not, which is why the app connects as neither. SQLite gets nothing.
"""

from django.db import migrations

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION app_scope_is_system() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('app.vendor_id', true) = 'system', false)
$$;
CREATE OR REPLACE FUNCTION app_scope_is_unset() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NULLIF(current_setting('app.vendor_id', true), '') IS NULL
$$;
-- The vendor id of a vendor scope; NULL for 'system', unset or anything malformed.
CREATE OR REPLACE FUNCTION app_scope_vendor_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN scope ~ '^[0-9]{1,18}$' THEN scope::bigint END
    FROM (SELECT NULLIF(current_setting('app.vendor_id', true), '') AS scope) AS setting
$$;
"""

# As scalar subqueries, each is computed once per query (an InitPlan), not once per row, and
# a vendor id can be an index condition on the vendor column.
SYSTEM = "(SELECT app_scope_is_system())"
VENDOR_ID = "(SELECT app_scope_vendor_id())"
UNSET = "(SELECT app_scope_is_unset())"

# table -> the expression naming the row's vendor
VENDOR_OWNED = {
    "shop_vendor": "id",
    "shop_vendormembership": "vendor_id",
    "shop_vendorinvitation": "vendor_id",
    "shop_product": "vendor_id",
    "shop_stockadjustment": "vendor_id",
    "shop_orderline": "vendor_id",
    "shop_shipment": "vendor_id",
    "shop_refund": "vendor_id",
    "shop_reportjob": "vendor_id",
    # The refund's lines belong to the refund's vendor (the subquery obeys shop_refund's policies).
    "shop_refund_lines": (
        "(SELECT refund.vendor_id FROM shop_refund AS refund WHERE refund.id = refund_id)"
    ),
}

# What a connection without a scope may read: what any visitor of the shop may see.
PUBLIC_READS = {
    "shop_vendor": "status = 'approved'",
    "shop_product": (
        "is_active AND EXISTS (SELECT 1 FROM shop_vendor AS vendor "
        "WHERE vendor.id = vendor_id AND vendor.status = 'approved')"
    ),
}


def forward_sql() -> list[str]:
    statements = [FUNCTIONS]
    for table, vendor in VENDOR_OWNED.items():
        statements += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY {table}_system ON {table} USING ({SYSTEM}) WITH CHECK ({SYSTEM})",
            f"CREATE POLICY {table}_vendor ON {table} "
            f"USING ({vendor} = {VENDOR_ID}) WITH CHECK ({vendor} = {VENDOR_ID})",
        ]
        if table in PUBLIC_READS:
            statements.append(
                f"CREATE POLICY {table}_public ON {table} FOR SELECT "
                f"USING ({UNSET} AND {PUBLIC_READS[table]})"
            )
    return statements


def backward_sql() -> list[str]:
    statements = []
    for table in VENDOR_OWNED:
        statements += [
            f"DROP POLICY IF EXISTS {table}_public ON {table}",
            f"DROP POLICY IF EXISTS {table}_vendor ON {table}",
            f"DROP POLICY IF EXISTS {table}_system ON {table}",
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        ]
    statements += [
        "DROP FUNCTION IF EXISTS app_scope_vendor_id()",
        "DROP FUNCTION IF EXISTS app_scope_is_unset()",
        "DROP FUNCTION IF EXISTS app_scope_is_system()",
    ]
    return statements


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in forward_sql():
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in backward_sql():
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("shop", "0004_reports_private_storage")]

    operations = [migrations.RunPython(forward, backward)]
