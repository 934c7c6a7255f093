"""`manage.py prune_backups [--storage ALIAS | --dir PATH] [--dry-run]`."""

from django.conf import settings
from django.core.management.base import BaseCommand

from project.backups import arguments, services


class Command(BaseCommand):
    help = (
        "Delete the backups retention does not keep: the newest of each of the last "
        "BACKUP_KEEP_DAILY days, BACKUP_KEEP_WEEKLY ISO weeks and BACKUP_KEEP_MONTHLY months "
        "(7, 4, 12). Folders without a manifest (unfinished) are left alone."
    )

    def add_arguments(self, parser):
        arguments.add_location_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="Only say what would go.")

    def handle(self, *args, dry_run: bool, **options):
        target = arguments.location(options)
        result = services.prune_backups(
            storage=target,
            daily=settings.BACKUP_KEEP_DAILY,
            weekly=settings.BACKUP_KEEP_WEEKLY,
            monthly=settings.BACKUP_KEEP_MONTHLY,
            dry_run=dry_run,
            progress=self.stdout.write,
        )
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"Kept {len(result.kept)} backups; {verb} {len(result.deleted)}.")
