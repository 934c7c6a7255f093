"""The domain event bus: outbox, dispatcher, retries, parking, replay, concurrency."""

import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import transaction
from django.urls import reverse

from project import events
from project.events import dispatcher as event_dispatcher
from project.events.models import AggregateSequence, HandlerReceipt, OutboxEvent
from project.request_context import current_request_id
from tests.fixtures import asgi_server as processes
from tests.fixtures import events_probe
from tests.fixtures.events_probe import ProbeHappened
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _dispatch_explicitly(settings):
    """These tests drive the dispatcher themselves: no delivery on commit in this process."""
    settings.EVENTS_DISPATCH_ON_COMMIT = False


PROBE_MAP = "tests.fixtures.events_probe.HANDLERS"


@pytest.fixture(autouse=True)
def _clean_probe():
    events_probe.CALLS.clear()
    events_probe.FAILING.clear()
    yield
    events_probe.CALLS.clear()
    events_probe.FAILING.clear()


@pytest.fixture
def dispatcher():
    return event_dispatcher.Dispatcher(handler_map=event_dispatcher.load_handler_map(PROBE_MAP))


def record(n: int, aggregate: str = "a", **fields) -> OutboxEvent:
    with transaction.atomic():
        return events.record(ProbeHappened(n=n, **fields), aggregate=("probe", aggregate))


def calls(name: str) -> list[tuple[str, int]]:
    return [(agg, seq) for handler, agg, seq, _ in events_probe.CALLS if handler == name]


def failing_service() -> None:
    with transaction.atomic():
        events.record(ProbeHappened(n=1), aggregate=("probe", "a"))
        raise RuntimeError("the service failed after recording")


def test_rolled_back_transaction_records_and_delivers_nothing(dispatcher):
    with pytest.raises(RuntimeError):
        failing_service()

    assert OutboxEvent.objects.count() == 0
    assert dispatcher.run_until_idle() == 0
    assert events_probe.CALLS == []
    # The rolled-back number is given again: sequences have no gaps.
    assert record(2).sequence == 1


def test_record_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the service's transaction"):
        events.record(ProbeHappened(n=1), aggregate=("probe", "a"))
    assert OutboxEvent.objects.count() == 0


def test_event_row_carries_type_aggregate_sequence_payload_and_request_id():
    token = current_request_id.set("req-123")
    try:
        first = record(1, amount=Decimal("24.50"), tags=("x", "y"))
        second = record(2)
    finally:
        current_request_id.reset(token)
    other = record(3, aggregate="b")

    assert (first.event_type, first.aggregate_type, first.aggregate_id) == (
        "ProbeHappened",
        "probe",
        "a",
    )
    assert [first.sequence, second.sequence, other.sequence] == [1, 2, 1]
    assert first.request_id == "req-123"
    assert other.request_id == ""
    assert OutboxEvent.objects.get(pk=first.pk).payload == {
        "n": 1,
        "amount": "24.50",
        "tags": ["x", "y"],
    }
    assert AggregateSequence.objects.get(aggregate_id="a").last_sequence == 2


def test_handlers_get_typed_events_with_their_envelope_sync_and_async(dispatcher):
    row = record(7, amount=Decimal("9.99"), tags=("gift",))

    assert dispatcher.run_until_idle() == 1

    handled = {name: event for name, _, _, event in events_probe.CALLS}
    assert set(handled) == {"first", "flaky", "async"}
    event = handled["first"]
    assert event == ProbeHappened(n=7, amount=Decimal("9.99"), tags=("gift",))
    assert (event.meta.id, event.meta.sequence, event.meta.aggregate_id) == (row.pk, 1, "a")
    row.refresh_from_db()
    assert row.delivered_at is not None
    assert row.attempts == 1
    assert set(HandlerReceipt.objects.filter(event=row).values_list("handler", flat=True)) == set(
        events_probe.HANDLERS["ProbeHappened"]
    )


