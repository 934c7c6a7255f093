"""Prometheus metrics and the queue-depth alert, both computed from TaskRecord.

Workers are separate processes (several per queue, on several machines), so in-process
counters would each see a fraction of the truth. The database sees all of it: every scrape
aggregates TaskRecord, which is correct across processes and restarts. Counters are totals
over the records kept (they drop if old records are purged, which Prometheus treats as a
counter reset).
"""

import datetime
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Min, Q, Sum
from django.db.models.functions import Greatest
from django.tasks import TaskResultStatus
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import CollectorRegistry

from project.background import broker, conf, notify
from project.background.models import TaskRecord
from project.events.monitoring import OutboxCollector

logger = logging.getLogger("project.background")

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DEPTH_CHECK_EVERY = 10  # seconds between queue-depth checks triggered by workers


def queue_stats() -> dict[str, dict]:
    """Per queue: depth (ready and due), scheduled (waiting for a retry), running, oldest age,
    how long deliveries have gone unacknowledged, and whether the queue is stalled.

    Stalled: alive or not, nothing is moving. Either due tasks have waited longer than
    Q_STALL_SECONDS while no attempt on the queue started in that time (no worker takes
    them), or the cluster has delivered tasks and acknowledged none for longer than a task
    may run (a monitor that does not acknowledge: every task would be delivered again and
    again).
    """
    now = timezone.now()
    stall_after = datetime.timedelta(seconds=settings.Q_STALL_SECONDS)
    recent = Q(last_attempted_at__gte=now - stall_after)
    rows = (
        TaskRecord.objects.filter(
            Q(status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]) | recent
        )
        .values("queue")
        .annotate(
            started_lately=Count("id", filter=recent),
            depth=Count("id", filter=Q(status=TaskResultStatus.READY, next_attempt_at__lte=now)),
            scheduled=Count("id", filter=Q(status=TaskResultStatus.READY, next_attempt_at__gt=now)),
            running=Count("id", filter=Q(status=TaskResultStatus.RUNNING)),
            oldest=Min(
                "next_attempt_at",
                filter=Q(status=TaskResultStatus.READY, next_attempt_at__lte=now),
            ),
        )
    )
    stats = {
        queue: {"depth": 0, "scheduled": 0, "running": 0, "oldest_age": 0.0, "started_lately": 0}
        for queue in conf.queue_names()
    }
    for row in rows:
        oldest = row["oldest"]
        stats[row["queue"]] = {
            "depth": row["depth"],
            "scheduled": row["scheduled"],
            "running": row["running"],
            "oldest_age": (now - oldest).total_seconds() if oldest else 0.0,
            "started_lately": row["started_lately"],
        }
    unacknowledged = broker.unacknowledged_seconds(list(stats))
    for queue, values in stats.items():
        values["unacknowledged_seconds"] = unacknowledged[queue]
        values["stalled"] = (
            values["oldest_age"] > stall_after.total_seconds() and not values["started_lately"]
        ) or values["unacknowledged_seconds"] > conf.queue_timeout(queue) + settings.Q_STALL_SECONDS
    return stats


class TaskCollector:
    def __init__(self, stats: dict[str, dict] | None = None):
        self.stats = stats

    def collect(self):
        stats = self.stats if self.stats is not None else queue_stats()
        depth = GaugeMetricFamily(
            "bazaar_task_queue_depth", "Tasks ready to run and waiting, per queue", labels=["queue"]
        )
        scheduled = GaugeMetricFamily(
            "bazaar_task_queue_scheduled",
            "Tasks waiting for a delayed retry or run_after, per queue",
            labels=["queue"],
        )
        running = GaugeMetricFamily(
            "bazaar_task_queue_running", "Tasks running now, per queue", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "bazaar_task_queue_oldest_age_seconds",
            "Age of the oldest ready task, per queue",
            labels=["queue"],
        )
        for queue, values in sorted(stats.items()):
            depth.add_metric([queue], values["depth"])
            scheduled.add_metric([queue], values["scheduled"])
            running.add_metric([queue], values["running"])
            oldest.add_metric([queue], values["oldest_age"])
        unacknowledged = GaugeMetricFamily(
            "bazaar_task_queue_unacknowledged_seconds",
            "How long the queue's cluster has delivered tasks without acknowledging any",
            labels=["queue"],
        )
        stalled = GaugeMetricFamily(
            "bazaar_task_queue_stalled",
            "1 when the queue makes no progress (due tasks nobody takes, or no acknowledgement)",
            labels=["queue"],
        )
        for queue, values in sorted(stats.items()):
            unacknowledged.add_metric([queue], values["unacknowledged_seconds"])
            stalled.add_metric([queue], 1 if values["stalled"] else 0)
        yield from (depth, scheduled, running, oldest, unacknowledged, stalled)
        yield from _task_counters()
        yield _duration_histogram()


