"""`manage.py bump_page_cache`."""

from django.core.management.base import BaseCommand

from project import page_cache


class Command(BaseCommand):
    help = (
        "Date every cached catalogue page at once (after data was changed around the "
        "services: a shell, SQL, a bulk script). The next visitor of each page gets a "
        "fresh rendering."
    )

    def handle(self, *args, **options):
        page_cache.bump([page_cache.CATALOGUE])
        self.stdout.write("Every cached catalogue page is out of date; each is rendered again.")
