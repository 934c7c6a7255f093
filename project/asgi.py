"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets must come from a page of this site (project.websockets.OriginCheck: the full
origin, scheme, host and port), authenticate from the session cookie, and carry a request
id and the client's address in their log lines (project.websockets.WebsocketContext).
The lifespan protocol starts the embedded event dispatcher when EVENTS_EMBEDDED_DISPATCHER
is on (the default without Redis: the in-memory channel layer only reaches this process).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from project import websockets  # noqa: E402
from project.events import embedded  # noqa: E402
from project.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websockets.WebsocketContext(
            websockets.OriginCheck(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
        "lifespan": embedded.lifespan,
    }
)
