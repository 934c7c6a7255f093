"""Telling operators: the final-failure announcement and the queue-depth alert webhook."""

import json
import logging
import urllib.error
import urllib.request

from django.conf import settings
from django.utils import timezone

from project.background.models import TaskRecord
from project.logging import mask

logger = logging.getLogger("project.background")

WEBHOOK_TIMEOUT = 5  # seconds; an operator's endpoint must never hold a worker for long
SUMMARY_LIMIT = 200


def summarise_arguments(args: list, kwargs: dict) -> str:
    """A short, masked rendering of a task's arguments (ids, not personal data, in practice)."""
    parts = [repr(value) for value in args]
    parts += [f"{key}={value!r}" for key, value in kwargs.items()]
    text = mask(", ".join(parts))
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def announce_failure(record_id: str) -> bool:
    """Log and POST a finally-failed task once, however often this is called."""
    claimed = TaskRecord.objects.filter(pk=record_id, failure_notified_at__isnull=True).update(
        failure_notified_at=timezone.now()
    )
    if not claimed:
        return False
    record = TaskRecord.objects.get(pk=record_id)
    payload = {
        "event": "task_failed",
        "task": record.task_path,
        "id": record.id,
        "queue": record.queue,
        "args": summarise_arguments(record.args, record.kwargs),
        "error": mask(record.last_error),
        "attempts": record.attempts,
        "request_id": record.request_id,
    }
    logger.error(
        "Task failed after %s attempts: task=%s id=%s error=%s",
        record.attempts,
        record.task_path,
        record.id,
        payload["error"],
        extra={"event": payload},
    )
    post_webhook(payload)
    return True


def post_webhook(payload: dict) -> bool:
    """POST JSON to TASK_FAILURE_WEBHOOK_URL when it is set; never raises."""
    url = settings.TASK_FAILURE_WEBHOOK_URL
    if not url:
        return False
    if not url.startswith(("http://", "https://")):
        logger.error("TASK_FAILURE_WEBHOOK_URL must be an http(s) URL")
        return False
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "bazaar-tasks"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("Task webhook POST failed: %s", exc.__class__.__name__)
        return False