def _task_counters():
    runs = CounterMetricFamily(
        "bazaar_task_runs", "Attempts started, per task", labels=["task", "queue"]
    )
    failures = CounterMetricFamily(
        "bazaar_task_failures", "Tasks failed after their last attempt", labels=["task", "queue"]
    )
    retries = CounterMetricFamily(
        "bazaar_task_retries", "Attempts after the first, per task", labels=["task", "queue"]
    )
    successes = CounterMetricFamily(
        "bazaar_task_successes", "Tasks that succeeded", labels=["task", "queue"]
    )
    rows = (
        TaskRecord.objects.values("task_path", "queue")
        .annotate(
            runs=Sum("attempts"),
            retried=Sum(Greatest(F("attempts") - 1, 0)),
            failed=Count("id", filter=Q(status=TaskResultStatus.FAILED)),
            succeeded=Count("id", filter=Q(status=TaskResultStatus.SUCCESSFUL)),
        )
        .order_by("task_path", "queue")
    )
    for row in rows:
        labels = [row["task_path"], row["queue"]]
        runs.add_metric(labels, row["runs"] or 0)
        retries.add_metric(labels, row["retried"] or 0)
        failures.add_metric(labels, row["failed"])
        successes.add_metric(labels, row["succeeded"])
    return runs, failures, retries, successes


def _duration_histogram():
    histogram = HistogramMetricFamily(
        "bazaar_task_duration_seconds",
        "Duration of each task's last attempt",
        labels=["task"],
    )
    aggregates = {
        f"le_{index}": Count("id", filter=Q(duration__lte=bound))
        for index, bound in enumerate(DURATION_BUCKETS)
    }
    # Rows of dynamic keys (one per bucket), so plain mappings to the type checker.
    rows: Iterable[Mapping[str, Any]] = (
        TaskRecord.objects.filter(duration__isnull=False)
        .values("task_path")
        .annotate(total=Count("id"), seconds=Sum("duration"), **aggregates)
        .order_by("task_path")
    )
    for row in rows:
        buckets = [(str(bound), row[f"le_{index}"]) for index, bound in enumerate(DURATION_BUCKETS)]
        buckets.append(("+Inf", row["total"]))
        histogram.add_metric([row["task_path"]], buckets, row["seconds"] or 0.0)
    return histogram


def build_registry(stats: dict[str, dict] | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskCollector(stats))
    registry.register(OutboxCollector())
    return registry


def check_queue_depths(stats: dict[str, dict] | None = None) -> list[str]:
    """Warn (log and webhook) about queues deeper than their threshold or stalled, once per
    interval each."""
    stats = stats if stats is not None else queue_stats()
    alerted = []
    for queue, values in stats.items():
        if values["stalled"] and _alert_once(f"stalled:{queue}"):
            payload = {
                "event": "queue_stalled",
                "queue": queue,
                "depth": values["depth"],
                "oldest_age_seconds": round(values["oldest_age"], 1),
                "unacknowledged_seconds": round(values["unacknowledged_seconds"], 1),
            }
            logger.error(
                "Queue stalled: queue=%s depth=%s oldest_age_seconds=%s unacknowledged_seconds=%s",
                queue,
                payload["depth"],
                payload["oldest_age_seconds"],
                payload["unacknowledged_seconds"],
                extra={"event": payload},
            )
            notify.post_webhook(payload)
            alerted.append(queue)
        threshold = settings.QUEUE_ALERT_THRESHOLDS.get(queue)
        if threshold is None or values["depth"] <= threshold:
            continue
        if not _alert_once(queue):
            continue
        payload = {
            "event": "queue_depth_alert",
            "queue": queue,
            "depth": values["depth"],
            "threshold": threshold,
            "oldest_age_seconds": round(values["oldest_age"], 1),
        }
        logger.warning(
            "Queue depth alert: queue=%s depth=%s threshold=%s oldest_age_seconds=%s",
            queue,
            payload["depth"],
            threshold,
            payload["oldest_age_seconds"],
            extra={"event": payload},
        )
        notify.post_webhook(payload)
        alerted.append(queue)
    return alerted


def _alert_once(key: str) -> bool:
    # cache.add is atomic (Redis SET NX), so many workers and scrapes alert once.
    return cache.add(f"background:queue-alert:{key}", 1, settings.QUEUE_ALERT_INTERVAL)


def maybe_check_queue_depths() -> None:
    """Called after each task: at most one depth check every DEPTH_CHECK_EVERY seconds."""
    try:
        if cache.add("background:queue-depth-check", 1, DEPTH_CHECK_EVERY):
            check_queue_depths()
    except Exception:
        logger.exception("Queue depth check failed")
