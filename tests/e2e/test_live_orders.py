"""Live pages in a real browser: uvicorn (ASGI, channels-redis), a `run_dispatcher` process,
and a shopper and a vendor watching the same order from two browser contexts."""

import re

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from playwright.sync_api import BrowserContext, Page, expect

from project import events
from project.events.models import OutboxEvent
from shop import events as shop_events
from shop.models import Order, OrderStatus, Payment, PaymentStatus
from shop.services import fulfilment
from shop.services import payments as payment_services
from tests import factories
from tests.fixtures import asgi_server as processes
from tests.fixtures import live_orders, twofactor
from tests.fixtures.asgi_server import asgi_server, event_dispatcher  # noqa: F401 - fixtures

LIVE_TIMEOUT = 15_000


@pytest.fixture(autouse=True)
def _dispatch_in_the_dispatcher_process(settings):
    """Events are delivered by the `run_dispatcher` process, as in production."""
    settings.EVENTS_DISPATCH_ON_COMMIT = False


@pytest.fixture
def shop_data(transactional_db):
    vendor = factories.VendorFactory(name="Oak & Iron")
    vendor_member = factories.VendorMembershipFactory(vendor=vendor).user
    shopper = factories.UserFactory(full_name="Sam Shopper")
    order = live_orders.placed_order(customer=shopper, vendor=vendor, ship_name="Sam")
    payment = live_orders.pending_charge(order)
    return {"order": order, "payment": payment, "shopper": shopper, "vendor_member": vendor_member}


def run_payment_task(payment: Payment) -> None:
    """What the `critical` worker does: process the payment (gateway call, outcome, events)."""
    payment_services.process_payment(payment_id=payment.pk)


def signed_in_context(browser, server, user) -> BrowserContext:
    client = Client()
    twofactor.sign_in_with_second_factor(client, user)  # shop owners need both factors
    context = browser.new_context(base_url=server.url)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": server.url,
            }
        ]
    )
    return context


