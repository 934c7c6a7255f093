"""A tiny task the run enqueues on a queue to see when that queue works again.

Imported by the worker processes (the repo root is on their path), so it must stay a
plain `@task` with no import of the harness.
"""

import os
import time

from django.tasks import task


@task(queue_name="default")
def probe(pause: float = 0.0) -> int:
    """Sleep `pause` seconds (so a burst spreads over every worker) and say who ran it."""
    time.sleep(pause)
    return os.getpid()


def enqueue(queue: str, *, pause: float = 0.0) -> str:
    """Enqueue a probe on `queue`; returns its task record id."""
    return probe.using(queue_name=queue).enqueue(pause).id
