"""A Django Tasks backend that runs `@task` work on Django-Q2 clusters, one per queue.

`enqueue()` writes a TaskRecord and the Q2 broker row in the caller's transaction: a request
that rolls back enqueues nothing, and a committed one cannot lose its task (the broker is the
same database, so there is no window between "saved" and "queued"). The broker row carries
only the record id; `project.background.runner.run_task` does the rest inside the worker.
"""

import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TaskError
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.json import normalize_json
from django.utils.module_loading import import_string
from django_q import tasks as q_tasks

from project.background import conf
from project.background.broker import OrmBroker
from project.background.models import TaskRecord
from project.request_context import current_request_id

RUNNER = "project.background.runner.run_task"


def enqueue_with_transaction(task: Task, *args, **kwargs) -> None:
    """Queue `task` if and only if the caller's transaction commits. This backend writes its
    rows in that transaction (the broker is the same database): nothing to lose between the
    commit and the enqueue, and no transaction of its own. A backend that runs or sends the
    task elsewhere (the tests' immediate one) is given it when the transaction commits."""
    if getattr(task.get_backend(), "enqueues_in_transaction", False):
        task.enqueue(*args, **kwargs)
    else:
        transaction.on_commit(partial(task.enqueue, *args, **kwargs), robust=True)


def hand_to_q2(record: TaskRecord, *, not_before: datetime.datetime | None = None) -> None:
    """Queue a broker row for the record on its queue's cluster, due at `not_before`."""
    cluster = conf.cluster_for(record.queue)
    q_tasks.async_task(
        RUNNER,
        record.id,
        cluster=cluster,
        broker=OrmBroker(list_key=cluster, not_before=not_before),
        task_name=f"{record.task_path.rsplit('.', 1)[-1]}-{record.id[:8]}",
    )


class DjangoQ2Backend(BaseTaskBackend):
    supports_defer = True
    supports_get_result = True
    # Priority decides between queues (a separate cluster each, critical with the most
    # workers); inside one queue the broker is first-due, first-served. It is recorded.
    supports_priority = True
    supports_async_task = False
    # `enqueue()` writes in the caller's transaction (see `enqueue_with_transaction`).
    enqueues_in_transaction = True

    def validate_task(self, task):
        super().validate_task(task)
        conf.cluster_for(task.queue_name)

    def enqueue(self, task, args, kwargs):
        self.validate_task(task)
        now = timezone.now()
        due = max(task.run_after, now) if task.run_after else now
        # Inside a caller's transaction the two rows are part of it (a failure fails it
        # anyway), so no savepoint: SAVEPOINT and RELEASE would be two more round trips.
        with transaction.atomic(savepoint=False):
            record = TaskRecord.objects.create(
                id=get_random_string(32),
                task_path=task.module_path,
                queue=task.queue_name,
                priority=task.priority,
                backend=self.alias,
                args=normalize_json(list(args)),
                kwargs=normalize_json(dict(kwargs)),
                status=TaskResultStatus.READY,
                max_attempts=_max_attempts(),
                enqueued_at=now,
                run_after=task.run_after,
                next_attempt_at=due,
                request_id=_request_id(),
            )
            hand_to_q2(record, not_before=task.run_after)
        return to_task_result(record, task=task)

    def get_result(self, result_id):
        try:
            record = TaskRecord.objects.get(pk=result_id)
        except (TaskRecord.DoesNotExist, ValueError) as exc:
            raise TaskResultDoesNotExist(result_id) from exc
        return to_task_result(record)


def _max_attempts() -> int:
    return max(1, settings.TASK_MAX_ATTEMPTS)


def _request_id() -> str:
    request_id = current_request_id.get()
    return "" if request_id in (None, "-") else str(request_id)[:64]


def to_task_result(record: TaskRecord, *, task: Task | None = None) -> TaskResult:
    """Django's view of a TaskRecord."""
    if task is None:
        task = import_string(record.task_path).using(
            priority=record.priority, queue_name=record.queue, run_after=record.run_after
        )
    result: TaskResult = TaskResult(
        task=task,
        id=record.id,
        status=TaskResultStatus(record.status),
        enqueued_at=record.enqueued_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        last_attempted_at=record.last_attempted_at,
        args=record.args,
        kwargs=record.kwargs,
        backend=record.backend,
        errors=[
            TaskError(
                exception_class_path=error["exception_class_path"], traceback=error["traceback"]
            )
            for error in record.errors
        ],
        worker_ids=list(record.worker_ids),
    )
    object.__setattr__(result, "_return_value", record.return_value)
    return result
