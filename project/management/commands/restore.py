"""`manage.py restore NAME [--storage ALIAS | --dir PATH]`."""

from django.core.management.base import BaseCommand, CommandError

from project.backups import arguments, services


class Command(BaseCommand):
    help = (
        "Restore a backup into the configured database, which must be empty, and its media. "
        "Checks every file against the manifest first and every table's rows and checksum "
        "after; refuses (changing nothing) a damaged backup or a non-empty database."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The backup's folder name, e.g. bazaar-20260101T020000Z.")
        arguments.add_location_arguments(parser)

    def handle(self, *args, name: str, **options):
        source = arguments.location(options)
        try:
            result = services.restore_backup(storage=source, name=name, progress=self.stdout.write)
        except services.BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {result.name}: {result.tables} tables, {result.rows:,} rows and "
                f"{result.media_files} media files, all matching the manifest. Run "
                "`manage.py migrate` if this release has newer migrations."
            )
        )
