"""`manage.py purge [--dry-run] [--only NAME ...]`: run the housekeeping purges now."""

from django.core.management.base import BaseCommand

from project import housekeeping


class Command(BaseCommand):
    help = (
        "Delete what has outlived its use (delivered outbox events, finished task records, "
        "sent-email keys, expired export and report files, abandoned guest carts, expired "
        "sessions, old heartbeats), in batches; prints each purge's count."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--only",
            action="append",
            choices=sorted(housekeeping.PURGES),
            metavar="NAME",
            help=f"Run only this purge (repeatable): {', '.join(housekeeping.PURGES)}.",
        )

    def handle(self, *args, dry_run: bool, only: list[str] | None, **options):
        verb = "would delete" if dry_run else "deleted"
        for name in only or housekeeping.PURGES:
            count = housekeeping.run_purge(name=name, dry_run=dry_run)
            self.stdout.write(f"{name}: {verb} {count}")
