"""Websocket routes, served by project.asgi behind the session auth and origin checks.

Anything else (`/ws/orders/abc/`, `/ws/nope/`) is refused with close code 4404, never an
exception out of the router.
"""

from django.urls import path, re_path

from backoffice import consumers as backoffice_consumers
from project import websockets
from shop import consumers as shop_consumers

websocket_urlpatterns = [
    path("ws/orders/<int:order_id>/", shop_consumers.OrderConsumer.as_asgi()),
    path("ws/vendor/", backoffice_consumers.VendorConsumer.as_asgi()),
    re_path(
        r"",
        websockets.Refuse.as_asgi(code=websockets.CLOSE_NOT_FOUND, reason="path"),
    ),
]
