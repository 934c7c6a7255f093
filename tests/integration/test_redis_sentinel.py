"""Redis Sentinel failover under a running shop.

A real Redis primary, its replica and a sentinel (tests/fixtures/redis_sentinel.py); a
uvicorn web process and a `run_dispatcher` configured with REDIS_SENTINELS only; a shopper
signed in over HTTP, watching their order page's live socket. The primary is SIGKILLed, the
sentinel promotes the replica, and neither process is restarted.
"""

import contextlib
import http.cookiejar
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from project.events.models import OutboxEvent
from shop.services import fulfilment
from tests import factories
from tests.fixtures import live_orders
from tests.fixtures.asgi_server import AsgiServer, start_dispatcher, stop, wait_for
from tests.fixtures.redis_sentinel import redis_sentinel  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db(transaction=True)

POLL_INTERVAL = 0.1
# Down-after 1 s, the sentinel's election and the promotion: a few seconds in all.
LONGEST_ACCEPTABLE_BLIP = 8.0


@pytest.fixture(autouse=True)
def _dispatch_in_the_dispatcher_process(settings):
    """Events reach the sockets through the `run_dispatcher` process, as in production."""
    settings.EVENTS_DISPATCH_ON_COMMIT = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Answer:
    status: int
    location: str
    text: str