def watch_csp(page: Page) -> list[str]:
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def open_live(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_selector("[data-live-connected]", state="attached", timeout=LIVE_TIMEOUT)
    page.evaluate("document.documentElement.dataset.e2eMarker = 'still-here'")


def not_reloaded(page: Page) -> bool:
    return page.evaluate("document.documentElement.dataset.e2eMarker") == "still-here"


@pytest.mark.usefixtures("event_dispatcher")
def test_shopper_and_vendor_see_the_payment_without_reloading(
    browser,
    asgi_server,  # noqa: F811 - the fixture
    shop_data,
):
    order = shop_data["order"]
    shopper_context = signed_in_context(browser, asgi_server, shop_data["shopper"])
    vendor_context = signed_in_context(browser, asgi_server, shop_data["vendor_member"])
    try:
        shopper_page = shopper_context.new_page()
        vendor_page = vendor_context.new_page()
        shopper_csp = watch_csp(shopper_page)
        vendor_csp = watch_csp(vendor_page)
        open_live(shopper_page, f"/orders/{order.pk}/")
        open_live(vendor_page, "/backoffice/orders/")
        status = shopper_page.locator("#order-status")
        expect(status).to_contain_text("Processing your payment…")
        expect(status).to_contain_text("Awaiting payment")
        expect(status.locator(".order-headline")).to_have_text("Awaiting payment")
        expect(status.locator(".payment-box .pill")).to_have_text("Processing")
        # Awaiting payment: not in the vendor's list (nothing to do yet), counter empty.
        expect(vendor_page.locator(f"#order-row-{order.pk}")).to_have_count(0)
        expect(vendor_page.locator("#orders-badge")).to_have_text("")

        run_payment_task(shop_data["payment"])

        # The whole status area flips at once: order status, timeline, payment box and message.
        expect(status).to_contain_text(
            f"Thank you, your order {order.number} is confirmed.", timeout=LIVE_TIMEOUT
        )
        expect(status.locator(".order-headline")).to_have_text("Paid")
        expect(status.locator(".payment-box .pill")).to_have_text("Paid")
        expect(status.locator(".timeline-done")).to_have_text(
            [re.compile("Order placed"), re.compile("Payment received")]
        )
        expect(status.locator(".timeline-current")).to_contain_text("Shipped by Oak & Iron")
        expect(status).not_to_contain_text("Processing your payment")
        row = vendor_page.locator("#order-rows tr").first
        expect(row).to_have_id(f"order-row-{order.pk}", timeout=LIVE_TIMEOUT)
        expect(row).to_contain_text("To ship")
        expect(vendor_page.locator("#orders-badge")).to_have_text("1 to ship")
        expect(
            vendor_page.get_by_text(f"Order {order.number} is paid and ready to ship.")
        ).to_be_visible()
        assert not_reloaded(shopper_page)
        assert not_reloaded(vendor_page)
        assert shopper_csp == []
        assert vendor_csp == []
    finally:
        shopper_context.close()
        vendor_context.close()


def ship(order: Order, member) -> None:
    """The vendor ships from the backoffice (the fulfilment service)."""
    vendor = member.vendor_memberships.get().vendor
    fulfilment.ship_vendor_lines(
        order=order, vendor=vendor, carrier="DHL", tracking_number="TRACK123", acting_user=member
    )


def all_delivered() -> bool:
    return not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


@pytest.mark.usefixtures("event_dispatcher")
def test_pages_catch_up_after_the_websocket_drops(
    browser,
    asgi_server,  # noqa: F811 - the fixture
    shop_data,
):
    order = shop_data["order"]
    run_payment_task(shop_data["payment"])
    processes.wait_for(all_delivered, timeout=15)
    shopper_context = signed_in_context(browser, asgi_server, shop_data["shopper"])
    vendor_context = signed_in_context(browser, asgi_server, shop_data["vendor_member"])
    try:
        shopper_page = shopper_context.new_page()
        vendor_page = vendor_context.new_page()
        open_live(shopper_page, f"/orders/{order.pk}/")
        open_live(vendor_page, "/backoffice/orders/")
        dashboard = vendor_context.new_page()
        open_live(dashboard, "/backoffice/")
        expect(dashboard.locator("#dashboard-tiles dd").first).to_have_text("1")
        expect(shopper_page.locator("#order-status")).to_contain_text("Paid")
        expect(vendor_page.locator(f"#order-row-{order.pk}")).to_contain_text("To ship")
        expect(vendor_page.locator("#orders-badge")).to_have_text("1 to ship")

        # The server goes away: both sockets drop.
        asgi_server.stop()
        shopper_page.wait_for_selector("[data-live-connected]", state="detached")
        vendor_page.wait_for_selector("[data-live-connected]", state="detached")
        dashboard.wait_for_selector("[data-live-connected]", state="detached")
        # The order ships and its event is delivered while nobody is connected: the live
        # messages are lost (the channel layer is at-most-once).
        ship(order, shop_data["vendor_member"])
        processes.wait_for(all_delivered, timeout=15)

        asgi_server.start()  # same port; the pages reconnect by themselves and re-sync
        status = shopper_page.locator("#order-status")
        # "Shipped" is on the timeline before it is done: wait for the done step itself.
        expect(status.locator(".timeline-done").last).to_contain_text(
            "Shipped by Oak & Iron", timeout=LIVE_TIMEOUT * 2
        )
        expect(status.locator(".timeline-done").last).to_contain_text(
            "DHL, tracking number TRACK123"
        )
        expect(vendor_page.locator(f"#order-row-{order.pk}")).to_contain_text(
            "Shipped", timeout=LIVE_TIMEOUT * 2
        )
        expect(vendor_page.locator("#orders-badge")).to_have_text("")
        expect(dashboard.locator("#dashboard-tiles dd").first).to_have_text(
            "0", timeout=LIVE_TIMEOUT * 2
        )
        expect(shopper_page.locator("[data-live-connected]")).to_have_count(1)
        assert not_reloaded(shopper_page)
        assert not_reloaded(vendor_page)
        assert not_reloaded(dashboard)
    finally:
        shopper_context.close()
        vendor_context.close()


def give_up(payment: Payment) -> None:
    """What the payment service records when the processor never answered: the payment
    failed with "processing_error" and PaymentFailed(final=False); the order awaits payment."""
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(
            status=PaymentStatus.FAILED,
            failure_code=payment_services.PROCESSING_ERROR_CODE,
            failure_message=payment_services.PROCESSING_ERROR_MESSAGE,
        )
        events.record(
            shop_events.PaymentFailed(
                order_id=payment.order_id,
                payment_id=payment.pk,
                failure_code=payment_services.PROCESSING_ERROR_CODE,
                failure_message=payment_services.PROCESSING_ERROR_MESSAGE,
                final=False,
            ),
            aggregate=(Order._meta.label_lower, payment.order_id),
        )


@pytest.mark.usefixtures("event_dispatcher")
def test_a_retry_shows_while_live_and_pay_now_arrives_live_and_pays(
    browser,
    asgi_server,  # noqa: F811 - the fixture
    shop_data,
):
    order, payment = shop_data["order"], shop_data["payment"]
    context = signed_in_context(browser, asgi_server, shop_data["shopper"])
    try:
        page = context.new_page()
        csp = watch_csp(page)
        open_live(page, f"/orders/{order.pk}/")
        status = page.locator("#order-status")
        expect(status).to_contain_text("Processing your payment…")

        # The processor did not answer; the worker calls again. No event: the page's poll,
        # running beside the open socket, shows it.
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PROCESSING, attempts=2)
        expect(status).to_contain_text(
            "We are retrying your payment — the processor did not answer.", timeout=LIVE_TIMEOUT
        )
        expect(status).to_contain_text("You will not be charged twice.")
        expect(status.get_by_role("button", name="Pay €24.50")).to_have_count(0)

        # The worker gives up: Pay now arrives over the socket, with the outcome.
        give_up(payment)
        expect(status).to_contain_text(
            payment_services.PROCESSING_ERROR_MESSAGE, timeout=LIVE_TIMEOUT
        )
        expect(status.locator(".payment-box .pill")).to_have_text("Failed")
        expect(status.locator(".order-headline")).to_have_text("Awaiting payment")
        assert not_reloaded(page)
        status.get_by_label("Card number").fill("4242 4242 4242 4242")
        status.get_by_label("Expiry (MM/YY)").fill("12/40")
        status.get_by_label("CVC").fill("123")
        with page.expect_response(lambda response: response.url.endswith("/pay/")) as posted:
            status.get_by_role("button", name="Pay €24.50").click()

        # The form came over the socket without a CSRF token; the page's own was sent.
        assert posted.value.status == 302
        expect(page.locator("#order-status")).to_contain_text(
            f"Thank you, your order {order.number} is confirmed.", timeout=LIVE_TIMEOUT
        )
        assert Order.objects.get(pk=order.pk).status == "paid"
        assert Payment.objects.filter(order=order).count() == 2
        assert csp == []
    finally:
        context.close()