def test_redelivery_does_not_run_finished_handlers_again(dispatcher, settings):
    settings.EVENTS_RETRY_BASE_SECONDS = 0
    events_probe.FAILING.add("a")
    row = record(1)

    dispatcher.dispatch_one()  # first and async succeed, flaky fails
    events_probe.FAILING.clear()
    dispatcher.run_until_idle()  # only flaky runs again
    # A duplicate delivery of a delivered event (as after a lost acknowledgement).
    OutboxEvent.objects.filter(pk=row.pk).update(delivered_at=None)
    dispatcher.run_until_idle()

    assert calls("first") == [("a", 1)]
    assert calls("async") == [("a", 1)]
    assert calls("flaky") == [("a", 1)]
    assert HandlerReceipt.objects.filter(event=row).count() == 3


def test_failing_handler_is_retried_with_backoff_then_parked(dispatcher, settings):
    settings.EVENTS_MAX_ATTEMPTS = 3
    settings.EVENTS_RETRY_BASE_SECONDS = 60
    events_probe.FAILING.add("a")
    row = record(1)

    outcome = dispatcher.dispatch_one()

    assert outcome.delivered is False
    assert outcome.parked is False
    row.refresh_from_db()
    assert row.attempts == 1
    assert "probe failure on a" in row.last_error
    # Not due again before its backoff (30-60 s for the first retry).
    assert 25 < (row.next_attempt_at - row.created_at).total_seconds() < 65
    assert dispatcher.dispatch_one() is None

    settings.EVENTS_RETRY_BASE_SECONDS = 0
    OutboxEvent.objects.filter(pk=row.pk).update(next_attempt_at=row.created_at)
    dispatcher.run_until_idle()
    row.refresh_from_db()
    assert row.attempts == 3
    assert row.parked_at is not None
    assert row.delivered_at is None
    assert calls("flaky") == []


def test_parked_event_holds_back_its_own_aggregate_only_and_replay_delivers(
    dispatcher, settings, staff, client
):
    settings.EVENTS_MAX_ATTEMPTS = 2
    settings.EVENTS_RETRY_BASE_SECONDS = 0
    events_probe.FAILING.add("a")
    stuck = record(1, aggregate="a")
    held = record(2, aggregate="a")
    record(1, aggregate="b")

    dispatcher.run_until_idle()

    stuck.refresh_from_db()
    held.refresh_from_db()
    assert stuck.parked_at is not None
    assert held.delivered_at is None
    assert held.attempts == 0
    assert calls("flaky") == [("b", 1)]

    # Staff find it in the admin and replay it once the cause is fixed.
    sign_in_with_second_factor(client, staff)
    changelist = reverse("admin:events_outboxevent_changelist")
    page = client.get(changelist, {"state": "parked"})
    assert page.status_code == 200
    assert str(stuck.pk) in page.content.decode()
    assert str(held.pk) not in page.content.decode()
    events_probe.FAILING.clear()
    response = client.post(
        changelist, {"action": "replay_events", "_selected_action": [str(stuck.pk)]}, follow=True
    )
    assert "1 event(s) queued for delivery again." in response.content.decode()
    logged = LogEntry.objects.get(object_id=str(stuck.pk))
    assert (logged.user_id, logged.object_repr) == (staff.pk, str(stuck))
    assert logged.get_change_message() == "Replayed: a fresh set of delivery attempts, due now."

    dispatcher.run_until_idle()

    assert calls("flaky") == [("b", 1), ("a", 1), ("a", 2)]
    assert OutboxEvent.objects.filter(delivered_at__isnull=True).count() == 0


def test_replay_needs_permission(staff, client, django_user_model):
    row = record(1)
    OutboxEvent.objects.filter(pk=row.pk).update(parked_at=row.created_at, attempts=5)
    viewer = django_user_model.objects.create_user(
        email="viewer@example.com", password="x-long-password-1", is_staff=True
    )
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_outboxevent"))
    client.force_login(viewer)

    client.post(
        reverse("admin:events_outboxevent_changelist"),
        {"action": "replay_events", "_selected_action": [str(row.pk)]},
    )

    row.refresh_from_db()
    assert row.parked_at is not None
    assert row.attempts == 5


