"""Delivering committed outbox events to their handlers.

Guarantees:
- At least once: an event is marked delivered in the same transaction that recorded its
  handlers' receipts; a dispatcher that dies mid-way rolls back and the event is taken
  again. Receipts (unique per event and handler) make a redelivery skip finished handlers.
- In order per aggregate: an event is claimable only when every earlier event of its
  aggregate is delivered, and it is claimed with `SELECT … FOR UPDATE SKIP LOCKED`, so any
  number of dispatchers can run at once; different aggregates proceed in parallel.
- A failing handler is retried with exponential backoff; after EVENTS_MAX_ATTEMPTS its event
  is parked (visible in the admin, replayable). A retrying or parked event holds back the
  later events of its own aggregate only: an order's "shipped" must never be handled
  before its "paid", but other orders carry on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import socket
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.module_loading import import_string

from project import events
from project.background import liveness
from project.background.models import Heartbeat
from project.db import direct
from project.events import conf
from project.events.models import HandlerReceipt, OutboxEvent
from project.request_context import current_request_id

logger = logging.getLogger(__name__)

Handler = Callable[[events.Event], object]


def load_handler_map(path: str | None = None) -> dict[str, list[str]]:
    handler_map = import_string(path or conf.get("EVENTS_HANDLER_MAP"))
    return {name: list(paths) for name, paths in handler_map.items()}


@dataclass
class Outcome:
    event_id: object
    event_type: str
    delivered: bool
    parked: bool = False
    failures: list[str] = field(default_factory=list)


@dataclass
class Dispatcher:
    """Claims and handles one event per transaction. Safe to run in many processes at once."""

    handler_map: dict[str, list[str]] = field(default_factory=load_handler_map)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    _handlers: dict[str, Handler] = field(default_factory=dict, repr=False)

    def handler(self, path: str) -> Handler:
        if path not in self._handlers:
            self._handlers[path] = import_string(path)
        return self._handlers[path]

    def has_due_events(self) -> bool:
        """A cheap look, outside any transaction, before taking locks."""
        return OutboxEvent.objects.pending().filter(next_attempt_at__lte=timezone.now()).exists()

    def dispatch_one(self) -> Outcome | None:
        """Handle the oldest claimable event; None when there is none right now."""
        with transaction.atomic():
            row = self._claim()
            if row is None:
                return None
            return self._handle(row)

    def run_until_idle(self, *, limit: int | None = None) -> int:
        """Dispatch until nothing is claimable (or `limit` events); returns how many."""
        count = 0
        while (limit is None or count < limit) and self.has_due_events():
            if self.dispatch_one() is None:
                break
            count += 1
        return count

    def _claim(self) -> OutboxEvent | None:
        earlier_undelivered = OutboxEvent.objects.filter(
            aggregate_type=OuterRef("aggregate_type"),
            aggregate_id=OuterRef("aggregate_id"),
            sequence__lt=OuterRef("sequence"),
            delivered_at__isnull=True,
        )
        return (
            OutboxEvent.objects.pending()
            .filter(next_attempt_at__lte=timezone.now())
            .filter(~Exists(earlier_undelivered))
            .order_by("created_at", "sequence")
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )

    def _handle(self, row: OutboxEvent) -> Outcome:
        meta = events.EventMeta(
            id=row.pk,
            aggregate_type=row.aggregate_type,
            aggregate_id=row.aggregate_id,
            sequence=row.sequence,
            request_id=row.request_id,
            created_at=row.created_at,
        )
        event = events.event_type(row.event_type).from_payload(row.payload, meta)
        done = set(HandlerReceipt.objects.filter(event=row).values_list("handler", flat=True))
        failures: list[str] = []
        token = current_request_id.set(row.request_id or "-")
        try:
            for path in self.handler_map.get(row.event_type, []):
                if path in done:
                    continue
                try:
                    with transaction.atomic():
                        self._call(self.handler(path), event)
                        HandlerReceipt.objects.create(event=row, handler=path, handled_by=self.name)
                except Exception as exc:
                    logger.exception("Handler %s failed on %s %s", path, row.event_type, row.pk)
                    failures.append(f"{path}: {exc!r}\n{traceback.format_exc(limit=5)}")
        finally:
            current_request_id.reset(token)
        now = timezone.now()
        row.attempts += 1
        if not failures:
            row.delivered_at = now
            row.last_error = ""
            row.save(update_fields=["attempts", "delivered_at", "last_error"])
            return Outcome(row.pk, row.event_type, delivered=True)
        row.last_error = "\n".join(failures)[:10_000]
        parked = row.attempts >= conf.get("EVENTS_MAX_ATTEMPTS")
        if parked:
            row.parked_at = now
            logger.error("Parked %s %s after %s attempts", row.event_type, row.pk, row.attempts)
        else:
            row.next_attempt_at = now + backoff(row.attempts)
        row.save(update_fields=["attempts", "last_error", "parked_at", "next_attempt_at"])
        return Outcome(row.pk, row.event_type, delivered=False, parked=parked, failures=failures)

    @staticmethod
    def _call(handler: Handler, event: events.Event) -> None:
        if not inspect.iscoroutinefunction(handler):
            handler(event)
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            async_to_sync(handler)(event)
            return
        # This thread already runs an event loop (a caller driving one synchronously):
        # give the handler a loop of its own in a helper thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, handler(event)).result()


_immediate = threading.local()


def dispatch_on_commit() -> None:
    """With EVENTS_DISPATCH_ON_COMMIT, deliver what is due in this process after a commit.

    Events that handlers record are delivered by the same loop (it runs until idle), not
    by a nested one.
    """
    if not conf.get("EVENTS_DISPATCH_ON_COMMIT") or getattr(_immediate, "active", False):
        return
    _immediate.active = True
    try:
        Dispatcher().run_until_idle()
    finally:
        _immediate.active = False


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter (between half and all of the step)."""
    base = float(conf.get("EVENTS_RETRY_BASE_SECONDS"))
    step = min(float(conf.get("EVENTS_RETRY_MAX_SECONDS")), base * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=step * (0.5 + random.random() / 2))


