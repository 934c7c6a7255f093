"""Websocket routes, served by project.asgi behind the session auth and origin checks.

Anything else (`/ws/orders/abc/`, `/ws/nope/`) is refused with close code 4404, never an
exception out of the router.
"""

from typing import Any

from django.urls import path, re_path

from backoffice import consumers as backoffice_consumers
from project import websockets
from shop import consumers as shop_consumers

# Channels routes ASGI apps with Django's path(), whose stubs expect views: hence the ignores
# (and the list's plain type, which channels-stubs' URLRouter would refuse otherwise).
websocket_urlpatterns: list[Any] = [
    path("ws/orders/<int:order_id>/", shop_consumers.OrderConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(
        r"^ws/vendor/(?:(?P<page>orders|dashboard)/)?$",
        backoffice_consumers.VendorConsumer.as_asgi(),  # type: ignore[arg-type]
    ),
    re_path(
        r"",
        websockets.Refuse.as_asgi(code=websockets.CLOSE_NOT_FOUND, reason="path"),  # type: ignore[arg-type]
    ),
]
