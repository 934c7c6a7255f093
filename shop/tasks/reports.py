"""Report tasks: take the report's id, call the report service."""

from django.tasks import task

from backoffice import handlers as backoffice_handlers
from shop.services import reports as report_services


@task(queue_name="analytics", priority=-10)
def generate_report(report_id: int) -> None:
    """Generate a queued report's CSV, pushing its status to the vendor's pages as it goes; a
    report already done is left alone."""
    report_services.generate_report(
        report_id=report_id, on_progress=backoffice_handlers.publish_report_status
    )


@task(queue_name="analytics", priority=-10)
def purge_expired_reports() -> int:
    """Delete the files of reports past REPORT_TTL (marked expired); returns how many."""
    return report_services.purge_expired_reports()


def enqueue_report_purge() -> None:
    """Called every 15 minutes by Django-Q2's scheduler (see the background app's schedules)."""
    purge_expired_reports.enqueue()