WRITER = textwrap.dedent(
    """
    import os
    import django

    django.setup()
    from django.conf import settings
    from django.db import transaction
    from project import events
    from tests.fixtures.events_probe import ProbeHappened

    settings.EVENTS_DISPATCH_ON_COMMIT = False

    with transaction.atomic():
        events.record(ProbeHappened(n=42), aggregate=("probe", "crash"))
    # Die right after the commit: no clean shutdown, no dispatching in this process.
    os._exit(0)
    """
)


def test_committed_event_is_delivered_after_the_writer_dies(tmp_path):
    writer = subprocess.run(
        [sys.executable, "-c", WRITER],
        cwd=processes.BASE_DIR,
        env=processes.django_env(),
        capture_output=True,
        timeout=60,
    )
    assert writer.returncode == 0, writer.stderr.decode()
    row = OutboxEvent.objects.get()
    assert row.delivered_at is None

    dispatcher = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "run_dispatcher",
            "--until-idle",
            "--handler-map",
            "tests.fixtures.events_probe.JITTER_HANDLERS",
        ],
        cwd=processes.BASE_DIR,
        env=processes.django_env(),
        capture_output=True,
        timeout=60,
    )

    assert dispatcher.returncode == 0, dispatcher.stderr.decode()
    assert "Delivered 1 event(s)." in dispatcher.stdout.decode()
    row.refresh_from_db()
    assert row.delivered_at is not None
    receipt = HandlerReceipt.objects.get(event=row)
    assert receipt.handler == "tests.fixtures.events_probe.jitter"
    assert receipt.handled_by
    assert not receipt.handled_by.endswith(f":{os.getpid()}")


def test_two_dispatchers_at_once_keep_each_aggregates_order(tmp_path):
    aggregates = [f"order-{i}" for i in range(20)]
    for n in range(200):
        record(n, aggregate=aggregates[n % 20])
    args = ("--until-idle", "--handler-map", "tests.fixtures.events_probe.JITTER_HANDLERS")

    first = processes.start_dispatcher(tmp_path / "one.log", *args)
    second = processes.start_dispatcher(tmp_path / "two.log", *args)
    try:
        assert first.wait(timeout=120) == 0, (tmp_path / "one.log").read_text()
        assert second.wait(timeout=120) == 0, (tmp_path / "two.log").read_text()
    finally:
        processes.stop(first)
        processes.stop(second)

    assert OutboxEvent.objects.filter(delivered_at__isnull=True).count() == 0
    receipts = list(HandlerReceipt.objects.select_related("event").order_by("handled_at", "id"))
    assert len(receipts) == 200  # each event handled exactly once
    assert len({receipt.handled_by for receipt in receipts}) == 2  # both took part
    for aggregate in aggregates:
        handled = [r.event.sequence for r in receipts if r.event.aggregate_id == aggregate]
        assert handled == list(range(1, 11)), aggregate


def test_listening_dispatcher_wakes_on_commit_not_on_its_poll(tmp_path):
    log = tmp_path / "dispatcher.log"
    process = processes.start_dispatcher(
        log, "--poll", "30", "--handler-map", "tests.fixtures.events_probe.JITTER_HANDLERS"
    )
    try:
        # Let it start and go to sleep on LISTEN with nothing to do.
        time.sleep(3)
        assert process.poll() is None, log.read_text()
        row = record(1)
        started = time.monotonic()
        processes.wait_for(
            lambda: OutboxEvent.objects.filter(pk=row.pk, delivered_at__isnull=False).exists(),
            timeout=10,
        )
        assert time.monotonic() - started < 10
    finally:
        processes.stop(process)
