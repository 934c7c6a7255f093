"""`{% websocket_origin %}`: where this page opens its websockets, written before their path
(`ws-connect="{% websocket_origin %}/ws/vendor/"`). Empty (the page's own origin) unless
WEBSOCKET_PORT names the port another server serves them on, as under `make run`: then the
page's own host at that port, so that the session cookie, which is the host's, goes along."""

from django import template
from django.conf import settings
from django.http.request import split_domain_port

register = template.Library()


@register.simple_tag(takes_context=True)
def websocket_origin(context: template.Context) -> str:
    if not settings.WEBSOCKET_PORT:
        return ""
    request = context["request"]
    host, _port = split_domain_port(request.get_host())
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{host}:{settings.WEBSOCKET_PORT}"
