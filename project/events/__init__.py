"""The domain event bus.

Services describe what happened as frozen keyword-only dataclasses (subclasses of
`Event`, kept in `<app>/events.py`) and `record()` them inside their own transaction. The
row commits with the change or not at all; the dispatcher (`project.events.dispatcher`)
then hands every committed event to the handlers listed in `project/event_handlers.py`,
at least once and in order per aggregate.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Model

from project.request_context import current_request_id

__all__ = [
    "Event",
    "EventMeta",
    "aggregate_key",
    "event_type",
    "latest_sequence",
    "record",
]

# The PostgreSQL channel a committed event is announced on (NOTIFY is sent at commit only).
NOTIFY_CHANNEL = "bazaar_events"

_EVENT_TYPES: dict[str, type[Event]] = {}
_wakeups: list[Callable[[], None]] = []
_wakeups_lock = threading.Lock()


@dataclasses.dataclass(frozen=True, kw_only=True)
class EventMeta:
    """The envelope of a stored event, attached when the dispatcher hands it to handlers."""

    id: uuid.UUID
    aggregate_type: str
    aggregate_id: str
    sequence: int
    request_id: str
    created_at: datetime.datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every domain event: ids and scalars only, never model instances."""

    # The stored name; the class name unless a subclass sets it.
    name: ClassVar[str] = ""
    meta: EventMeta | None = dataclasses.field(default=None, compare=False, repr=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        known = _EVENT_TYPES.get(cls.name)
        if known is not None and f"{known.__module__}.{known.__qualname__}" != (
            f"{cls.__module__}.{cls.__qualname__}"
        ):
            raise TypeError(f"Two event types are named {cls.name!r}: {known} and {cls}.")
        _EVENT_TYPES[cls.name] = cls

    def payload(self) -> dict[str, Any]:
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name != "meta"
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], meta: EventMeta | None = None) -> Event:
        hints = typing.get_type_hints(cls)
        names = {field.name for field in dataclasses.fields(cls)} - {"meta"}
        values = {key: _coerce(value, hints.get(key)) for key, value in payload.items()}
        return cls(**{key: value for key, value in values.items() if key in names}, meta=meta)


def event_type(name: str) -> type[Event]:
    """The registered event class stored under `name` (KeyError when unknown)."""
    return _EVENT_TYPES[name]


def _coerce(value: Any, hint: Any) -> Any:
    """JSON gave strings for decimals, dates and uuids; give them back their types."""
    if value is None or hint is None:
        return value
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else ()
    for kind in options or (hint,):
        if kind is Decimal and isinstance(value, str | int):
            return Decimal(str(value))
        if kind is datetime.datetime and isinstance(value, str):
            return datetime.datetime.fromisoformat(value)
        if kind is datetime.date and isinstance(value, str):
            return datetime.date.fromisoformat(value)
        if kind is uuid.UUID and isinstance(value, str):
            return uuid.UUID(value)
        if typing.get_origin(kind) is tuple and isinstance(value, list):
            return tuple(value)
    return value


_UnionType = type(int | str)

Aggregate = Model | tuple[str, object]


def aggregate_key(aggregate: Aggregate) -> tuple[str, str]:
    """("shop.order", "42") for an Order instance or for ("shop.order", 42)."""
    if isinstance(aggregate, Model):
        if aggregate.pk is None:
            raise ValueError("Record events for saved aggregates only.")
        return aggregate._meta.label_lower, str(aggregate.pk)
    kind, pk = aggregate
    return str(kind), str(pk)


def record(event: Event, *, aggregate: Aggregate, using: str = DEFAULT_DB_ALIAS):
    """Add `event` to the outbox, inside the caller's transaction; returns the OutboxEvent.

    The aggregate's sequence row stays locked until the caller's transaction ends, so an
    aggregate's events get gap-free numbers in commit order. On PostgreSQL the dispatchers
    are woken by a NOTIFY, which the database sends only if the transaction commits.
    """
    from project.events.models import AggregateSequence, OutboxEvent

    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        raise RuntimeError(
            "events.record() must run inside the service's transaction.atomic() block."
        )
    if not isinstance(event, Event) or event.meta is not None:
        raise TypeError("record() takes a new Event instance.")
    params = type(event).__dict__.get("__dataclass_params__")
    if params is None or not params.frozen:
        raise TypeError(f"{type(event).__name__} must be a @dataclass(frozen=True, kw_only=True).")
    aggregate_type, aggregate_id = aggregate_key(aggregate)
    table = connection.ops.quote_name(AggregateSequence._meta.db_table)
    # One statement that both creates and increments, and returns the new number.
    next_sequence = (
        f"INSERT INTO {table} (aggregate_type, aggregate_id, last_sequence) "  # noqa: S608
        "VALUES (%s, %s, 1) ON CONFLICT (aggregate_type, aggregate_id) "
        f"DO UPDATE SET last_sequence = {table}.last_sequence + 1 RETURNING last_sequence"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The dispatchers' NOTIFY in the same round trip.
            cursor.execute(
                f"WITH next AS ({next_sequence}) "  # noqa: S608
                "SELECT last_sequence, pg_notify(%s, %s) FROM next",
                [aggregate_type, aggregate_id, NOTIFY_CHANNEL, aggregate_type],
            )
        else:
            cursor.execute(next_sequence, [aggregate_type, aggregate_id])
        sequence = cursor.fetchone()[0]
    row = OutboxEvent.objects.using(using).create(
        event_type=event.name,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        sequence=sequence,
        payload=event.payload(),
        request_id=_request_id(),
    )
    transaction.on_commit(_wake_local_dispatchers, using=using)
    return row


def _request_id() -> str:
    value = current_request_id.get()
    return "" if value == "-" else value[:64]


def latest_sequence(aggregate: Aggregate, using: str = DEFAULT_DB_ALIAS) -> int:
    """The sequence number of the aggregate's last committed event (0 if none).

    Pages read it before the state they render and carry it as `data-seq`, so a live
    message older than the page is ignored.
    """
    from project.events.models import AggregateSequence

    aggregate_type, aggregate_id = aggregate_key(aggregate)
    value = (
        AggregateSequence.objects.using(using)
        .filter(aggregate_type=aggregate_type, aggregate_id=aggregate_id)
        .values_list("last_sequence", flat=True)
        .first()
    )
    return value or 0


def add_wakeup(callback: Callable[[], None]) -> None:
    """Call `callback` after any transaction in this process commits an event."""
    with _wakeups_lock:
        _wakeups.append(callback)


def remove_wakeup(callback: Callable[[], None]) -> None:
    with _wakeups_lock:
        if callback in _wakeups:
            _wakeups.remove(callback)


def _wake_local_dispatchers() -> None:
    with _wakeups_lock:
        callbacks = list(_wakeups)
    for callback in callbacks:
        callback()
