"""`manage.py backup` and `manage.py restore` on real PostgreSQL.

A private database (dropped and created by this module) is migrated by the owner role as in
production (`manage.py migrate` in its own process), filled through the real services as the
app role, backed up by the `backup` command (pg_dump and pg_restore as the owner), dropped,
created empty again and restored by the `restore` command. The test's own fingerprint
of every table (row count and an md5 of all rows, read as the superuser, so row-level security
hides nothing) and the shopper's order page must be the same before and after.
"""

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, storages
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client, override_settings
from django.urls import reverse
from PIL import Image
from psycopg import sql

from accounts.models import User
from project.backups import exports, manifest, services
from shop.models import Order, PaymentStatus
from shop.services import payments as payment_services
from tests import factories
from tests.fixtures import database
from tests.integration.payments_support import DECLINE, card, place_order


def _url(role: database.roles.Role, dbname: str) -> str:
    host, port = database._ADMIN["HOST"] or "127.0.0.1", database._ADMIN["PORT"] or 5432
    return f"postgres://{role.name}:{role.password}@{host}:{port}/{dbname}"


def manage(*args: str, **variables: str) -> subprocess.CompletedProcess:
    """`manage.py` as an operator runs it: its own process, production settings, these
    environment variables and no others."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "project.settings", **variables},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
        timeout=300,
    )


class Site:
    """The private database and folders, and `manage.py` run against them."""

    def __init__(self, name: str, root: Path):
        self.name = name
        self.root = root
        self.media = root / "media"
        self.private = root / "private"
        self.backups = root / "backups"

    def manage(self, *args: str, dbname: str | None = None) -> subprocess.CompletedProcess:
        dbname = dbname or self.name
        return manage(
            *args,
            DATABASE_URL=_url(database.APP, dbname),
            DATABASE_MIGRATE_URL=_url(database.OWNER, dbname),
            BAZAAR_VAR_DIR=str(self.root / "var"),
            MEDIA_ROOT=str(self.media),
            PRIVATE_FILES_ROOT=str(self.private),
            BACKUP_ROOT=str(self.backups),
            LOG_LEVEL="WARNING",
        )

    def create_empty(self, dbname: str | None = None) -> None:
        """Drop the database (whoever is connected) and create it empty, owned by the owner."""
        identifier = sql.Identifier(dbname or self.name)
        with database.admin_connect("postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    identifier, sql.Identifier(database.OWNER.name)
                )
            )

    def drop(self, dbname: str | None = None) -> None:
        with database.admin_connect("postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(dbname or self.name)
                )
            )

    def connected(self):
        """Run this process's Django connection (the app role) on the private database."""
        return _ConnectedTo(self.name)


class _ConnectedTo:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.saved = connections["default"].settings_dict["NAME"]
        _point_at(self.name)

    def __exit__(self, *exc_info):
        _point_at(self.saved)


def _point_at(name: str) -> None:
    connection = connections["default"]
    connection.close()
    connection.close_pool()  # the pool keeps connections to the database it was made for
    for settings_dict in (settings.DATABASES["default"], connection.settings_dict):
        settings_dict["NAME"] = name


def fingerprint(dbname: str) -> dict[str, tuple[int, str]]:
    """(rows, md5 of every row's text in a stable order) of every table, as the superuser."""
    result = {}
    with database.admin_connect(dbname, autocommit=True) as admin:
        admin.execute("SET TimeZone = 'UTC'")
        tables = [
            name
            for (name,) in admin.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        for table in tables:
            result[table] = admin.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text),"
                    " '')) FROM {} AS t"
                ).format(sql.Identifier(table))
            ).fetchone()
    return result


