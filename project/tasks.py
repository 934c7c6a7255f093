"""Housekeeping tasks: the hourly purges (project.housekeeping), on the analytics queue."""

from django.tasks import task

from project import housekeeping

ANALYTICS_PRIORITY = -10


@task(queue_name="analytics", priority=ANALYTICS_PRIORITY)
def purge(name: str) -> int:
    """Run one purge by name (see project.housekeeping.PURGES); returns how many it deleted."""
    return housekeeping.run_purge(name=name)


def enqueue_purge(name: str) -> None:
    """Called by Django-Q2's scheduler through `run_scheduled` (the background app's
    schedules), with the purge's name."""
    purge.enqueue(name=name)
