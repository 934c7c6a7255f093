"""Django-Q2's ORM broker, FIFO by due time, with delayed delivery.

Q2's scheduler only wakes about every 30 seconds, too coarse for a 2-second retry. The ORM
broker already hides a row until its `lock` time (that is how it redelivers a task whose
worker died), so a retry is simply a broker row whose lock is the retry time: the cluster's
pusher, which polls every `poll` seconds (0.2 s), picks it up when it is due.

A row a cluster has taken is locked for a short lease (`Q_LEASE_SECONDS`), not for Q2's
`retry`: a cluster that ends as a whole (project.background.cluster) loses the few rows it
had taken but not started, and they come back within the lease. A row that comes back while
its task still runs elsewhere is harmless: the runner sees the live lease and skips it.
The pusher and the monitor stamp `pusher_beat` / `ack_beat` (set by the sentinel), so the
sentinel can tell a cluster that stopped moving, and the pusher notes the rows it takes in
`claimed`, so a cluster that ends can give them back at once.
"""

import datetime
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django_q.brokers import orm
from django_q.conf import Conf

logger = logging.getLogger("project.background")


class OrmBroker(orm.ORM):
    pusher_beat = None
    ack_beat = None
    claimed = None

    def __init__(self, list_key: str | None = None, *, not_before: datetime.datetime | None = None):
        super().__init__(list_key=list_key)
        self.not_before = not_before

    def timeout(self, task) -> datetime.datetime:
        return timezone.now() + datetime.timedelta(
            seconds=min(Conf.RETRY, settings.Q_LEASE_SECONDS)
        )

    def acknowledge(self, task_id):
        if self.ack_beat is not None:
            self.ack_beat.value = time.time()
        _cache_call("delete", f"{UNACKED_SINCE_KEY}:{self.list_key}")
        return super().acknowledge(task_id)

    def enqueue(self, task):
        now = timezone.now()
        lock = max(self.not_before, now) if self.not_before else now
        package = self.get_connection().create(
            key=self.list_key or Conf.CLUSTER_NAME, payload=task, lock=lock
        )
        return package.pk

    def dequeue(self):
        # Q2's dequeue has no ORDER BY, so a new row can overtake an old one. Take the
        # longest-due rows first; the conditional update still arbitrates between clusters.
        if self.pusher_beat is not None:
            self.pusher_beat.value = time.time()
        connection = self.get_connection()
        tasks = list(
            connection.filter(key=self.list_key, lock__lt=timezone.now()).order_by("lock", "id")[
                : Conf.BULK
            ]
        )
        if tasks:
            claimed = []
            for task in tasks:
                if connection.filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                    claimed.append((task.pk, task.payload))
            if claimed:
                if self.claimed is not None:
                    self.claimed.note(pk for pk, _payload in claimed)
                _cache_call("add", f"{UNACKED_SINCE_KEY}:{self.list_key}", time.time(), None)
            return claimed
        orm.sleep(Conf.POLL)
        return None


# Since when the queue's clusters have delivered tasks without acknowledging any, in the
# shared cache, so /metrics (another process) can tell a cluster that never acknowledges.
UNACKED_SINCE_KEY = "background:unacknowledged-since"


def _cache_call(method: str, *args) -> None:
    try:
        getattr(cache, method)(*args)
    except Exception:  # noqa: BLE001 - a cache outage must never stop the broker
        logger.warning("Cache %s of %s failed", method, args[0], exc_info=True)


def unacknowledged_seconds(queues: list[str]) -> dict[str, float]:
    """Per queue, seconds since the first delivery that no acknowledgement has followed."""
    keys = {queue: f"{UNACKED_SINCE_KEY}:{queue}" for queue in queues}
    try:
        since = cache.get_many(list(keys.values()))
    except Exception:  # noqa: BLE001 - unknown reads as nothing unacknowledged
        since = {}
    now = time.time()
    return {
        queue: max(0.0, now - since[key]) if key in since else 0.0 for queue, key in keys.items()
    }
