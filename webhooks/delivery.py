"""One attempt of one delivery, claimed like a task run (project.background.runner):

1. claim (row locked, short transaction): skip a delivery that is finished, not due yet, or
   being sent by a live attempt; take over one whose attempt died (its lease ran out: the
   worker was killed), counting that attempt; then mark it SENDING with a lease, committed
   before any byte leaves;
2. send the signed POST, with no transaction or lock held;
3. record the answer (row locked again): delivered on a 2xx, else the next attempt is due
   after an exponential delay with jitter, enqueued in the same transaction, or after the
   last attempt the delivery is FAILED.

A worker killed during step 2 leaves the delivery SENDING with a lease: the task runner runs
the task again, and the sweeper (`requeue_stalled`) enqueues it too if that ever runs out.
"""

import datetime
import json
import logging
import random
import time

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from project.background import conf
from webhooks import tasks, transport
from webhooks.models import Delivery, DeliveryState

logger = logging.getLogger(__name__)

# A task may arrive a little before the delivery's due time (clock steps, rounding).
EARLY_TOLERANCE = datetime.timedelta(seconds=1)
# How overdue a delivery must be before the sweeper enqueues it again (its own task is late).
SWEEP_AFTER = datetime.timedelta(minutes=2)
SWEEP_BATCH = 500
# Below the task runner's own grace (project.background.runner.LEASE_GRACE, 4 s).
LEASE_GRACE_SECONDS = 2


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): base * 4**(attempt-1),
    capped at WEBHOOKS_RETRY_MAX_SECONDS, spread by +/- WEBHOOKS_RETRY_JITTER."""
    base = settings.WEBHOOKS_RETRY_BASE_SECONDS * (4 ** max(attempt - 1, 0))
    delay = min(base, settings.WEBHOOKS_RETRY_MAX_SECONDS)
    jitter = settings.WEBHOOKS_RETRY_JITTER
    return max(0.0, delay * (1 + (rng or random).uniform(-jitter, jitter)))


def lease_seconds() -> float:
    """An attempt cannot outlive its task: Django-Q2 stops it at the queue's timeout, and the
    task runner hands the task out again a few seconds later, when this lease has ended."""
    return conf.queue_timeout(tasks.deliver_webhook.queue_name) + LEASE_GRACE_SECONDS


def body_of(delivery: Delivery) -> bytes:
    return json.dumps(delivery.payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def schedule(delivery: Delivery, *, at: datetime.datetime | None = None) -> None:
    """Enqueue the delivery's next attempt (now, or at `at`) in the caller's transaction. A
    tasks backend that cannot defer (the immediate one) gets none: the sweeper sends it."""
    task = tasks.deliver_webhook
    if at is not None and at > timezone.now():
        if not task.get_backend().supports_defer:
            return
        task = task.using(run_after=at)
    task.enqueue(delivery.pk)


def attempt(*, delivery_id: int) -> str:
    """Run one attempt of the delivery if it is due; returns what happened."""
    claimed = _claim(delivery_id)
    if claimed is None:
        return "skipped"
    delivery, secrets = claimed
    body = body_of(delivery)
    timestamp = int(time.time())
    headers = {
        "Bazaar-Signature": transport.signature_header(
            secrets=secrets, timestamp=timestamp, body=body
        ),
        "Bazaar-Event": delivery.event_type,
        "Bazaar-Delivery": str(delivery.uuid),
    }
    try:
        answer = transport.post(
            url=delivery.endpoint.url,
            body=body,
            headers=headers,
            timeout=settings.WEBHOOKS_TIMEOUT_SECONDS,
        )
    except (transport.SendFailed, transport.UnsafeDestination) as exc:
        return _record(delivery, answer=None, error=str(exc))
    return _record(delivery, answer=answer, error="")


def _claim(delivery_id: int) -> tuple[Delivery, list[str]] | None:
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.state in (DeliveryState.DELIVERED, DeliveryState.FAILED):
            return None
        if delivery.state == DeliveryState.SENDING:
            if delivery.lease_expires_at and delivery.lease_expires_at > now:
                return None  # another worker is sending it right now
            delivery.error = f"Attempt {delivery.attempts} stopped without an outcome."
            if delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
                _finish(delivery, DeliveryState.FAILED)
                delivery.save()
                return None
        elif delivery.next_attempt_at and delivery.next_attempt_at > now + EARLY_TOLERANCE:
            return None  # a task due then exists (or the sweeper will send it)
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            delivery.error = "The endpoint is disabled."
            _finish(delivery, DeliveryState.FAILED)
            delivery.save()
            return None
        delivery.state = DeliveryState.SENDING
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = None
        delivery.lease_expires_at = now + datetime.timedelta(seconds=lease_seconds())
        delivery.save()
        secrets = [endpoint.secret]
        if endpoint.previous_secret and (endpoint.previous_secret_expires_at or now) > now:
            secrets.append(endpoint.previous_secret)
    return delivery, secrets


def _record(claimed: Delivery, *, answer: transport.Answer | None, error: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=claimed.pk).first()
        if (
            delivery is None
            or delivery.state != DeliveryState.SENDING
            or delivery.attempts != claimed.attempts
        ):
            return "superseded"  # deleted, or taken over after our lease ran out
        delivery.lease_expires_at = None
        delivery.status_code = answer.status if answer else None
        delivery.response_excerpt = answer.excerpt if answer else ""
        delivery.duration_ms = answer.duration_ms if answer else None
        if answer is not None and 200 <= answer.status < 300:
            delivery.error = ""
            delivery.delivered_at = now
            _finish(delivery, DeliveryState.DELIVERED)
            delivery.save()
            return "delivered"
        delivery.error = error or f"The endpoint answered {answer.status if answer else '?'}."
        if delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS:
            _finish(delivery, DeliveryState.FAILED)
            delivery.save()
            logger.warning("Webhook delivery %s failed for good: %s", delivery.pk, delivery.error)
            return "failed"
        delay = retry_delay(delivery.attempts)
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = now + datetime.timedelta(seconds=delay)
        delivery.save()
        schedule(delivery, at=delivery.next_attempt_at)
    logger.info(
        "Webhook delivery %s attempt %s failed (%s); next in %.0f s",
        delivery.pk,
        delivery.attempts,
        delivery.error,
        delay,
    )
    return "retrying"


def _finish(delivery: Delivery, state: str) -> None:
    delivery.state = state
    delivery.next_attempt_at = None
    delivery.lease_expires_at = None


def requeue_stalled(*, now: datetime.datetime | None = None) -> int:
    """Enqueue every delivery whose attempt is overdue: a pending one whose task never came
    (a backend that cannot defer, a lost task) or a sending one whose worker died. Its claim
    decides; an extra task for one delivery only finds it not due."""
    now = now or timezone.now()
    stalled = Delivery.objects.filter(
        Q(state=DeliveryState.PENDING, next_attempt_at__lte=now - SWEEP_AFTER)
        | Q(state=DeliveryState.SENDING, lease_expires_at__lte=now - SWEEP_AFTER)
    ).order_by("next_attempt_at")
    ids = list(stalled.values_list("pk", flat=True)[:SWEEP_BATCH])
    for delivery_id in ids:
        tasks.deliver_webhook.enqueue(delivery_id)
    return len(ids)