def replay(*, event_ids: list) -> int:
    """Give parked (or retrying) events a fresh set of attempts, due now. Returns the count."""
    with transaction.atomic():
        count = OutboxEvent.objects.filter(pk__in=event_ids, delivered_at__isnull=True).update(
            parked_at=None, attempts=0, next_attempt_at=timezone.now()
        )
        if count:
            _notify()
    return count


def _notify() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [events.NOTIFY_CHANNEL, "replay"])
    transaction.on_commit(events._wake_local_dispatchers)


class Waiter:
    """Sleeps until an event may be due: a NOTIFY (PostgreSQL), a local commit, or the poll."""

    def __init__(self, *, poll: float | None = None) -> None:
        self.poll = float(poll if poll is not None else conf.get("EVENTS_POLL_SECONDS"))
        self._local = threading.Event()
        self._listener = None
        events.add_wakeup(self._local.set)

    def wait(self) -> None:
        if self._listener is None:
            self._listener = _listen()
        if self._listener is not None:
            try:
                for _notice in self._listener.notifies(timeout=self.poll, stop_after=1):
                    break
                return
            except Exception:
                logger.warning("Lost the LISTEN connection; polling", exc_info=True)
                self.close_listener()
        self._local.wait(self.poll)
        self._local.clear()

    def close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            finally:
                self._listener = None

    def close(self) -> None:
        events.remove_wakeup(self._local.set)
        self.close_listener()


def _listen():
    """An autocommit psycopg connection LISTENing on the events channel (PostgreSQL only),
    straight to PostgreSQL: through PgBouncer's transaction pooling the LISTEN would stay
    with a server connection other clients use (project.db.direct)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    listener = direct.connect(autocommit=True)
    # nosemgrep: bazaar-raw-sql-formatting — a constant channel name (LISTEN takes no parameter)
    listener.execute(f"LISTEN {events.NOTIFY_CHANNEL}")
    return listener


# A long backlog is drained in rounds of this many events, with a heartbeat between rounds
# (project.background.liveness), so a busy dispatcher never looks dead.
DRAIN_BETWEEN_BEATS = 100


def run_forever(
    dispatcher: Dispatcher, *, stop: threading.Event, waiter: Waiter | None = None
) -> None:
    """The dispatcher process's loop: drain, then wait for a wake-up; survive DB restarts."""
    from django.db import close_old_connections, connection

    waiter = waiter or Waiter()
    beater = liveness.Beater(kind=Heartbeat.Kind.DISPATCHER, instance=dispatcher.name)
    try:
        while not stop.is_set():
            beater.beat()
            try:
                delivered = dispatcher.run_until_idle(limit=DRAIN_BETWEEN_BEATS)
            except Exception:
                logger.exception("Dispatcher loop failed; retrying shortly")
                connection.close()
                waiter.close_listener()
                stop.wait(waiter.poll)
                continue
            close_old_connections()
            if delivered < DRAIN_BETWEEN_BEATS:
                waiter.wait()
    finally:
        waiter.close()
