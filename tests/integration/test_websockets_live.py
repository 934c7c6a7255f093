"""Live pages over Channels (channels-redis): who may subscribe, and what arrives."""

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from backoffice import handlers as backoffice_handlers
from project import events, live
from project.asgi import application
from project.events import dispatcher as event_dispatcher
from project.events.models import OutboxEvent
from tests import factories
from tests.fixtures import live_orders, twofactor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _dispatch_explicitly(settings):
    """These tests drive the dispatcher themselves: no delivery on commit in this process."""
    settings.EVENTS_DISPATCH_ON_COMMIT = False


ORIGIN = settings.SITE_ORIGIN  # the site's own pages (SITE_URL)


def communicator(path: str, user=None, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())] if origin else []
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def dispatch_all() -> int:
    return event_dispatcher.Dispatcher().run_until_idle()


def run(scenario):
    """Run an async scenario on its own loop, in a thread of its own: the browser tests'
    Playwright keeps an event loop in the main thread for the rest of the session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


def refused(comm: WebsocketCommunicator) -> bool:
    async def scenario() -> bool:
        connected, _ = await comm.connect()
        if connected:
            await comm.disconnect()
        return not connected

    return run(scenario)


def seq(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}"[^>]*data-seq="(\d+)"', html)
    return int(match.group(1))


@pytest.fixture
def vendor(vendor_member):
    return vendor_member.vendor_memberships.get().vendor


def watch_order(order, shopper, change) -> str:
    """Deliver what is pending (OrderPlaced: before the page is open, nothing to receive),
    open the order's socket, make `change` and deliver its events: the one message received."""
    dispatch_all()
    comm = communicator(f"/ws/orders/{order.pk}/", shopper)

    async def scenario() -> str:
        connected, _ = await comm.connect()
        assert connected
        await sync_to_async(change)()
        await sync_to_async(dispatch_all)()
        message = await comm.receive_from(timeout=5)
        await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()
        return message

    return run(scenario)


def test_shopper_receives_their_order_flipping_to_paid(shopper, vendor):
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)

    message = watch_order(order, shopper, lambda: live_orders.capture(order))

    # The page's one live fragment: order status, payment pill and message, and no Pay now.
    assert message.strip().startswith('<div id="order-status"')
    assert message.count(' id="') == 1
    assert '<span class="pill pill-paid">Paid</span>' in message
    assert '<span class="pill pill-captured">Paid</span>' in message
    assert f"Thank you, your order {order.number} is confirmed." in message
    assert "<form" not in message
    assert "hx-trigger" not in message
    assert seq(message, "order-status") == 2  # OrderPlaced was 1


def status_and_payment(message: str) -> tuple[str, str]:
    """The order's status (the headline) and the payment box's word, as the shopper reads them."""
    status = re.search(r'<p class="order-headline"><span class="pill[^"]*">([^<]+)<', message)
    payment = re.search(r"<dt>Payment</dt>\s*<dd><span class=\"pill[^\"]*\">([^<]+)<", message)
    return status.group(1), payment.group(1)


def test_a_capture_pushed_live_says_paid_in_the_status_the_timeline_and_the_payment_box(
    shopper, vendor
):
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)

    message = watch_order(order, shopper, lambda: live_orders.capture(order))

    assert status_and_payment(message) == ("Paid", "Paid")
    assert "Payment received" in message
    assert f"Shipped by {vendor.name}" in message
    assert "Preparing your items" in message


def test_a_decline_pushed_live_says_cancelled_and_declined_together(shopper, vendor):
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)

    messages = watch_order(order, shopper, lambda: live_orders.decline(order))

    assert status_and_payment(messages) == ("Cancelled", "Declined")
    assert "Payment declined" in messages
    assert "Your card was declined. Order" in messages
    assert "Pay now" not in messages


def test_the_live_message_is_the_fragment_the_poll_and_the_resync_get(shopper, vendor):
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    message = watch_order(order, shopper, lambda: live_orders.capture(order))
    client = Client()
    client.force_login(shopper)

    poll = client.get(order.get_absolute_url(), headers={"HX-Request": "true"})

    assert poll.text.strip() == message.strip()


