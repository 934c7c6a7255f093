"""`manage.py lint_migrations`: fail on a new migration that breaks the previous release's
code (removes or renames a field or model, or adds a NOT NULL it does not fill); run by
`make lint`. See project.migration_lint and docs/migrations.md."""

from django.core.management.base import BaseCommand, CommandError
from django.db.migrations.loader import MigrationLoader

from project import migration_lint


class Command(BaseCommand):
    help = (
        "Check that migrations not in the baseline follow the expand/contract rule "
        "(docs/migrations.md); exit 1 naming each one that does not."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--write-baseline",
            action="store_true",
            help="Record every existing migration as grandfathered (once, when the rule "
            "comes in; never to let a new migration through).",
        )

    def handle(self, *args, write_baseline: bool, **options):
        loader = MigrationLoader(None, ignore_no_migrations=True)
        if write_baseline:
            count = migration_lint.write_baseline(loader)
            self.stdout.write(f"Baseline: {count} migrations in {migration_lint.BASELINE}.")
            return
        problems = migration_lint.lint(loader)
        if problems:
            raise CommandError(
                f"{len(problems)} migration problem(s):\n" + "\n".join(map(str, problems))
            )
        self.stdout.write("Migrations follow the expand/contract rule.")