def place_another_order(shop_data) -> Order:
    """A second shopper's order of the same board, placed (OrderPlaced recorded)."""
    vendor = shop_data["vendor_member"].vendor_memberships.get().vendor
    shopper = factories.UserFactory(full_name="Ada Other")
    return live_orders.placed_order(
        customer=shopper, vendor=vendor, price="9.00", name="Oak Spoon", ship_name="Ada"
    )


@pytest.mark.usefixtures("event_dispatcher")
def test_the_vendors_dashboard_and_order_count_follow_orders_with_one_notice(
    browser,
    asgi_server,  # noqa: F811 - the fixture
    shop_data,
):
    order = shop_data["order"]
    processes.wait_for(all_delivered, timeout=15)  # OrderPlaced, before the pages open
    context = signed_in_context(browser, asgi_server, shop_data["vendor_member"])
    try:
        dashboard = context.new_page()
        orders = context.new_page()
        csp = watch_csp(dashboard)
        open_live(dashboard, "/backoffice/")
        open_live(orders, "/backoffice/orders/")
        tiles = dashboard.locator("#dashboard-tiles dd")
        expect(tiles).to_have_text(["0", "€0.00", "€0.00", "€0.00"])
        expect(dashboard.locator("#revenue-chart")).to_contain_text("No sales")

        run_payment_task(shop_data["payment"])

        expect(tiles).to_have_text(["1", "€24.50", "€24.50", "€24.50"], timeout=LIVE_TIMEOUT)
        expect(dashboard.locator("#revenue-chart figcaption")).to_contain_text("€24.50")
        expect(orders.locator(".order-count")).to_have_text("1 order", timeout=LIVE_TIMEOUT)
        notices = dashboard.locator("#live-notices .live-notice")
        expect(notices).to_have_text(f"Order {order.number} is paid and ready to ship.")

        other = place_another_order(shop_data)

        # The newer notice takes the place of the older one and says how many came.
        expect(notices.first).to_contain_text(
            f"New order {other.number}, awaiting payment.", timeout=LIVE_TIMEOUT
        )
        expect(notices).to_have_count(1)
        expect(notices.locator(".live-notice-count")).to_have_text("2 updates")
        expect(orders.locator("#live-notices .live-notice")).to_have_count(1)
        expect(tiles.first).to_have_text("1")  # awaiting payment: nothing to fulfil yet
        assert not_reloaded(dashboard)
        assert not_reloaded(orders)
        assert csp == []
    finally:
        context.close()


@pytest.mark.usefixtures("event_dispatcher")
def test_a_filtered_order_list_is_refetched_with_its_count(
    browser,
    asgi_server,  # noqa: F811 - the fixture
    shop_data,
):
    order = shop_data["order"]
    other = place_another_order(shop_data)
    Order.objects.filter(pk=other.pk).update(status=OrderStatus.PAID)
    processes.wait_for(all_delivered, timeout=15)
    context = signed_in_context(browser, asgi_server, shop_data["vendor_member"])
    try:
        page = context.new_page()
        open_live(page, "/backoffice/orders/?status=to_ship")
        expect(page.locator(".order-count")).to_have_text("1 order")

        run_payment_task(shop_data["payment"])

        # Not prepended blindly: the list and its count come again, filtered.
        expect(page.locator(".order-count")).to_have_text("2 orders", timeout=LIVE_TIMEOUT)
        expect(page.locator("#order-rows tr")).to_have_count(2)
        expect(page.locator(f"#order-row-{order.pk}")).to_contain_text("To ship")
        expect(page.get_by_label("State")).to_have_value("to_ship")
        assert not_reloaded(page)
    finally:
        context.close()
