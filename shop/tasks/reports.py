"""Report tasks: take the report's id, call the report service."""

from django.tasks import task

from shop.services import reports as report_services


@task(queue_name="analytics", priority=-10)
def generate_report(report_id: int) -> None:
    """Generate a queued report's CSV; a report already done is left alone."""
    report_services.generate_report(report_id=report_id)