def test_vendor_members_receive_the_paid_order_row_counter_and_notice(
    shopper, vendor, vendor_member
):
    other_member = factories.VendorMembershipFactory().user
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    mine = communicator("/ws/vendor/orders/", vendor_member)
    theirs = communicator("/ws/vendor/orders/", other_member)

    async def scenario() -> list[str]:
        assert (await mine.connect())[0]
        assert (await theirs.connect())[0]
        await sync_to_async(dispatch_all)()  # OrderPlaced
        placed = await mine.receive_from(timeout=5)
        await sync_to_async(live_orders.capture)(order)
        await sync_to_async(dispatch_all)()  # PaymentCaptured
        paid = await mine.receive_from(timeout=5)
        assert await theirs.receive_nothing(timeout=0.3)
        await mine.disconnect()
        await theirs.disconnect()
        return [placed, paid]

    placed, paid = run(scenario)

    # Awaiting payment: not in the vendor's list yet, but announced.
    assert "order-row-" not in placed
    assert f"New order {order.number}, awaiting payment." in placed
    assert 'id="orders-badge"' in placed
    # Paid: the row arrives (to be put at the top of the list), the counter says 1.
    assert f'<tr id="order-row-{order.pk}" data-seq="2" data-live-prepend="order-rows">' in paid
    assert "To ship" in paid
    assert re.search(r'id="orders-badge"[^>]*>1<span class="visually-hidden"> to ship', paid)
    assert f"Order {order.number} is paid and ready to ship." in paid
    assert OutboxEvent.objects.filter(delivered_at__isnull=True).count() == 0


def vendor_messages(vendor_member, *changes) -> list[str]:
    """Open the vendor's socket of a page (not the order list or the dashboard), then make each
    change and deliver its events: one message each."""
    comm = communicator("/ws/vendor/", vendor_member)

    async def scenario() -> list[str]:
        assert (await comm.connect())[0]
        received = []
        for change in changes:
            await sync_to_async(change)()
            await sync_to_async(dispatch_all)()
            received.append(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return received

    return run(scenario)


def pages_receive(vendor_member, change, *paths: str) -> dict[str, list[str]]:
    """Open a socket for each page's path, make `change` and deliver its events: the messages
    each socket received, in order."""
    comms = {path: communicator(path, vendor_member) for path in paths}

    async def scenario() -> dict[str, list[str]]:
        for comm in comms.values():
            assert (await comm.connect())[0]
        await sync_to_async(change)()
        await sync_to_async(dispatch_all)()
        received: dict[str, list[str]] = {}
        for path, comm in comms.items():
            received[path] = [await comm.receive_from(timeout=5)]
            while not await comm.receive_nothing(timeout=0.3):
                received[path].append(await comm.receive_from(timeout=5))
            await comm.disconnect()
        return received

    return run(scenario)


def element(html: str, element_id: str) -> str:
    """The top-level element with that id, as pushed (tags stripped, whitespace collapsed)."""
    match = re.search(rf'<(\w+) id="{element_id}".*?</\1>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(0)).split())


def test_a_paid_order_pushes_the_dashboard_tiles_and_the_order_count(
    shopper, vendor, vendor_member
):
    earlier = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor, price="10.00")
    live_orders.capture(earlier)
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    dispatch_all()

    received = pages_receive(
        vendor_member,
        lambda: live_orders.capture(order),
        "/ws/vendor/dashboard/",
        "/ws/vendor/orders/",
    )
    (paid,) = received["/ws/vendor/dashboard/"]
    (listed,) = received["/ws/vendor/orders/"]

    # The dashboard's own tiles partial, now counting the new order and its revenue.
    assert element(paid, "dashboard-tiles") == (
        "Orders to fulfil 2 Revenue today €34.50 Last 7 days €34.50 Last 30 days €34.50"
    )
    assert seq(paid, "dashboard-tiles") > 0
    # The chart and the low-stock panel beside them, from the same reads.
    today = timezone.localdate()
    assert f"<title>{today:%a} {today.day} {today:%b}: €34.50</title>" in paid
    assert 'id="low-stock"' in paid
    # The order list's count above the rows, on the order list.
    assert element(listed, "order-count") == "2 orders"
    assert seq(listed, "order-count") > 0


def test_the_pushed_dashboard_and_count_are_the_pages_own_markup(shopper, vendor, vendor_member):
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    dispatch_all()  # OrderPlaced, before the pages open
    received = pages_receive(
        vendor_member,
        lambda: live_orders.capture(order),
        "/ws/vendor/dashboard/",
        "/ws/vendor/orders/",
    )
    (paid,) = received["/ws/vendor/dashboard/"]
    (listed,) = received["/ws/vendor/orders/"]
    client = Client()
    twofactor.sign_in_with_second_factor(client, vendor_member)

    dashboard = client.get("/backoffice/").text
    orders = client.get("/backoffice/orders/").text

    def versionless(html: str, element_id: str) -> str:
        match = re.search(rf'<(\w+) id="{element_id}".*?</\1>', html, re.S)
        return re.sub(r'data-seq="\d+"', "", match.group(0))

    for part in ["dashboard-tiles", "revenue-chart", "low-stock"]:
        assert versionless(paid, part) == versionless(dashboard, part)
    assert versionless(listed, "order-count") == versionless(orders, "order-count")


def test_each_notice_replaces_the_one_before(shopper, vendor, vendor_member):
    first = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    dispatch_all()
    second = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)

    placed, paid = vendor_messages(
        vendor_member, lambda: dispatch_all(), lambda: live_orders.capture(first)
    )

    for message, text in [
        (placed, f"New order {second.number}, awaiting payment."),
        (paid, f"Order {first.number} is paid and ready to ship."),
    ]:
        # One region, its content swapped (not appended to the page's messages).
        assert message.count('id="live-notices"') == 1
        assert '<div id="live-notices" hx-swap-oob="innerHTML">' in message
        assert "beforeend" not in message
        assert element(message, "live-notices") == text


