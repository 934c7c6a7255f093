"""Liveness probe for a worker: `manage.py worker_alive critical` exits 0 while its cluster
makes progress (the heartbeat file `run_worker` touches is fresh), 1 otherwise."""

import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from project.background import cluster


class Command(BaseCommand):
    help = "Exit 0 if the queue's worker heartbeat is fresh, 1 if it is stale or missing."

    def add_arguments(self, parser):
        parser.add_argument("queue")
        parser.add_argument("--heartbeat-file", type=Path, default=None)
        parser.add_argument(
            "--max-age",
            type=float,
            default=None,
            help="Seconds (default: twice Q_STALL_SECONDS).",
        )

    def handle(self, *args, queue: str, heartbeat_file: Path | None, max_age, **options):
        path = heartbeat_file or cluster.heartbeat_path(queue)
        max_age = max_age if max_age is not None else 2 * settings.Q_STALL_SECONDS
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            self.stderr.write(f"No heartbeat at {path}: the {queue} worker is not running.")
            sys.exit(1)
        if age > max_age:
            self.stderr.write(f"The {queue} worker's heartbeat is {age:.0f} s old (> {max_age}).")
            sys.exit(1)
        self.stdout.write(f"The {queue} worker is alive (heartbeat {age:.1f} s ago).")