def security(dbname: str) -> dict:
    """Row-level security, triggers and the app role's privileges: what pg_restore must
    bring back besides the rows."""
    with database.admin_connect(dbname, autocommit=True) as admin:
        return {
            "policies": admin.execute(
                "SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies ORDER BY 1, 2"
            ).fetchall(),
            "forced": admin.execute(
                "SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity"
                " ORDER BY 1"
            ).fetchall(),
            "triggers": admin.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
            ).fetchall(),
            "app_privileges": admin.execute(
                "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type)"
                " FROM information_schema.role_table_grants WHERE grantee = %s"
                " GROUP BY 1 ORDER BY 1",
                [database.APP.name],
            ).fetchall(),
        }


def order_page(order_id: int, shopper_email: str) -> str:
    """The shopper's order page, what it says: the <main> element without its CSRF tokens."""
    client = Client()
    client.force_login(User.objects.get(email=shopper_email))
    response = client.get(reverse("shop:order_detail", args=[order_id]))
    assert response.status_code == 200
    main = re.search(r"<main\b.*?</main>", response.text, re.DOTALL).group(0)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", main)


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _seed() -> dict:
    """A small shop, its orders placed and paid through the real services."""
    shopper = factories.UserFactory(email="rhea@example.com", full_name="Rhea Restore")
    factories.VendorMembershipFactory(user__email="owner@example.com")
    kettle = factories.ProductFactory(
        name="Copper Kettle", image=ContentFile(_png("orange"), name="kettle.png"), stock=20
    )
    tea = factories.ProductFactory(name="Loose-Leaf Tea", stock=50)
    lamp = factories.ProductFactory(name="Desk Lamp", stock=5)
    paid = place_order(shopper, (kettle, 1), (tea, 3))
    payment_services.start_payment(order=paid, card_token=card())
    pending = place_order(shopper, (tea, 2))
    declined = place_order(shopper, (lamp, 1))
    payment_services.start_payment(order=declined, card_token=card(DECLINE))
    storages["private"].save("reports/sales-2026-01.csv", ContentFile(b"order,total\n1,42.00\n"))
    assert Order.objects.get(pk=paid.pk).payments.get().status == PaymentStatus.CAPTURED
    return {"shopper": shopper.email, "orders": [paid.pk, declined.pk, pending.pk]}


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seed, back up, drop the database, restore: the before and after of each to compare.
    (After django_db_setup, this process's connections run as the app role.)"""
    test_database = connections["default"].settings_dict["NAME"]
    site = Site(f"{test_database}_backups", tmp_path_factory.mktemp("backups"))
    storages_here = {
        **settings.STORAGES,
        "private": {**settings.STORAGES["private"], "OPTIONS": {"location": site.private}},
        "backups": {**settings.STORAGES["backups"], "OPTIONS": {"location": site.backups}},
    }
    with (
        django_db_blocker.unblock(),
        override_settings(
            MEDIA_ROOT=site.media,
            STORAGES=storages_here,
            SIMULATED_GATEWAY_LEDGER_PATH=site.root / "gateway.sqlite3",
            # As `manage.py` would read them for this site: the app role, the owner for
            # pg_dump and pg_restore, and the role a restore grants.
            DATABASE_URL=_url(database.APP, site.name),
            DATABASE_MIGRATE_URL=_url(database.OWNER, site.name),
            DATABASE_APP_ROLE=database.APP.name,
        ),
    ):
        site.create_empty()
        migrate = site.manage("migrate", "--no-input")
        assert migrate.returncode == 0, migrate.stderr
        with site.connected():
            site.seeded_as = _current_user()
            site.seeded = _seed()
            site.pages_before = [
                order_page(pk, site.seeded["shopper"]) for pk in site.seeded["orders"]
            ]
        with site.connected():
            site.backup = run_command("backup")
        site.fingerprint_before = fingerprint(site.name)
        site.security_before = security(site.name)
        site.media_before = _files(site.media) | _files(site.private)

        site.create_empty()
        shutil.rmtree(site.media)
        shutil.rmtree(site.private)
        site.backup_name = next(site.backups.iterdir()).name
        with site.connected():
            site.restore = run_command("restore", site.backup_name)
        site.fingerprint_after = fingerprint(site.name)
        with site.connected():
            site.served_as = _current_user()
            site.pages_after = [
                order_page(pk, site.seeded["shopper"]) for pk in site.seeded["orders"]
            ]
        # Signing in to see the pages wrote a session and an audit entry.
        site.fingerprint_served = fingerprint(site.name)
        yield site
    site.drop()


def _current_user() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def run_command(*args: str) -> str:
    """A management command in this process (its output), so coverage sees the services."""
    output = io.StringIO()
    call_command(*args, stdout=output)
    return output.getvalue()


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def test_restore_brings_back_every_table_row_for_row(site):
    before, after = site.fingerprint_before, site.fingerprint_after

    assert after == before
    assert before["shop_order"][0] == 3
    assert before["shop_orderline"][0] == 4
    assert before["shop_payment"][0] == 2
    assert before["audit_auditentry"][0] > 0
    assert "all matching the manifest" in site.restore


def test_restored_shop_serves_the_same_order_pages(site):
    # The app role, bound by row-level security: the restore granted it what it needs.
    assert site.seeded_as == site.served_as == database.APP.name
    assert site.pages_after == site.pages_before
    paid_page = site.pages_after[0]
    assert f"BZ-{site.seeded['orders'][0]:06d}" in paid_page
    assert "Copper Kettle" in paid_page
    assert "Loose-Leaf Tea" in paid_page


def test_restore_keeps_row_level_security_triggers_and_the_app_roles_grants(site):
    after = security(site.name)

    assert after == site.security_before
    assert ("shop_product",) in after["forced"]
    assert ("audit_auditentry_append_only",) in after["triggers"]
    assert ("audit_auditentry", "INSERT,SELECT") in after["app_privileges"]


def test_restore_brings_back_the_media_and_private_files(site):
    restored = _files(site.media) | _files(site.private)

    assert restored == site.media_before
    assert any(name.startswith("products/") for name in restored)
    assert restored["reports/sales-2026-01.csv"] == b"order,total\n1,42.00\n"


def test_manifest_records_files_rows_and_business_table_checksums(site):
    manifest = json.loads((site.backups / site.backup_name / "manifest.json").read_text())

    names = {entry["name"] for entry in manifest["files"]}
    assert {
        "database.dump",
        "shop.order.json.gz",
        "media-default.tar",
        "media-private.tar",
    } <= names
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"])
    for table in exports.business_tables():
        assert manifest["tables"][table.name]["rows"] == site.fingerprint_before[table.name][0]
        assert len(manifest["tables"][table.name]["sha256"]) == 64
    assert manifest["exports"]["shop.Order"]["rows"] == 3
    assert "export shop.Order: 3 rows" in site.backup
    assert f"Backup {site.backup_name} written: {len(manifest['tables'])} tables" in site.backup
    assert "0001_initial" in manifest["migrations"]["shop"]


def test_json_export_has_the_orders_and_no_password_hashes(site):

    folder = site.backups / site.backup_name
    users = json.loads(gzip.decompress((folder / "accounts.user.json.gz").read_bytes()))
    orders = json.loads(gzip.decompress((folder / "shop.order.json.gz").read_bytes()))

    assert {user["fields"]["email"] for user in users} >= {"rhea@example.com", "owner@example.com"}
    assert all("password" not in user["fields"] for user in users)
    assert sorted(order["pk"] for order in orders) == sorted(site.seeded["orders"])


def test_refuses_a_corrupted_backup_and_changes_nothing(site, settings, tmp_path):
    copy = tmp_path / site.backup_name
    shutil.copytree(site.backups / site.backup_name, copy)
    dump = copy / "database.dump"
    damaged = bytearray(dump.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    dump.write_bytes(bytes(damaged))
    empty = f"{site.name}_empty"
    site.create_empty(empty)
    settings.DATABASE_URL = _url(database.APP, empty)
    settings.DATABASE_MIGRATE_URL = _url(database.OWNER, empty)
    try:
        with pytest.raises(CommandError) as refused:
            call_command("restore", site.backup_name, dir=str(tmp_path))

        assert f"{site.backup_name}/database.dump does not match the manifest" in str(refused.value)
        assert "the backup is damaged; nothing changed" in str(refused.value)
        assert fingerprint(empty) == {}
    finally:
        site.drop(empty)


def test_refuses_a_database_that_is_not_empty_and_changes_nothing(site, settings):
    settings.DATABASE_URL = _url(database.APP, site.name)
    settings.DATABASE_MIGRATE_URL = _url(database.OWNER, site.name)
    settings.MEDIA_ROOT = site.media
    newer = site.media / "products" / "newer.png"
    newer.write_bytes(b"a picture uploaded after the restore")
    try:
        with pytest.raises(CommandError) as refused:
            call_command("restore", site.backup_name, dir=str(site.backups))

        assert f"The database '{site.name}' is not empty" in str(refused.value)
        assert str(refused.value).endswith("Nothing changed.")
        assert fingerprint(site.name) == site.fingerprint_served
        assert newer.read_bytes() == b"a picture uploaded after the restore"
    finally:
        newer.unlink()


def test_the_embedded_sqlite_database_is_refused_with_what_to_do_instead(tmp_path):
    result = manage("backup", BAZAAR_VAR_DIR=str(tmp_path))

    assert result.returncode == 1
    assert "backups need PostgreSQL" in result.stderr
    assert f"copy {tmp_path / 'bazaar.sqlite3'}" in result.stderr


def test_a_backup_in_an_object_store_is_verified_while_it_is_downloaded(site, tmp_path):
    """A storage without local paths (here Django's in-memory one, as an object store would
    be): each file is downloaded and hashed, and a damaged one is refused."""
    store = InMemoryStorage()
    folder = site.backups / site.backup_name
    for path in folder.iterdir():
        store.save(f"{site.backup_name}/{path.name}", ContentFile(path.read_bytes()))
    document = manifest.load(store, site.backup_name)

    local = manifest.verify_files(store, site.backup_name, document, work_dir=tmp_path)

    assert local["database.dump"] == tmp_path / "database.dump"
    assert local["database.dump"].read_bytes() == (folder / "database.dump").read_bytes()
    assert services.list_backups(store) == {
        site.backup_name: datetime.strptime(site.backup_name, "bazaar-%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC
        )
    }
    store.delete(f"{site.backup_name}/shop.order.json.gz")
    store.save(f"{site.backup_name}/shop.order.json.gz", ContentFile(b"[]"))
    with pytest.raises(manifest.CorruptBackup, match="shop.order.json.gz does not match"):
        manifest.verify_files(store, site.backup_name, document, work_dir=tmp_path)


def test_backup_with_prune_keeps_the_new_backup_and_drops_what_retention_does_not_keep(
    site, settings, tmp_path
):
    settings.DATABASE_URL = _url(database.APP, site.name)
    settings.DATABASE_MIGRATE_URL = _url(database.OWNER, site.name)
    for stamp in ("20250101T020000Z", "20250102T020000Z"):  # a month apart from nothing
        old = tmp_path / f"bazaar-{stamp}"
        old.mkdir()
        (old / "manifest.json").write_text("{}")
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 1, 0, 1

    with site.connected():
        output = run_command("backup", "--prune", f"--dir={tmp_path}")

    (new,) = (path.name for path in tmp_path.iterdir())
    assert new.startswith("bazaar-2")
    assert (tmp_path / new / "manifest.json").exists()
    assert "deleting bazaar-20250101T020000Z" in output
    assert "Kept 1 backups, deleted 2." in output


def test_an_unknown_storage_is_refused_by_name():
    with pytest.raises(CommandError, match="No storage 'offsite'"):
        call_command("prune_backups", storage="offsite")
