from django.core.management.base import BaseCommand

from shop.services import demo as demo_services


class Command(BaseCommand):
    help = "Load the demo shop: 5 vendors, 12 categories, 500 products and 3 accounts."

    def handle(self, *args, **options) -> None:
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
