"""Websocket routes; the live-pages issue fills this in."""

websocket_urlpatterns: list = []
