"""Live pages: Channels groups, the consumer base and publishing fragments to them.

Groups are `order-<id>` (that order's shopper) and, for a vendor's members, `vendor-<id>`
(every backoffice page) and one feed group per kind of page (`vendor_feed_group`), so that
each page is sent what it shows and no more. A message is HTML: top-level elements with ids
that the htmx ws extension swaps out of band, each rendered from the page's own partial and
carrying `data-seq`. The channel layer delivers at most once; the outbox is the record, and
pages re-fetch their state on every (re)connect, so a lost message only delays a page until
its next event or reconnect.
"""

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import BaseChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.template.loader import render_to_string

from project import client_ip, metrics, ratelimit, websockets
from project.request_context import current_user_id

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "live.fragment"


def order_group(order_id: int) -> str:
    return f"order-{order_id}"


def vendor_group(vendor_id: int) -> str:
    return f"vendor-{vendor_id}"


# A backoffice page's socket joins one feed group, by what the page shows of an order event:
# the order list its row and count, the dashboard its tiles, chart and low stock, any other
# page ("nav") only what every page shows, the navigation's badge and the notice.
VENDOR_FEEDS = ("orders", "dashboard", "nav")


def vendor_feed_group(vendor_id: int, feed: str) -> str:
    if feed not in VENDOR_FEEDS:
        raise ValueError(f"no vendor feed {feed!r}")
    return f"vendor-{vendor_id}-{feed}"


def render_fragments(templates: list[str], context: dict) -> str:
    """Render partials ("app/page.html#name") one after the other into one message."""
    return "\n".join(render_to_string(template, context) for template in templates)


PUBLISH_TIMEOUT = 10.0

_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_lock = threading.Lock()


def _channel_layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("CHANNEL_LAYERS has no default layer: live pages need one.")
    return layer


def has_listeners(group: str) -> bool:
    """Whether a socket anywhere is in `group` now (see `listened`)."""
    return group in listened([group])


def listened(groups: list[str]) -> set[str]:
    """Those of `groups` that a socket anywhere is in now, so that a fragment nobody would
    receive is not rendered (a vendor's costs milliseconds of the dispatcher's CPU per event).
    One Redis round trip, however many groups.

    On Redis Pub/Sub a web process subscribes to a group's channel while one of its sockets is
    in it, and PUBSUB NUMSUB counts those processes. A socket that joins after this answer
    loses nothing: a live page fetches its state once its socket is open (data-live-resync),
    after the change that raised the event committed. Other layers (the embedded default's
    in-memory one) cannot say: all of them."""
    layer = _channel_layer()
    if not isinstance(layer, RedisPubSubChannelLayer):
        return set(groups)
    # The layer's name for a group's channel (channels_redis.pubsub, _get_group_channel_name;
    # tests/integration/test_websockets_live.py checks it against a socket really joined).
    prefix = f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}__group__"
    channels = [prefix + group for group in groups]
    try:
        # The primary: subscriptions are per server, and a replica has none.
        client = cache._cache.get_client(channels[0], write=True)  # type: ignore[attr-defined]
        counts = client.pubsub_numsub(*channels)
    except Exception:  # noqa: BLE001 - Redis away: render, and let the publish fail and retry
        logger.warning("Could not count the listeners of %s", groups, exc_info=True)
        return set(groups)
    listening = {
        (channel.decode() if isinstance(channel, bytes) else channel)
        for channel, subscribers in counts
        if subscribers > 0
    }
    return {group for group, channel in zip(groups, channels, strict=True) if channel in listening}


def publish(group: str, html: str) -> None:
    """Send one message to every socket in `group` (from sync code: handlers, tasks)."""
    message = {"type": MESSAGE_TYPE, "html": html}
    server_loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if server_loop is not None and server_loop.is_running():
        # Called from a server's event loop (the embedded dispatcher, a consumer): publish
        # there, where an in-memory channel layer lives.
        async_to_sync(_channel_layer().group_send)(group, message)
        return
    # A plain process (run_dispatcher, a worker): one long-lived loop keeps the channel
    # layer's Redis connections open, instead of a new loop and connection per message.
    future = asyncio.run_coroutine_threadsafe(
        _channel_layer().group_send(group, message), _background_loop()
    )
    future.result(timeout=PUBLISH_TIMEOUT)


def _background_loop() -> asyncio.AbstractEventLoop:
    global _publisher_loop
    with _publisher_lock:
        if _publisher_loop is None or _publisher_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _publisher_loop = loop
    return _publisher_loop


