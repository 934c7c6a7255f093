"""The 403 and 404 handlers: the shop's layout, or a plain page when the layout can't render.

Two things make a "not found" risky to render:

- Under ASGI, Django renders an error page on a thread of its own
  (`sync_to_async(response_for_exception, thread_sensitive=False)`), not the request's. That
  thread's database connection is never health-checked at a request's start nor returned
  to the pool at its end, so after a PostgreSQL restart it is dead, and while idle it holds
  one of the pool's few connections. The page therefore checks its connections first and
  gives them back after.
- Django turns an exception raised while rendering a 404 or 403 page into a 500, logs it
  nowhere and answers "Internal Server Error" as if the view had failed. The layout asks the
  database and the session for the header (cart badge, backoffice link, messages), so if
  they fail anyway, the failure is logged with its traceback and the visitor still gets the
  right status on the self-contained page that needs neither (like 500.html).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults

logger = logging.getLogger(__name__)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    with _checked_database_connections():
        try:
            return defaults.page_not_found(request, exception)
        except Exception:
            logger.exception(
                "The 404 page could not render in the shop's layout; sent the plain one"
            )
            return _plain(request, "errors/404_plain.html", status=404)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    with _checked_database_connections():
        try:
            return defaults.permission_denied(request, exception)
        except Exception:
            logger.exception(
                "The 403 page could not render in the shop's layout; sent the plain one"
            )
            return _plain(request, "errors/403_plain.html", status=403)


@contextmanager
def _checked_database_connections() -> Iterator[None]:
    # What Django does for the request's own thread at a request's start and end. A
    # connection inside a transaction (a test's, or a view's still open) is left alone.
    idle = [conn for conn in connections.all(initialized_only=True) if not conn.in_atomic_block]
    for conn in idle:
        conn.close_if_unusable_or_obsolete()
    try:
        yield
    finally:
        for conn in connections.all(initialized_only=True):
            if not conn.in_atomic_block:
                conn.close()


def _plain(request: HttpRequest, template_name: str, *, status: int) -> HttpResponse:
    # Rendered without the request: no context processor runs (no database, no session).
    body = loader.get_template(template_name).render({"path": request.path})
    return HttpResponse(body, status=status)
