"""Back up, restore and prune (docs/operations.md). The management commands are thin
wrappers; `progress` receives one line per step for them to print."""

import importlib.metadata
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import django
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, InvalidStorageError, Storage, storages
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from project.backups import exports, manifest, media, postgres, retention
from project.backups.errors import BackupError

PREFIX = "bazaar-"
STAMP = "%Y%m%dT%H%M%SZ"
DUMP = "database.dump"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BackupResult:
    name: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class RestoreResult:
    name: str
    tables: int
    rows: int
    media_files: int
    app_role: str | None


@dataclass(frozen=True)
class PruneResult:
    kept: list[str]
    deleted: list[str]


def backup_storage(*, alias: str = "", folder: str = "") -> Storage:
    """Where backups are: a folder given on the command line, a STORAGES alias, or the
    default BACKUP_STORAGE alias (a folder under var/ unless configured otherwise)."""
    if folder:
        return FileSystemStorage(
            location=folder, file_permissions_mode=0o600, directory_permissions_mode=0o700
        )
    try:
        return storages[alias or settings.BACKUP_STORAGE]
    except InvalidStorageError as error:
        raise BackupError(f"No storage {alias or settings.BACKUP_STORAGE!r}: {error}") from None


def create_backup(
    *,
    storage: Storage,
    include_password_hashes: bool = False,
    progress: Progress = lambda line: None,
) -> BackupResult:
    """Dump the database (pg_dump -Fc as the owner) and export the business data as JSON from
    one REPEATABLE READ snapshot, archive the media storages, and save them with the manifest
    (last) as one new folder of `storage`."""
    _require_postgresql("back up")
    started = timezone.now()
    name = PREFIX + started.astimezone(UTC).strftime(STAMP)
    if storage.exists(name):
        raise BackupError(f"A backup named {name} already exists; try again in a second.")
    with tempfile.TemporaryDirectory(prefix="bazaar-backup-") as work_text:
        work = Path(work_text)
        contents = _dump_and_export(
            work, include_password_hashes=include_password_hashes, progress=progress
        )
        media_summary = {}
        for alias in settings.BACKUP_MEDIA_STORAGES:
            path = work / f"media-{alias}.tar"
            with _step(progress, f"media storage {alias!r}") as note:
                count = media.archive(storages[alias], path=path)
                note(f"{count} files, {path.stat().st_size:,} bytes")
            media_summary[alias] = {"file": path.name, "files": count}
        files = sorted(path for path in work.iterdir())
        with _step(progress, "checksums"):
            entries = [manifest.file_entry(path) for path in files]
        document = {
            "format": manifest.FORMAT,
            "name": name,
            "started_at": started.isoformat(),
            "finished_at": timezone.now().isoformat(),
            "bazaar_version": _bazaar_version(),
            "django_version": django.get_version(),
            "include_password_hashes": include_password_hashes,
            **contents,
            "media": media_summary,
            "files": entries,
        }
        (work / manifest.NAME).write_text(json.dumps(document, indent=2, sort_keys=True))
        with _step(progress, f"saving to {_describe(storage)}/{name}"):
            for path in [*files, work / manifest.NAME]:  # the manifest last: the backup is done
                _save(storage, f"{name}/{path.name}", path)
    return BackupResult(name=name, manifest=document)