class Browser:
    """Keeps its cookies and follows no redirect: what a shopper is answered, as it comes."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect
        )

    def request(self, path: str, data: dict[str, str] | None = None) -> Answer | None:
        """The answer, or None when there was none (refused, reset, timed out)."""
        request = urllib.request.Request(  # noqa: S310 - the local test server
            f"{self.base_url}{path}",
            data=urllib.parse.urlencode(data).encode() if data is not None else None,
            headers={"Referer": f"{self.base_url}{path}"},
        )
        try:
            with self._opener.open(request, timeout=5) as response:
                return Answer(response.status, "", response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers.get("Location", ""), error.read().decode())
        except OSError:
            return None

    def cookie(self, name: str) -> str:
        return next(cookie.value for cookie in self.cookies if cookie.name == name)


def sign_in(browser: Browser, email: str) -> None:
    page = browser.request("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = browser.request(
        "/accounts/login/",
        {"email": email, "password": factories.PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert answer.status == 302, answer.text


@dataclass
class Poller:
    """GETs one path every POLL_INTERVAL in a thread of its own, keeping every answer."""

    browser: Browser
    path: str
    answers: list[tuple[float, Answer | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Poller":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.answers.append((started, self.browser.request(self.path)))
            self._stop.wait(max(0.0, POLL_INTERVAL - (time.monotonic() - started)))

    def ok_for(self, seconds: float, *, since: float, ok: Callable[[Answer | None], bool]) -> bool:
        """Every answer of the last `seconds` (all after `since`) was ok."""
        recent = [(at, answer) for at, answer in self.answers if at > since]
        return (
            bool(recent)
            and recent[-1][0] - recent[0][0] >= seconds
            and all(ok(answer) for at, answer in recent if at >= recent[-1][0] - seconds)
        )

    def longest_blip(self, ok: Callable[[Answer | None], bool]) -> float:
        """Seconds from the first failed answer of a run of failures to the next good one."""
        longest, failing_since = 0.0, None
        for at, answer in self.answers:
            if ok(answer):
                if failing_since is not None:
                    longest = max(longest, at - failing_since)
                failing_since = None
            elif failing_since is None:
                failing_since = at
        assert failing_since is None, f"{self.path} still failing when polling stopped"
        return longest


def cache_ok(answer: Answer | None) -> bool:
    """/readyz wrote to the cache and read it back: the cache has a primary."""
    return answer is not None and answer.status == 200 and json.loads(answer.text)["cache"] == "ok"


def signed_out(answer: Answer | None) -> bool:
    return answer is not None and answer.location.startswith("/accounts/login/")


def open_live_socket(
    sockets: contextlib.ExitStack, server: AsgiServer, order_id: int, session_cookie: str
) -> ClientConnection:
    """The order page's socket, as the htmx ws extension opens it (retrying with backoff)."""
    deadline = time.monotonic() + 15
    delay = 0.25
    while True:
        try:
            return sockets.enter_context(
                connect(
                    f"ws://127.0.0.1:{server.port}/ws/orders/{order_id}/",
                    additional_headers={
                        "Origin": server.url,
                        "Cookie": f"{settings.SESSION_COOKIE_NAME}={session_cookie}",
                    },
                    open_timeout=5,
                )
            )
        except (OSError, ConnectionClosed, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"the live socket did not reopen: {exc!r}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 2)


def still_open(socket: ClientConnection, last_message: str) -> bool:
    """True if the socket is open and quiet; False if the server closed it. Events are
    delivered at least once, so the last message again (a redelivery) is quiet too."""
    while True:
        try:
            message = socket.recv(timeout=0.5)
        except TimeoutError:
            return True
        except ConnectionClosed:
            return False
        assert message == last_message, f"nothing new was published, yet came {message!r}"


def test_the_shop_follows_a_redis_failover_without_a_restart(redis_sentinel, tmp_path):  # noqa: F811
    vendor_member = factories.VendorMembershipFactory().user
    vendor = vendor_member.vendor_memberships.get().vendor
    shopper = factories.UserFactory(full_name="Sam Shopper")
    order = live_orders.order_awaiting_payment(customer=shopper, vendor=vendor)
    sentinel_env = redis_sentinel.django_env()
    server = AsgiServer(log=tmp_path / "uvicorn.log", env=sentinel_env).start()
    dispatcher = start_dispatcher(tmp_path / "dispatcher.log", "--poll", "0.5", **sentinel_env)
    sockets = contextlib.ExitStack()
    try:
        browser = Browser(server.url)
        sign_in(browser, shopper.email)
        session_key = browser.cookie(settings.SESSION_COOKIE_NAME)
        old_primary = redis_sentinel.primary_port()

        # Before the failover: the live page works through the sentinel's primary (the order's
        # OrderPlaced delivered first, so the one message is the capture's).
        wait_for(lambda: not OutboxEvent.objects.filter(delivered_at=None).exists(), timeout=20)
        socket = open_live_socket(sockets, server, order.pk, session_key)
        live_orders.capture(order)
        paid = socket.recv(timeout=15)
        assert "Thank you, your order" in paid

        order_page = Poller(browser, f"/orders/{order.pk}/")
        readiness = Poller(browser, "/readyz")
        with order_page, readiness:
            time.sleep(1)  # a second of normal service first
            killed_at = time.monotonic()
            redis_sentinel.kill_primary()
            new_primary = redis_sentinel.wait_for_failover(from_port=old_primary)
            promoted_after = time.monotonic() - killed_at

            def cache_answers_again_for_a_second() -> bool:
                return readiness.ok_for(1, since=killed_at, ok=cache_ok)

            wait_for(cache_answers_again_for_a_second, timeout=15)

        # One pool per process, not a connection per request: twenty more pages open next to
        # no new connection to the new primary. A few may open in that window all the same: the
        # pool's for commands run at once (the page and readiness pollers run beside) and the
        # channel layer's subscriber and publisher, which reconnect on their own schedule.
        probe = new_primary.client()
        connections_before = probe.info("stats")["total_connections_received"]
        answers = [browser.request("/readyz") for _ in range(20)]
        assert all(cache_ok(answer) for answer in answers), answers
        new_connections = probe.info("stats")["total_connections_received"] - connections_before

        # The live page: the socket survived, or the browser reopens it; either way the next
        # event published (by the same dispatcher, never restarted) reaches the shopper.
        reconnected = not still_open(socket, paid)
        if reconnected:
            socket = open_live_socket(sockets, server, order.pk, session_key)
        fulfilment.ship_vendor_lines(
            order=order,
            vendor=vendor,
            carrier="DHL",
            tracking_number="JD0001",
            acting_user=vendor_member,
        )
        shipped = socket.recv(timeout=15)
    finally:
        sockets.close()
        stop(dispatcher)
        server.stop()

    def shows_the_order(answer: Answer | None) -> bool:
        return answer is not None and answer.status == 200 and order.number in answer.text

    page_blip = order_page.longest_blip(shows_the_order)
    cache_blip = readiness.longest_blip(cache_ok)
    print(  # the measurement, for the record (pytest -s shows it)
        f"\nRedis failover: promoted {promoted_after:.1f} s after the kill; "
        f"order page blip {page_blip:.1f} s ({len(order_page.answers)} polls), "
        f"cache (/readyz) blip {cache_blip:.1f} s ({len(readiness.answers)} polls); "
        f"live socket {'reopened' if reconnected else 'kept'}; "
        f"{new_connections} new connections for 20 requests"
    )
    assert new_primary.port != old_primary
    assert not any(signed_out(answer) for _, answer in order_page.answers)
    assert page_blip <= LONGEST_ACCEPTABLE_BLIP
    assert 0 < cache_blip <= LONGEST_ACCEPTABLE_BLIP  # the primary did die under the cache
    assert new_connections <= 5  # of 20 requests
    # The web process' one subscriber followed the failover for all its sockets: no socket's
    # consumer failed with it (uvicorn would log an ASGI exception per open socket).
    assert "Exception in ASGI application" not in (tmp_path / "uvicorn.log").read_text()
    assert '<p class="order-headline"><span class="pill pill-shipped">Shipped</span>' in shipped
    # The session was in the replica before it was promoted: served from Redis, not only
    # from the database's copy.
    session_cache_key = (
        f"{settings.CACHE_KEY_PREFIX}:1:django.contrib.sessions.cached_db{session_key}"
    )
    assert new_primary.client().exists(session_cache_key)
