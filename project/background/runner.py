"""What a Django-Q2 worker runs for every broker row: one attempt of one TaskRecord.

Every delivery is checked against the record under a row lock, so a redelivery, a duplicate
broker row or a crash never runs a finished task again, never runs one task in two workers
at once, and never loops forever:

- SUCCESSFUL / FAILED: nothing to do (Q2 redelivered a row whose ack was lost).
- RUNNING with a live lease: another worker has it; come back when the lease ends.
- RUNNING with an expired lease: the worker died mid-attempt (SIGKILL, OOM, Q2 timeout
  kill); that attempt counts, and the task is retried or, out of attempts, failed.
- READY and due: run it (attempts + 1, committed before the function starts).

A failed attempt is retried after an exponential delay with jitter (a broker row due
then); after the last attempt the record is FAILED, which staff see in the admin, metrics
count, and the failure webhook announces once.
"""

import datetime
import logging
import os
import socket
import time
import traceback

from django.db import close_old_connections, connection, transaction
from django.tasks import Task, TaskContext, TaskResultStatus
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.json import normalize_json
from django.utils.module_loading import import_string
from django_q.exceptions import TimeoutException

from project.background import backend, conf, monitoring, notify
from project.background.models import TaskRecord
from project.errors import DomainError
from project.request_context import current_request_id

logger = logging.getLogger(__name__)

# A broker row may arrive a little before its record's due time (clock steps, rounding).
EARLY_TOLERANCE = datetime.timedelta(seconds=0.5)
# Beyond the queue timeout, how long a RUNNING attempt is trusted to still be alive
# (Q2 raises in the task at `timeout` and kills its worker at `timeout` + 3 s).
LEASE_GRACE = datetime.timedelta(seconds=4)


class WorkerLost(Exception):
    """The worker running an attempt stopped without reporting (killed, out of memory)."""


class PermanentTaskError(Exception):
    """Raise from a task when retrying cannot help; the task fails at once."""


NOT_RETRIED = (DomainError, PermanentTaskError, ImportError)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_task(record_id: str) -> str:
    """Run one attempt of the record's task; returns what happened (for Q2's own log)."""
    claimed = _claim(record_id)
    if claimed is None:
        return "skipped"
    record, task = claimed
    token = current_request_id.set(record.request_id or "-")
    started = time.monotonic()
    try:
        task_result = backend.to_task_result(record, task=task)
        task_started.send(sender=backend.DjangoQ2Backend, task_result=task_result)
        if task.takes_context:
            value = task.call(TaskContext(task_result=task_result), *record.args, **record.kwargs)
        else:
            value = task.call(*record.args, **record.kwargs)
        value = normalize_json(value)
    except (Exception, TimeoutException) as exc:  # TimeoutException: Q2's time limit
        outcome = _with_fresh_connection(_record_failure, record_id, exc, started)
    else:
        outcome = _with_fresh_connection(_record_success, record_id, value, started)
    finally:
        current_request_id.reset(token)
    monitoring.maybe_check_queue_depths()
    return outcome


def _with_fresh_connection(function, *args):
    try:
        return function(*args)
    except Exception:
        # The task may have left the connection unusable (e.g. stopped mid-query).
        close_old_connections()
        connection.close()
        return function(*args)


def _claim(record_id: str) -> tuple[TaskRecord, Task] | None:
    now = timezone.now()
    with transaction.atomic():
        record = TaskRecord.objects.select_for_update().filter(pk=record_id).first()
        if record is None:
            logger.warning("Task record %s does not exist; delivery dropped", record_id)
            return None
        if record.status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED):
            return None
        if record.status == TaskResultStatus.RUNNING:
            if record.lease_expires_at and record.lease_expires_at > now:
                # Still running elsewhere. If that worker dies, a check-back at the end of
                # the lease recovers it; one per lease, however often the row comes back.
                if record.next_attempt_at != record.lease_expires_at:
                    record.next_attempt_at = record.lease_expires_at
                    record.save(update_fields=["next_attempt_at"])
                    backend.hand_to_q2(record, not_before=record.lease_expires_at)
                return None
            record.errors.append(
                _error(
                    WorkerLost(
                        f"Attempt {record.attempts} on {record.worker_ids[-1:] or '?'} "
                        "stopped without reporting (worker killed or timed out)."
                    )
                )
            )
            if record.attempts >= record.max_attempts:
                _fail(record, now=now)
                record.save()
                return None
        elif record.next_attempt_at > now + EARLY_TOLERANCE:
            return None  # a broker row due at next_attempt_at exists for it
        try:
            task = import_string(record.task_path)
        except ImportError as exc:
            record.errors.append(_error(exc))
            _fail(record, now=now)
            record.save()
            return None
        record.status = TaskResultStatus.RUNNING
        record.attempts += 1
        record.worker_ids = [*record.worker_ids, worker_id()]
        record.started_at = record.started_at or now
        record.last_attempted_at = now
        record.lease_expires_at = (
            now + datetime.timedelta(seconds=conf.queue_timeout(record.queue)) + LEASE_GRACE
        )
        record.save()
    return record, task


def _record_success(record_id: str, value, started: float) -> str:
    now = timezone.now()
    with transaction.atomic():
        record = TaskRecord.objects.select_for_update().get(pk=record_id)
        record.status = TaskResultStatus.SUCCESSFUL
        record.return_value = value
        record.finished_at = now
        record.duration = time.monotonic() - started
        record.lease_expires_at = None
        record.save()
    task_finished.send(sender=backend.DjangoQ2Backend, task_result=backend.to_task_result(record))
    return "succeeded"


def _record_failure(record_id: str, exc: BaseException, started: float) -> str:
    now = timezone.now()
    with transaction.atomic():
        record = TaskRecord.objects.select_for_update().get(pk=record_id)
        record.errors = [*record.errors, _error(exc)]
        record.duration = time.monotonic() - started
        record.lease_expires_at = None
        if not isinstance(exc, NOT_RETRIED) and record.attempts < record.max_attempts:
            delay = conf.retry_delay(record.attempts)
            record.status = TaskResultStatus.READY
            record.next_attempt_at = now + datetime.timedelta(seconds=delay)
            record.save()
            backend.hand_to_q2(record, not_before=record.next_attempt_at)
            logger.warning(
                "Task %s [%s] attempt %s failed (%s); retry in %.1fs",
                record.task_path,
                record.id,
                record.attempts,
                exc.__class__.__name__,
                delay,
            )
            return "retrying"
        _fail(record, now=now)
        record.save()
    task_finished.send(sender=backend.DjangoQ2Backend, task_result=backend.to_task_result(record))
    return "failed"


def _fail(record: TaskRecord, *, now: datetime.datetime) -> None:
    """Mark the record finally failed; the webhook fires once the row is committed."""
    record.status = TaskResultStatus.FAILED
    record.finished_at = now
    record.lease_expires_at = None
    record_id = record.id
    transaction.on_commit(lambda: notify.announce_failure(record_id))


def _error(exc: BaseException) -> dict:
    exception_type = type(exc)
    return {
        "exception_class_path": f"{exception_type.__module__}.{exception_type.__qualname__}",
        "traceback": "".join(traceback.format_exception(exc)),
    }
