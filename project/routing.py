"""Websocket routes, served by project.asgi behind the session auth and origin checks."""

from django.urls import path

from backoffice import consumers as backoffice_consumers
from shop import consumers as shop_consumers

websocket_urlpatterns = [
    path("ws/orders/<int:order_id>/", shop_consumers.OrderConsumer.as_asgi()),
    path("ws/vendor/", backoffice_consumers.VendorConsumer.as_asgi()),
]