def restore_backup(
    *, storage: Storage, name: str, progress: Progress = lambda line: None
) -> RestoreResult:
    """Restore backup `name` into the configured database, which must be empty, and its media.

    Refuses, changing nothing, a damaged backup (a file's size or SHA-256 differs from the
    manifest), a backup made by migrations this code does not have, and a database that is
    not empty. Afterwards checks every table's row count and every business table's checksum
    against the manifest."""
    _require_postgresql("restore")
    document = manifest.load(storage, name)
    _refuse_unknown_migrations(document)
    database = postgres.OwnerDatabase.from_settings()
    with database.connect() as owner, owner.cursor() as cursor:
        existing = postgres.existing_relations(cursor)
    if existing:
        raise BackupError(
            f"The database {database.name!r} is not empty ({len(existing)} objects, e.g. "
            f"{', '.join(existing[:3])}). restore loads only into an empty database: create a "
            f"new one (createdb -O {database.user} NAME) or drop this one. Nothing changed."
        )
    media_storages = {alias: _media_storage(alias) for alias in document["media"]}
    with tempfile.TemporaryDirectory(prefix="bazaar-restore-") as work_text:
        with _step(progress, f"verifying {len(document['files'])} files against the manifest"):
            local = manifest.verify_files(storage, name, document, work_dir=Path(work_text))
        with _step(progress, f"pg_restore into {database.name!r} as {database.user!r}"):
            postgres.restore_dump(database, path=local[DUMP])
        with _step(progress, "app role privileges") as note:
            app_role = postgres.grant_app_role(database)
            note(f"granted to {app_role}" if app_role else "one role: nothing to grant")
        media_files = 0
        for alias, target in media_storages.items():
            with _step(progress, f"media storage {alias!r}") as note:
                count = media.unpack(target, path=local[document["media"][alias]["file"]])
                note(f"{count} files")
                media_files += count
    with _step(progress, "row counts and table checksums"):
        _verify_tables(document)
    return RestoreResult(
        name=name,
        tables=len(document["tables"]),
        rows=sum(table["rows"] for table in document["tables"].values()),
        media_files=media_files,
        app_role=app_role,
    )


def list_backups(storage: Storage) -> dict[str, datetime]:
    """Finished backups (those with a manifest) by name, with when each was taken."""
    try:
        folders, _ = storage.listdir("")
    except FileNotFoundError:
        return {}
    found = {}
    for folder in folders:
        try:
            stamp = datetime.strptime(folder.removeprefix(PREFIX), STAMP).replace(tzinfo=UTC)
        except ValueError:
            continue
        if folder.startswith(PREFIX) and storage.exists(f"{folder}/{manifest.NAME}"):
            found[folder] = stamp
    return found


def prune_backups(
    *,
    storage: Storage,
    daily: int,
    weekly: int,
    monthly: int,
    dry_run: bool = False,
    progress: Progress = lambda line: None,
) -> PruneResult:
    """Delete the finished backups that retention does not keep (the newest of each of the
    last `daily` days, `weekly` ISO weeks and `monthly` months). Unfinished folders are left
    for an operator to look at."""
    backups = list_backups(storage)
    keep = retention.backups_to_keep(backups.values(), daily=daily, weekly=weekly, monthly=monthly)
    kept = sorted(name for name, stamp in backups.items() if stamp in keep)
    doomed = sorted(name for name, stamp in backups.items() if stamp not in keep)
    for name in doomed:
        progress(f"{'would delete' if dry_run else 'deleting'} {name}")
        if not dry_run:
            _delete_folder(storage, name)
    return PruneResult(kept=kept, deleted=doomed)


def _dump_and_export(work: Path, *, include_password_hashes: bool, progress: Progress) -> dict:
    """pg_dump and the JSON export, both reading one exported snapshot; the counts and
    checksums are taken in that snapshot too."""
    database = postgres.OwnerDatabase.from_settings()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        progress(f"Snapshot {snapshot}: pg_dump as {database.user!r} runs beside the export.")
        started = time.monotonic()
        dump = postgres.start_dump(database, snapshot=snapshot, path=work / DUMP)
        try:
            exported = {}
            for model in exports.business_models():
                path = work / f"{model._meta.label_lower}.json.gz"
                with _step(progress, f"export {model._meta.label}") as note:
                    rows = exports.export_model(
                        model, path=path, include_password_hashes=include_password_hashes
                    )
                    note(f"{rows:,} rows")
                exported[model._meta.label] = {"file": path.name, "rows": rows}
            with _step(progress, "row counts and business table checksums"):
                tables: dict[str, dict[str, int | str]] = {
                    table: {"rows": rows}
                    for table, rows in postgres.count_rows(
                        cursor, postgres.user_tables(cursor)
                    ).items()
                }
                for table in exports.business_tables():
                    tables[table.name]["sha256"] = postgres.table_checksum(
                        connection.connection, table.name, order_by=table.order_by
                    )
            cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, id")
            migrations: dict[str, list[str]] = {}
            for app, migration in cursor.fetchall():
                migrations.setdefault(app, []).append(migration)
            cursor.execute("SHOW server_version")
            server_version = cursor.fetchone()[0]
            with _step(progress, "waiting for pg_dump"):
                postgres.wait_for(dump, what="pg_dump")
        finally:
            if dump.poll() is None:
                dump.kill()
                dump.wait()
    progress(f"Database dump: {(work / DUMP).stat().st_size:,} bytes.")
    return {
        "database": {
            "vendor": "postgresql",
            "name": database.name,
            "server_version": server_version,
            "snapshot": snapshot,
            "dump_seconds": round(time.monotonic() - started, 2),
        },
        "migrations": migrations,
        "tables": tables,
        "exports": exported,
    }


