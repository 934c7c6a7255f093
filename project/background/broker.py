"""Django-Q2's ORM broker, FIFO by due time, with delayed delivery.

Q2's scheduler only wakes about every 30 seconds, too coarse for a 2-second retry. The ORM
broker already hides a row until its `lock` time (that is how it redelivers a task whose
worker died), so a retry is simply a broker row whose lock is the retry time: the cluster's
pusher, which polls every `poll` seconds (0.2 s), picks it up when it is due.
"""

import datetime

from django.utils import timezone
from django_q.brokers import orm
from django_q.conf import Conf


class OrmBroker(orm.ORM):
    def __init__(self, list_key: str | None = None, *, not_before: datetime.datetime | None = None):
        super().__init__(list_key=list_key)
        self.not_before = not_before

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
            return claimed
        orm.sleep(Conf.POLL)
        return None
