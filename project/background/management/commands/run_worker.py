"""Run one queue's Django-Q2 cluster under supervision: `manage.py run_worker critical`."""

import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from project.background import cluster, conf


class Command(BaseCommand):
    help = (
        "Run the Django-Q2 cluster of one task queue (critical, emails, analytics, default). "
        "A cluster that loses a process or stops making progress is replaced as a whole "
        "within seconds; no process of it outlives this one."
    )

    def add_arguments(self, parser):
        parser.add_argument("queue", help="The queue to work: " + ", ".join(conf.queue_names()))
        parser.add_argument(
            "--heartbeat-file",
            type=Path,
            default=None,
            help="File touched while the cluster makes progress (default "
            "WORKER_HEARTBEAT_DIR/worker-<queue>.alive); `worker_alive` reads it.",
        )

    def handle(self, *args, queue: str, heartbeat_file: Path | None, **options):
        if queue not in conf.queue_names():
            raise CommandError(
                f"Unknown queue {queue!r}; choose one of {', '.join(conf.queue_names())}."
            )
        if os.environ.get("Q_CLUSTER_NAME") != queue:
            # Django-Q2 reads its cluster name from the environment when it is imported,
            # which has happened by now: start again with the name set.
            os.environ["Q_CLUSTER_NAME"] = queue
            os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606 - same argv
        supervisor = cluster.ClusterSupervisor(
            queue=queue,
            heartbeat_file=heartbeat_file or cluster.heartbeat_path(queue),
            stop_timeout=conf.queue_timeout(queue) + 5,
        )
        sys.exit(supervisor.run())