def _verify_tables(document: dict) -> None:
    """The restored database against the manifest: every table's row count, every business
    table's checksum. Read through the app's own connection (the app role, if there is one),
    which also proves it was granted what it needs."""
    connection.close()
    mismatches = []
    with transaction.atomic(), connection.cursor() as cursor:
        counts = postgres.count_rows(cursor, document["tables"])
        for table, expected in document["tables"].items():
            if counts[table] != expected["rows"]:
                mismatches.append(f"{table}: {counts[table]} rows, expected {expected['rows']}")
            elif "sha256" in expected:
                checksum = postgres.table_checksum(
                    connection.connection, table, order_by=_order_column(table)
                )
                if checksum != expected["sha256"]:
                    mismatches.append(f"{table}: checksum differs from the backup's")
    if mismatches:
        raise BackupError(
            "The restored database does not match the backup: " + "; ".join(mismatches)
        )


def _order_column(table: str) -> str:
    return {item.name: item.order_by for item in exports.business_tables()}.get(table, "id")


def _refuse_unknown_migrations(document: dict) -> None:
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    unknown = sorted(
        f"{app}.{name}"
        for app, names in document["migrations"].items()
        for name in names
        if (app, name) not in known
    )
    if unknown:
        raise BackupError(
            f"The backup was made by a Bazaar with migrations this code does not have "
            f"({', '.join(unknown[:5])}{', …' if len(unknown) > 5 else ''}): restore it with "
            f"that release (Bazaar {document.get('bazaar_version')}). Nothing changed."
        )


def _media_storage(alias: str) -> Storage:
    try:
        return storages[alias]
    except InvalidStorageError as error:
        raise BackupError(f"The backup has media of storage {alias!r}: {error}") from None


def _require_postgresql(action: str) -> None:
    if connection.vendor != "postgresql":
        raise BackupError(
            f"Cannot {action}: backups need PostgreSQL (DATABASE_URL). The embedded SQLite "
            "database is a single file for a developer's machine: stop `make run` and copy "
            f"{settings.DATABASES['default']['NAME']} with MEDIA_ROOT and PRIVATE_FILES_ROOT."
        )


class _LocalFile(File):
    """A finished file in the work folder: a folder storage moves it instead of copying."""

    def temporary_file_path(self) -> str:
        return str(self.name)


def _save(storage: Storage, name: str, path: Path) -> None:
    with path.open("rb") as stream:
        saved = storage.save(name, _LocalFile(stream, name=str(path)))
    if saved != name:
        raise BackupError(f"The storage saved {name} as {saved}; the backup is incomplete.")


def _delete_folder(storage: Storage, name: str) -> None:
    for inner in media.walk(storage, name):
        storage.delete(inner)
    if isinstance(storage, FileSystemStorage):
        storage.delete(name)  # the empty folder (object stores have none)


def _describe(storage: Storage) -> str:
    location = getattr(storage, "location", None)
    return str(location) if location else type(storage).__name__


def _bazaar_version() -> str:
    try:
        return importlib.metadata.version("bazaar")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _step:
    """Times one step and reports it: "media storage 'default': 12 files (0.4 s)"."""

    def __init__(self, progress: Progress, title: str):
        self.progress, self.title = progress, title
        self.notes: list[str] = []

    def __enter__(self) -> Callable[[str], None]:
        self.started = time.monotonic()
        return self.notes.append

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            detail = f": {', '.join(self.notes)}" if self.notes else ""
            self.progress(f"{self.title}{detail} ({time.monotonic() - self.started:.1f} s)")
