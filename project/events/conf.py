"""Event bus settings, each overridable in settings.py (see README's settings table)."""

from django.conf import settings

DEFAULTS = {
    # Dotted path of the {event name: [handler dotted paths]} map.
    "EVENTS_HANDLER_MAP": "project.event_handlers.HANDLERS",
    # A failing handler is retried this many times in all, then its event is parked.
    "EVENTS_MAX_ATTEMPTS": 5,
    # Backoff before retry n: base * 2**(n-1) seconds, jittered, capped at the maximum.
    "EVENTS_RETRY_BASE_SECONDS": 2.0,
    "EVENTS_RETRY_MAX_SECONDS": 300.0,
    # How long an idle dispatcher waits before looking again (NOTIFY wakes it sooner).
    "EVENTS_POLL_SECONDS": 1.0,
    # Run the dispatcher inside the ASGI web process (the embedded default).
    "EVENTS_EMBEDDED_DISPATCHER": False,
    # Deliver events in the recording process right after its commit, like Django's
    # ImmediateBackend for tasks: for tests that assert a service's reactions (emails).
    "EVENTS_DISPATCH_ON_COMMIT": False,
}


def get(name: str):
    return getattr(settings, name, DEFAULTS[name])
