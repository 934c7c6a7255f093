from django.core.management.base import BaseCommand

from shop.services import payments as payment_services
from shop.services import refunds as refund_services


class Command(BaseCommand):
    help = (
        "Re-enqueue payments and refunds stuck in flight longer than "
        "PAYMENT_STUCK_AFTER_SECONDS, and re-check payments given up on in the last "
        "PAYMENT_RECONCILE_HOURS for a late capture (safe to run at any time, e.g. from cron)."
    )

    def handle(self, *args, **options) -> None:
        payments = payment_services.sweep_stuck_payments()
        refunds = refund_services.sweep_stuck_refunds()
        given_up = payment_services.sweep_given_up_payments()
        self.stdout.write(
            f"Re-enqueued {len(payments)} payment(s) and {len(refunds)} refund(s); "
            f"re-checking {len(given_up)} payment(s) given up on."
        )
