"""Liveness of the worker clusters and event dispatchers, as /metrics reports it.

The heartbeat files `run_worker` touches (WORKER_HEARTBEAT_DIR) serve the probes of the
worker's own machine; /metrics is answered by a web process, possibly on another machine, so
each worker supervisor and each dispatcher also upserts a Heartbeat row, at most every
LIVENESS_HEARTBEAT_SECONDS. A process that stops (or hangs) stops beating: its row ages,
and /metrics shows the age growing and the alive count dropping.
"""

import datetime
import logging
import os
import socket
import time

from django.conf import settings
from django.db import connection
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from project.background import conf
from project.background.models import Heartbeat

logger = logging.getLogger("project.background")

# Instances silent for longer are left out of the per-instance series (bounded cardinality:
# a pod replaced an hour ago is no longer news); the "heartbeats" purge deletes their rows.
INSTANCE_SERIES_SECONDS = 3600


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Beater:
    """Upserts one process's heartbeat row, at most every LIVENESS_HEARTBEAT_SECONDS.

    A failed write (the database away) is logged and tried again on the next beat: it must
    never stop the worker or the dispatcher that beats."""

    def __init__(self, *, kind: str, queue: str = "", instance: str | None = None) -> None:
        self.kind = kind
        self.queue = queue
        self.instance = instance or instance_name()
        self.started_at = timezone.now()
        self._last = 0.0

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last < settings.LIVENESS_HEARTBEAT_SECONDS:
            return
        self._last = now
        try:
            Heartbeat.objects.update_or_create(
                kind=self.kind,
                queue=self.queue,
                instance=self.instance,
                defaults={"beat_at": timezone.now()},
                create_defaults={"beat_at": timezone.now(), "started_at": self.started_at},
            )
        except Exception:  # noqa: BLE001 - liveness reporting must never stop the process
            logger.warning("Cannot write the %s heartbeat", self.kind, exc_info=True)
            connection.close()


class LivenessCollector:
    """Per worker queue and for the dispatchers: seconds since the freshest heartbeat, how
    many instances beat within LIVENESS_STALE_SECONDS, and each recent instance's age."""

    def collect(self):
        now = timezone.now()
        stale = now - datetime.timedelta(seconds=settings.LIVENESS_STALE_SECONDS)
        # One query: a row per process instance, and the "heartbeats" purge keeps them few.
        beats = list(Heartbeat.objects.order_by("kind", "queue", "instance"))
        last: dict[tuple[str, str], datetime.datetime] = {}
        alive: dict[tuple[str, str], int] = {}
        for beat in beats:
            key = (beat.kind, beat.queue)
            last[key] = max(last.get(key, beat.beat_at), beat.beat_at)
            alive[key] = alive.get(key, 0) + (beat.beat_at >= stale)
        worker_age = GaugeMetricFamily(
            "bazaar_worker_heartbeat_age_seconds",
            "Seconds since a worker cluster of the queue last made progress",
            labels=["queue"],
        )
        workers_alive = GaugeMetricFamily(
            "bazaar_workers_alive",
            "Worker clusters of the queue that made progress within LIVENESS_STALE_SECONDS",
            labels=["queue"],
        )
        queues = set(conf.queue_names()) | {q for kind, q in last if kind == Heartbeat.Kind.WORKER}
        for queue in sorted(queues):
            key = (Heartbeat.Kind.WORKER, queue)
            workers_alive.add_metric([queue], alive.get(key, 0))
            if key in last:
                worker_age.add_metric([queue], (now - last[key]).total_seconds())
        dispatcher_age = GaugeMetricFamily(
            "bazaar_dispatcher_heartbeat_age_seconds",
            "Seconds since an event dispatcher last went round its loop",
        )
        dispatchers_alive = GaugeMetricFamily(
            "bazaar_dispatchers_alive",
            "Event dispatchers that went round their loop within LIVENESS_STALE_SECONDS",
        )
        key = (Heartbeat.Kind.DISPATCHER, "")
        dispatchers_alive.add_metric([], alive.get(key, 0))
        if key in last:
            dispatcher_age.add_metric([], (now - last[key]).total_seconds())
        instances = GaugeMetricFamily(
            "bazaar_heartbeat_age_seconds",
            "Seconds since each worker cluster or dispatcher instance last beat (those heard "
            "from in the last hour)",
            labels=["kind", "queue", "instance"],
        )
        recent = now - datetime.timedelta(seconds=INSTANCE_SERIES_SECONDS)
        for beat in beats:
            if beat.beat_at >= recent:
                instances.add_metric(
                    [beat.kind, beat.queue, beat.instance], (now - beat.beat_at).total_seconds()
                )
        yield from (worker_age, workers_alive, dispatcher_age, dispatchers_alive, instances)