def test_each_backoffice_page_is_sent_what_it_shows(shopper, vendor, vendor_member):
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    dispatch_all()  # OrderPlaced, before the pages open

    received = pages_receive(
        vendor_member,
        lambda: live_orders.capture(order),
        "/ws/vendor/",
        "/ws/vendor/orders/",
        "/ws/vendor/dashboard/",
    )

    # Any other page: the navigation's counter and the notice, in one small message.
    (page,) = received["/ws/vendor/"]
    assert live_parts(page) == {"orders-badge", "live-notices"}
    assert f"Order {order.number} is paid and ready to ship." in page
    # The order list: its row and count with them, in one message.
    (listed,) = received["/ws/vendor/orders/"]
    assert live_parts(listed) == {
        f"order-row-{order.pk}",
        "order-count",
        "orders-badge",
        "live-notices",
    }
    # The dashboard: its tiles, chart and low stock, with the same counter and notice.
    (dashboard,) = received["/ws/vendor/dashboard/"]
    assert live_parts(dashboard) == {
        "dashboard-tiles",
        "revenue-chart",
        "low-stock",
        "orders-badge",
        "live-notices",
    }
    assert dashboard.endswith(page)


def live_parts(html: str) -> set[str]:
    """Which of the backoffice's live elements a message carries."""
    return set(
        re.findall(
            r'id="(order-row-\d+|order-count|orders-badge|live-notices|dashboard-tiles'
            r'|revenue-chart|low-stock)"',
            html,
        )
    )


def test_an_unknown_backoffice_page_socket_is_refused(vendor_member):
    assert refused(communicator("/ws/vendor/reports/", vendor_member))


