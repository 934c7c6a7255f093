"""Backups: `manage.py backup`, `restore` and `prune_backups` (docs/operations.md).

A backup is one folder in a Django storage (the `backups` alias by default, a folder under
var/): a PostgreSQL dump (`pg_dump -Fc`, as the owner role), a JSON export of the business
data, a tar of each media storage and, written last, `manifest.json` with every file's size
and SHA-256, each table's row count, a checksum of each business table and the migration
state. The dump and the export read one snapshot, so they agree row for row.
"""
