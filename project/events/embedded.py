"""The dispatcher inside the ASGI web process (the embedded default).

With the in-memory channel layer only the web process can reach its websockets, so the
dispatcher runs there, as a task on the server's event loop: the database work runs in a
worker thread, and the handlers' `group_send` calls hop back onto this loop.
"""

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from django.db import connections

from project import events
from project.events import conf
from project.events import dispatcher as event_dispatcher

logger = logging.getLogger(__name__)


async def run() -> None:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def wake_up() -> None:
        loop.call_soon_threadsafe(wake.set)

    dispatcher = event_dispatcher.Dispatcher()

    def drain() -> int:
        try:
            return dispatcher.run_until_idle()
        finally:
            connections.close_all()

    events.add_wakeup(wake_up)
    logger.info("Embedded event dispatcher started")
    try:
        while True:
            wake.clear()
            try:
                await sync_to_async(drain, thread_sensitive=False)()
            except Exception:
                logger.exception("Embedded dispatcher failed; retrying shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=float(conf.get("EVENTS_POLL_SECONDS")))
    finally:
        events.remove_wakeup(wake_up)


async def lifespan(scope, receive, send) -> None:
    """ASGI lifespan app: starts the embedded dispatcher when EVENTS_EMBEDDED_DISPATCHER."""
    task: asyncio.Task | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if conf.get("EVENTS_EMBEDDED_DISPATCHER"):
                task = asyncio.create_task(run())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await send({"type": "lifespan.shutdown.complete"})
            return
