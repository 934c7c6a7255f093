"""A connection straight to PostgreSQL, for what needs a session of its own: the event
dispatcher's LISTEN (docs/pgbouncer.md).

Behind PgBouncer in transaction pooling mode a client's session is not its own (each
transaction may run on another server connection), so DATABASE_DIRECT_URL names PostgreSQL
itself; the settings require it when DATABASE_PGBOUNCER is on. Without it, this connects
like the app does, to DATABASE_URL. It sets no row-level-security scope: it is for
LISTEN, not for reading vendor-owned rows.
"""

import dj_database_url
import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

# What Django's backend adds to the connection parameters for its own cursors and pool.
DJANGO_ONLY_PARAMS = ("cursor_factory", "context", "prepare_threshold")


def connect(*, using: str = DEFAULT_DB_ALIAS, **options) -> psycopg.Connection:
    return psycopg.connect(**connection_params(using=using), **options)


def connection_params(*, using: str = DEFAULT_DB_ALIAS) -> dict:
    if settings.DATABASE_DIRECT_URL:
        url = dj_database_url.parse(settings.DATABASE_DIRECT_URL)
        params = {
            "host": url.get("HOST"),
            "port": url.get("PORT"),
            "user": url.get("USER"),
            "password": url.get("PASSWORD"),
            "dbname": url.get("NAME"),
            **url.get("OPTIONS", {}),
        }
        return {name: value for name, value in params.items() if value not in (None, "")}
    params = connections[using].get_connection_params()
    for name in DJANGO_ONLY_PARAMS:
        params.pop(name, None)
    return params
