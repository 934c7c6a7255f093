"""Queue configuration: one Django-Q2 cluster per queue, named after the queue."""

import random

from django.conf import settings


def queue_names() -> list[str]:
    q_cluster = settings.Q_CLUSTER
    return [q_cluster["name"], *q_cluster.get("ALT_CLUSTERS", {})]


def cluster_for(queue: str) -> str:
    """The Q2 cluster (broker list key) that runs `queue`."""
    if queue not in queue_names():
        raise ValueError(f"No Django-Q2 cluster is configured for queue {queue!r}.")
    return queue


def queue_options(queue: str) -> dict:
    """The effective Q2 options of the queue's cluster (its ALT_CLUSTERS entry over Q_CLUSTER)."""
    q_cluster = dict(settings.Q_CLUSTER)
    alt_clusters = q_cluster.pop("ALT_CLUSTERS", {})
    if queue != q_cluster["name"]:
        q_cluster.update(alt_clusters.get(queue, {}))
    return q_cluster


def queue_timeout(queue: str) -> float:
    """Seconds an attempt may run before Q2 stops it."""
    return float(queue_options(queue).get("timeout") or 60)


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential with jitter.

    base * 2**(attempt-1), capped, then spread by +/- TASK_RETRY_JITTER so that many tasks
    failing together (an outage) do not all come back at the same instant.
    """
    base = settings.TASK_RETRY_BASE_DELAY * (2 ** max(attempt - 1, 0))
    delay = min(base, settings.TASK_RETRY_MAX_DELAY)
    jitter = settings.TASK_RETRY_JITTER
    return max(0.0, delay * (1 + (rng or random).uniform(-jitter, jitter)))
