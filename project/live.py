"""Live pages: Channels groups, the consumer base and publishing fragments to them.

Groups are `order-<id>` (that order's shopper) and `vendor-<id>` (that vendor's members).
A message is HTML: top-level elements with ids that the htmx ws extension swaps out of band,
each rendered from the page's own partial and carrying `data-seq`. The channel layer
delivers at most once; the outbox is the record, and pages re-fetch their state on every
(re)connect, so a lost message only delays a page until its next event or reconnect.
"""

import asyncio
import logging
import threading
import weakref
from typing import TYPE_CHECKING, cast

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
    """Whether a socket anywhere is in `group` now, so that a fragment nobody would receive is
    not rendered (a vendor's costs tens of milliseconds of the dispatcher's CPU per event).

    On Redis Pub/Sub a web process subscribes to a group's channel while one of its sockets is
    in it, and PUBSUB NUMSUB counts those processes. A socket that joins after this answer
    loses nothing: a live page fetches its state once its socket is open (data-live-resync),
    after the change that raised the event committed. Other layers (the embedded default's
    in-memory one) cannot say: True."""
    layer = _channel_layer()
    if not isinstance(layer, RedisPubSubChannelLayer):
        return True
    # The layer's name for a group's channel (channels_redis.pubsub, _get_group_channel_name;
    # tests/integration/test_websockets_live.py checks it against a socket really joined).
    channel = f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}__group__{group}"
    try:
        # The primary: subscriptions are per server, and a replica has none.
        client = cache._cache.get_client(channel, write=True)  # type: ignore[attr-defined]
        [(_, subscribers)] = client.pubsub_numsub(channel)
    except Exception:  # noqa: BLE001 - Redis away: render, and let the publish fail and retry
        logger.warning("Could not count the listeners of %s", group, exc_info=True)
        return True
    return subscribers > 0


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


class SessionChecks:
    """The session reads of one event loop's sockets, coalesced. A message to a group wakes all
    of this process's sockets in it at once; they ask together, in one thread hop and one cache
    round trip (websockets.session_user_ids), and a session shared by several sockets is read
    once. Every answer still comes from a read begun after the message arrived."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[int | None]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def user_id(self, session_key: str) -> int | None:
        future = self._waiting.get(session_key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[session_key] = future
            if self._reader is None:
                self._reader = asyncio.create_task(self._read())
        # A socket that closes while waiting must not cancel the answer for the others.
        return await asyncio.shield(future)

    async def _read(self) -> None:
        try:
            await asyncio.sleep(0)  # the other sockets woken by the same message join in
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    found = await websockets.session_user_ids(list(batch))
                except Exception as exc:  # noqa: BLE001 - each waiting socket raises it
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for key, future in batch.items():
                        if not future.done():
                            future.set_result(found[key])
        finally:
            self._reader = None


_session_checks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionChecks]" = (
    weakref.WeakKeyDictionary()
)


def session_checks() -> SessionChecks:
    """This event loop's SessionChecks (a server has one loop; tests start several)."""
    loop = asyncio.get_running_loop()
    checks = _session_checks.get(loop)
    if checks is None:
        checks = _session_checks[loop] = SessionChecks()
    return checks


class LiveConsumer(AsyncWebsocketConsumer):
    """Joins the one group its user may watch, then forwards that group's fragments.

    Subclasses implement `authorise(user)`, returning the group name or None. Anything else
    (anonymous, someone else's order, not a member) is refused before the handshake
    completes and logged. Connects are rate-limited per session (bucket
    "websocket_session"). Before each message is sent the session is read again: once it no
    longer signs in the same user (signed out, signed out everywhere, expired, password
    changed) the socket is closed with 4401 and receives nothing more. The socket is
    read-only: what the browser sends is ignored.
    """

    group: str | None = None
    user_id: int | None = None
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

    async def authorise(self, user: "User") -> str | None:
        """The group the signed-in `user` may watch on this socket's path, or None."""
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
        group = await self.authorise(cast("User", user))
        if group is None:
            await self._refuse(f"user {user.pk}")
            return
        self.group = group
        self.user_id = user.pk
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def _refuse(self, who: str) -> None:
        logger.warning("Refused websocket subscription to %s by %s", self.scope.get("path"), who)
        await self.close(code=4403)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        return None

    async def dispatch(self, message: dict) -> None:
        # Channels runs close_old_connections before every handler, in a hop to the one sync
        # thread: per socket and message, that serialises a fan-out to thousands of sockets. A
        # fragment touches the database only inside SessionChecks' one hop per batch, which
        # closes stale connections itself (database_sync_to_async).
        if message["type"] == MESSAGE_TYPE:
            await self.live_fragment(message)
        else:
            await super().dispatch(message)

    async def live_fragment(self, message: dict) -> None:
        if not await self._still_signed_in():
            return
        await self.send(text_data=message["html"])

    def _rate_limit_key(self) -> str:
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        return (
            f"session:{session_key}"
            if session_key
            else f"ip:{client_ip.scope_client_ip(self.scope)}"
        )

    async def _still_signed_in(self) -> bool:
        if self.user_id is None:  # already closed
            return False
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key and await session_checks().user_id(session_key) == self.user_id:
            return True
        logger.info(
            "Closed websocket to %s: the session no longer signs in user %s",
            self.scope.get("path"),
            self.user_id,
        )
        self.user_id = None
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
        await self.close(code=websockets.CLOSE_SIGNED_OUT)
        return False
