"""Run the event dispatcher: `manage.py run_dispatcher` (run one or more, anywhere)."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand

from project.events import dispatcher as event_dispatcher

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Deliver committed domain events to their handlers. Wakes on PostgreSQL "
        "NOTIFY (polling as a fallback); safe to run several at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="Deliver what is due, then exit (for cron jobs and tests).",
        )
        parser.add_argument(
            "--poll",
            type=float,
            default=None,
            help="Seconds between looks when idle (default EVENTS_POLL_SECONDS).",
        )
        parser.add_argument(
            "--handler-map",
            default=None,
            help="Dotted path of the handler map (default EVENTS_HANDLER_MAP); tests plug "
            "probe handlers in with it.",
        )

    def handle(self, *args, until_idle: bool, poll: float | None, handler_map, **options):
        dispatcher = event_dispatcher.Dispatcher(
            handler_map=event_dispatcher.load_handler_map(handler_map)
        )
        if until_idle:
            count = dispatcher.run_until_idle()
            self.stdout.write(f"Delivered {count} event(s).")
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        logger.info("Event dispatcher %s started", dispatcher.name)
        event_dispatcher.run_forever(
            dispatcher, stop=stop, waiter=event_dispatcher.Waiter(poll=poll)
        )
        logger.info("Event dispatcher %s stopped", dispatcher.name)