class Deliveries:
    """The fragments for one event loop's sockets, sent in batches. A message to a group wakes
    all of this process's sockets in it at once; each hands its fragment here and is done, and
    one task reads the sessions of the whole batch (one thread hop, one cache round trip:
    websockets.session_user_ids; a session shared by several sockets is read once), then sends
    each fragment whose session still signs in its socket's user. Every answer comes from a
    read begun after the message arrived, and a socket's fragments go out in the order they
    came. A socket costs a list entry here, not a future of its own and two more wake-ups of
    its task: at 1,000 sockets those were as much of a web process's CPU as the sends."""

    def __init__(self) -> None:
        self._pending: list[tuple[LiveConsumer, str]] = []
        self._sender: asyncio.Task[None] | None = None
        self._slow: set[asyncio.Task[None]] = set()

    def add(self, consumer: "LiveConsumer", html: str) -> None:
        self._pending.append((consumer, html))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        try:
            await asyncio.sleep(0)  # the other sockets woken by the same message join in
            while self._pending:
                batch, self._pending = self._pending, []
                keys = {consumer.session_key for consumer, _ in batch if consumer.session_key}
                signed_in: dict[str, int | None] | None
                try:
                    signed_in = await websockets.session_user_ids(list(keys))
                except Exception:
                    logger.exception("Could not read the sessions of %s websockets", len(keys))
                    signed_in = None
                for consumer, html in batch:
                    self._start(consumer.deliver(html, signed_in))
        finally:
            self._sender = None

    def _start(self, delivery: Coroutine[Any, Any, None]) -> None:
        # Eagerly: a send that completes at once (the socket's buffer has room) costs no task
        # switch; one that must wait for a slow client goes on by itself, never holding up
        # the rest of the batch.
        task = asyncio.Task(delivery, loop=asyncio.get_running_loop(), eager_start=True)
        if not task.done():
            self._slow.add(task)
            task.add_done_callback(self._slow.discard)


_deliveries: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deliveries]" = (
    weakref.WeakKeyDictionary()
)


def deliveries() -> Deliveries:
    """This event loop's Deliveries (a server has one loop; tests start several)."""
    loop = asyncio.get_running_loop()
    found = _deliveries.get(loop)
    if found is None:
        found = _deliveries[loop] = Deliveries()
    return found


class LiveConsumer(AsyncWebsocketConsumer):
    """Joins the groups its user may watch, then forwards those groups' fragments.

    Subclasses implement `authorise(user)`, returning the group names or None. Anything else
    (anonymous, someone else's order, not a member) is refused before the handshake
    completes and logged. Connects are rate-limited per session (bucket
    "websocket_session"). Before each message is sent the session is read again: once it no
    longer signs in the same user (signed out, signed out everywhere, expired, password
    changed) the socket is closed with 4401 and receives nothing more. The socket is
    read-only: what the browser sends is ignored.
    """

    live_groups: tuple[str, ...] = ()
    user_id: int | None = None
    session_key: str | None = None
    counted_open = False

    async def __call__(self, scope, receive, send):
        # However the connection ends (closed by either side, the server shutting down), an
        # accepted socket stops counting as open in /metrics.
        try:
            return await super().__call__(scope, receive, send)
        finally:
            if self.counted_open:
                self.counted_open = False
                metrics.websocket_closed(type(self).__name__)

    async def accept(self, subprotocol=None, headers=None) -> None:
        await super().accept(subprotocol, headers)
        self.counted_open = True
        metrics.websocket_opened(type(self).__name__)

    async def authorise(self, user: "User") -> list[str] | None:
        """The groups the signed-in `user` may watch on this socket's path, or None."""
        raise NotImplementedError

    async def connect(self) -> None:
        try:
            await sync_to_async(ratelimit.hit)("websocket_session", self._rate_limit_key())
        except ratelimit.RateLimited as exc:
            logger.warning(
                "Refused websocket to %s: too many connects (retry in %s s)",
                self.scope.get("path"),
                exc.retry_after,
            )
            await self.close(code=websockets.CLOSE_TOO_MANY)
            return
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse("anonymous")
            return
        current_user_id.set(user.pk)
        # Channels' lazy proxy of the signed-in accounts.User.
        groups = await self.authorise(cast("User", user))
        if not groups:
            await self._refuse(f"user {user.pk}")
            return
        self.live_groups = tuple(groups)
        self.user_id = user.pk
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        for group in self.live_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def _refuse(self, who: str) -> None:
        logger.warning("Refused websocket subscription to %s by %s", self.scope.get("path"), who)
        await self.close(code=4403)

    async def disconnect(self, code: int) -> None:
        await self._leave_groups()

    async def _leave_groups(self) -> None:
        groups, self.live_groups = self.live_groups, ()
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        return None

    async def dispatch(self, message: dict) -> None:
        # Channels runs close_old_connections before every handler, in a hop to the one sync
        # thread: per socket and message, that serialises a fan-out to thousands of sockets. A
        # fragment touches the database only inside Deliveries' one hop per batch, which
        # closes stale connections itself (database_sync_to_async).
        if message["type"] == MESSAGE_TYPE:
            if self.user_id is not None:  # not closed
                deliveries().add(self, message["html"])
        else:
            await super().dispatch(message)

    async def deliver(self, html: str, signed_in: dict[str, int | None] | None) -> None:
        """Send `html` if this socket's session still signs in its user (`signed_in`: each
        session's user now, None when the sessions could not be read), else close it."""
        if self.user_id is None:  # closed since the fragment came
            return
        if signed_in is None:
            # Nothing is sent unchecked; the page reconnects and fetches its state.
            await self._close_live(websockets.CLOSE_INTERNAL_ERROR)
            return
        if self.session_key and signed_in.get(self.session_key) == self.user_id:
            with contextlib.suppress(OSError):  # gone: its own disconnect leaves the groups
                await self.send(text_data=html)
            return
        logger.info(
            "Closed websocket to %s: the session no longer signs in user %s",
            self.scope.get("path"),
            self.user_id,
        )
        await self._close_live(websockets.CLOSE_SIGNED_OUT)

    async def _close_live(self, code: int) -> None:
        self.user_id = None
        await self._leave_groups()
        await self.close(code=code)

    def _rate_limit_key(self) -> str:
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        return (
            f"session:{session_key}"
            if session_key
            else f"ip:{client_ip.scope_client_ip(self.scope)}"
        )