@pytest.mark.parametrize(
    ("feeds", "most_queries"),
    [
        # The order and its vendors only: no page of the vendor open, nothing rendered.
        ((), 3),
        # Then one count for the badge (and the list's count), the row, the dashboard's three.
        (("nav",), 4),
        (("orders",), 5),
        (("dashboard",), 7),
        (("orders", "dashboard", "nav"), 8),
    ],
)
def test_publishing_to_a_vendor_takes_a_bounded_number_of_queries(
    shopper, vendor, django_assert_max_num_queries, feeds, most_queries
):
    orders = [live_orders.order_awaiting_payment(customer=shopper, vendor=vendor) for _ in range(5)]
    for order in orders:
        live_orders.capture(order)
    row = OutboxEvent.objects.filter(event_type="PaymentCaptured").latest("created_at")
    meta = events.EventMeta(
        id=row.pk,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        sequence=row.sequence,
        request_id=row.request_id,
        created_at=row.created_at,
    )
    event = events.event_type(row.event_type).from_payload(row.payload, meta)
    groups = [live.vendor_feed_group(vendor.pk, feed) for feed in feeds]

    def publish() -> None:
        # The same few queries however many orders the vendor has.
        with django_assert_max_num_queries(most_queries):
            backoffice_handlers.publish_vendor_order(event)

    async def watched() -> str:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        for group in groups:
            await layer.group_add(group, channel)
        try:
            await sync_to_async(publish)()
            return "".join(
                [
                    (await asyncio.wait_for(layer.receive(channel), timeout=5))["html"]
                    for _ in groups
                ]
            )
        finally:
            for group in groups:
                await layer.group_discard(group, channel)

    html = run(watched)
    assert (f'id="order-row-{orders[-1].pk}"' in html) == ("orders" in feeds)
    assert ('id="dashboard-tiles"' in html) == ("dashboard" in feeds)


def test_a_groups_listeners_are_the_web_processes_subscribed_to_it(vendor):
    group = live.vendor_group(vendor.pk)
    other = live.vendor_group(vendor.pk + 1000)

    async def scenario() -> list[bool]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        seen = [await sync_to_async(live.has_listeners)(group)]
        await layer.group_add(group, channel)
        seen += [
            await sync_to_async(live.has_listeners)(group),
            await sync_to_async(live.has_listeners)(other),
        ]
        await layer.group_discard(group, channel)
        return [*seen, await sync_to_async(live.has_listeners)(group)]

    assert run(scenario) == [False, True, False, False]


def test_the_groups_listened_to_are_counted_in_one_look(vendor):
    orders, dashboard, nav = (
        live.vendor_feed_group(vendor.pk, feed) for feed in ("orders", "dashboard", "nav")
    )

    async def scenario() -> set[str]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(orders, channel)
        await layer.group_add(nav, channel)
        try:
            return await sync_to_async(live.listened)([orders, dashboard, nav])
        finally:
            await layer.group_discard(orders, channel)
            await layer.group_discard(nav, channel)

    assert run(scenario) == {orders, nav}


def test_other_shoppers_and_anonymous_cannot_watch_an_order(shopper, vendor, caplog):
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    stranger = factories.UserFactory()
    caplog.set_level(logging.WARNING, logger="project.live")

    assert refused(communicator(f"/ws/orders/{order.pk}/", stranger))
    assert refused(communicator(f"/ws/orders/{order.pk}/"))
    assert refused(communicator("/ws/orders/999999/", shopper))

    refusals = [r.getMessage() for r in caplog.records if r.name == "project.live"]
    assert refusals == [
        f"Refused websocket subscription to /ws/orders/{order.pk}/ by user {stranger.pk}",
        f"Refused websocket subscription to /ws/orders/{order.pk}/ by anonymous",
        f"Refused websocket subscription to /ws/orders/999999/ by user {shopper.pk}",
    ]


def test_only_vendor_members_can_watch_the_backoffice(shopper, vendor_member):
    assert refused(communicator("/ws/vendor/", shopper))
    assert refused(communicator("/ws/vendor/"))
    assert not refused(communicator("/ws/vendor/", vendor_member))


def test_pending_vendor_members_are_refused(vendor_member):
    vendor_member.vendor_memberships.update(vendor=factories.VendorFactory(status="pending"))
    assert refused(communicator("/ws/vendor/", vendor_member))


def test_sockets_from_foreign_or_missing_origins_are_refused(shopper, vendor):
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)

    assert refused(communicator(f"/ws/orders/{order.pk}/", shopper, origin="https://evil.example"))
    assert refused(communicator(f"/ws/orders/{order.pk}/", shopper, origin=None))
    assert not refused(communicator(f"/ws/orders/{order.pk}/", shopper))
