from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class EventsConfig(AppConfig):
    name = "project.events"
    label = "events"
    verbose_name = "Domain events"

    def ready(self) -> None:
        # Every app's events.py registers its event types, so the dispatcher can rebuild
        # any stored event by name.
        from project.events import platform  # noqa: F401

        autodiscover_modules("events")

        from project import events
        from project.events import dispatcher

        events.add_wakeup(dispatcher.dispatch_on_commit)
