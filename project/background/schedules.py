"""Periodic work run by Django-Q2's scheduler, guarded so that a schedule row delivered again
(a lost acknowledgement, a cluster that ended mid-run) does not run the work again.

The scheduler hands `run_scheduled(name, func)` to a worker once per interval; the guard is
an atomic cache add per schedule and interval, shared by every process.
"""

import logging

from django.core.cache import cache
from django.utils.module_loading import import_string

logger = logging.getLogger("project.background")

SCHEDULE_INTERVAL = 60  # seconds: every schedule runs once a minute


def run_scheduled(name: str, func: str) -> str:
    """Run the schedule's function unless this interval's run has happened already."""
    try:
        first = cache.add(f"background:schedule:{name}", 1, SCHEDULE_INTERVAL - 5)
    except Exception:  # noqa: BLE001 - the work is idempotent; better twice than never
        logger.warning("Schedule guard unavailable; running %s anyway", name, exc_info=True)
        first = True
    if not first:
        logger.info("Schedule %s already ran in this interval; skipped", name)
        return "skipped"
    import_string(func)()
    return "ran"
