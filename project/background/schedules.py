"""Periodic work run by Django-Q2's scheduler, guarded so that a schedule row delivered again
(a lost acknowledgement, a cluster that ended mid-run) does not run the work again.

The scheduler hands `run_scheduled(name, func)` to a worker once a minute, at the first
scheduler round (every 30 s in each cluster) after the schedule's due time, so two real runs
are 30 to 90 s apart. A row delivered again comes back after its broker lease
(Q_LEASE_SECONDS, 10 s). The guard, an atomic cache add shared by every process, therefore
holds for 25 s: it stops the repeat and never a real run.
"""

import logging

from django.core.cache import cache
from django.utils.module_loading import import_string

logger = logging.getLogger("project.background")

GUARD_SECONDS = 25


def run_scheduled(name: str, func: str, *args: str) -> str:
    """Run the schedule's function (with `args`) unless it ran less than GUARD_SECONDS ago."""
    try:
        first = cache.add(f"background:schedule:{name}", 1, GUARD_SECONDS)
    except Exception:  # noqa: BLE001 - the work is idempotent; better twice than never
        logger.warning("Schedule guard unavailable; running %s anyway", name, exc_info=True)
        first = True
    if not first:
        logger.info("Schedule %s ran less than %s s ago; skipped", name, GUARD_SECONDS)
        return "skipped"
    import_string(func)(*args)
    return "ran"
