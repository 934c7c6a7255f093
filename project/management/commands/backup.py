"""`manage.py backup [--storage ALIAS | --dir PATH] [--include-password-hashes] [--prune]`."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from project.backups import arguments, services


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump -Fc as the owner role), a JSON export of the business "
        "data and the media storages, with a manifest of checksums, as one new folder of the "
        "backup storage (BACKUP_STORAGE, a folder at BACKUP_ROOT by default). PostgreSQL only."
    )

    def add_arguments(self, parser):
        arguments.add_location_arguments(parser)
        parser.add_argument(
            "--include-password-hashes",
            action="store_true",
            help="Keep the users' password hashes in the JSON export (the dump has them anyway).",
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Afterwards delete the backups retention does not keep (see prune_backups).",
        )

    def handle(self, *args, **options):
        target = arguments.location(options)
        try:
            result = services.create_backup(
                storage=target,
                include_password_hashes=options["include_password_hashes"],
                progress=self.stdout.write,
            )
        except services.BackupError as error:
            raise CommandError(str(error)) from None
        rows = sum(table["rows"] for table in result.manifest["tables"].values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup {result.name} written: {len(result.manifest['tables'])} tables, "
                f"{rows:,} rows, {len(result.manifest['files'])} files."
            )
        )
        if options["prune"]:
            pruned = services.prune_backups(
                storage=target,
                daily=settings.BACKUP_KEEP_DAILY,
                weekly=settings.BACKUP_KEEP_WEEKLY,
                monthly=settings.BACKUP_KEEP_MONTHLY,
                progress=self.stdout.write,
            )
            self.stdout.write(f"Kept {len(pruned.kept)} backups, deleted {len(pruned.deleted)}.")
