from django.core.management.base import BaseCommand

from shop.services import payments as payment_services
from shop.services import refunds as refund_services


class Command(BaseCommand):
    help = (
        "Re-enqueue payments and refunds stuck in flight longer than "
        "PAYMENT_STUCK_AFTER_SECONDS (safe to run at any time, e.g. from cron)."
    )

    def handle(self, *args, **options) -> None:
        payments = payment_services.sweep_stuck_payments()
        refunds = refund_services.sweep_stuck_refunds()
        self.stdout.write(f"Re-enqueued {len(payments)} payment(s) and {len(refunds)} refund(s).")
