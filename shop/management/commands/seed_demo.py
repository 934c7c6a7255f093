from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop.services import demo as demo_services


class Command(BaseCommand):
    help = (
        "Load the demo shop: 5 vendors, 12 categories, 500 products and 3 accounts "
        "(with a known password). Refused when BAZAAR_MODE=production unless --force."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even in production (creates accounts whose password is public).",
        )

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION and not options["force"]:
            raise CommandError(
                "Refusing to load demo data in production (BAZAAR_MODE=production): it creates "
                "shopper, vendor and staff accounts whose password is published in the README. "
                "Run with --force if this really is a throwaway demo installation."
            )
        summary = demo_services.seed_demo()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {summary.vendors} vendors, {summary.categories} categories, "
                f"{summary.products} products ({summary.products_created} new), "
                f"{summary.accounts} accounts."
            )
        )
        self.stdout.write(
            "Sign in as shopper@example.com, vendor@example.com or staff@example.com "
            f"with the password {demo_services.DEMO_PASSWORD!r}."
        )
