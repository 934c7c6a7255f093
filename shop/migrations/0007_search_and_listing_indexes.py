"""Full-text search and the catalogue's indexes (docs/search.md).

On PostgreSQL: the pg_trgm and fuzzystrmatch extensions (trusted: the database's owner may
create them), the search documents and the vocabulary of product names, kept by triggers on
shop_product (an INSERT statement writes its rows' documents in one go, so bulk loads stay
fast; an UPDATE that changes a name or description rewrites that row's), backfilled after
the triggers exist so no product is missed, and then indexed. Every index is built
CONCURRENTLY (writes go on), hence `atomic = False`. SQLite gets the tables (left empty:
its search is icontains) and plain indexes.
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
from django.contrib.postgres.operations import CreateExtension, TrigramExtension
from django.db import migrations, models

from project.db.operations import (
    AddIndexConcurrentlyOnPostgres,
    RemoveIndexConcurrentlyOnPostgres,
)

FORWARD_SQL = [
    # The text a product is found by: its name outweighs its description. English stemming,
    # so "chairs" finds "chair"; the configuration is named, so the function is immutable.
    """
    CREATE OR REPLACE FUNCTION shop_product_search_document(name text, description text)
    RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT setweight(to_tsvector('pg_catalog.english', coalesce(name, '')), 'A')
            || setweight(to_tsvector('pg_catalog.english', coalesce(description, '')), 'B')
    $$
    """,
    # Whole words of three letters or more, lower-cased: what a misspelt word is matched to.
    """
    CREATE OR REPLACE FUNCTION shop_product_name_words(name text)
    RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT word FROM unnest(tsvector_to_array(to_tsvector('pg_catalog.simple', name))) AS word
        WHERE word ~ '^[[:alpha:]]{3,60}$'
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION shop_product_search_on_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO shop_productsearch (product_id, document)
        SELECT id, shop_product_search_document(name, description) FROM new_products
        ON CONFLICT (product_id) DO UPDATE SET document = EXCLUDED.document;
        INSERT INTO shop_searchword (word)
        SELECT DISTINCT shop_product_name_words(name) FROM new_products
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION shop_product_search_on_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO shop_productsearch (product_id, document)
        VALUES (NEW.id, shop_product_search_document(NEW.name, NEW.description))
        ON CONFLICT (product_id) DO UPDATE SET document = EXCLUDED.document;
        INSERT INTO shop_searchword (word)
        SELECT shop_product_name_words(NEW.name)
        ON CONFLICT DO NOTHING;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER shop_product_search_insert AFTER INSERT ON shop_product
    REFERENCING NEW TABLE AS new_products
    FOR EACH STATEMENT EXECUTE FUNCTION shop_product_search_on_insert()
    """,
    # Stock and price updates (every checkout) leave the WHEN false and cost nothing more.
    """
    CREATE TRIGGER shop_product_search_update AFTER UPDATE OF name, description ON shop_product
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
                       OR OLD.description IS DISTINCT FROM NEW.description)
    EXECUTE FUNCTION shop_product_search_on_update()
    """,
    # Products that existed before the triggers (created since are already there).
    """
    INSERT INTO shop_productsearch (product_id, document)
    SELECT id, shop_product_search_document(name, description) FROM shop_product
    ON CONFLICT (product_id) DO NOTHING
    """,
    """
    INSERT INTO shop_searchword (word)
    SELECT DISTINCT shop_product_name_words(name) FROM shop_product
    ON CONFLICT DO NOTHING
    """,
]

BACKWARD_SQL = [
    "DROP TRIGGER IF EXISTS shop_product_search_update ON shop_product",
    "DROP TRIGGER IF EXISTS shop_product_search_insert ON shop_product",
    "DROP FUNCTION IF EXISTS shop_product_search_on_update()",
    "DROP FUNCTION IF EXISTS shop_product_search_on_insert()",
    "DROP FUNCTION IF EXISTS shop_product_name_words(text)",
    "DROP FUNCTION IF EXISTS shop_product_search_document(text, text)",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD_SQL:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD_SQL:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("shop", "0006_product_thumbnails")]

    operations = [
        TrigramExtension(),
        CreateExtension("fuzzystrmatch"),
        migrations.CreateModel(
            name="ProductSearch",
            fields=[
                (
                    "product",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search",
                        serialize=False,
                        to="shop.product",
                    ),
                ),
                ("document", django.contrib.postgres.search.SearchVectorField()),
            ],
        ),
        migrations.CreateModel(
            name="SearchWord",
            fields=[
                ("word", models.CharField(max_length=60, primary_key=True, serialize=False)),
            ],
        ),
        migrations.RunPython(forward, backward),
        AddIndexConcurrentlyOnPostgres(
            model_name="productsearch",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["document"], name="productsearch_document"
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="product",
            index=models.Index(
                fields=["is_active", "-created_at", "-id"], name="product_visible_newest"
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="product",
            index=models.Index(
                fields=["category", "is_active", "-created_at", "-id"],
                name="product_category_newest",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="product",
            index=models.Index(
                condition=models.Q(("stock__gt", 0)),
                fields=["is_active", "-stock", "-created_at", "-id"],
                name="product_featured",
            ),
        ),
        # Superseded by product_visible_newest (the same order, with its tie-breaker).
        RemoveIndexConcurrentlyOnPostgres(model_name="product", name="product_active_newest"),
    ]
