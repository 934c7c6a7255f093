"""Cross-cutting request middleware: request context and access log, HEAD without a body,
security headers."""

import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from project import client_ip as client_ips
from project.request_context import (
    current_client_ip,
    current_request_id,
    current_user_agent,
    current_user_id,
)

access_logger = logging.getLogger("bazaar.access")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
USER_AGENT_MAX_LENGTH = 512


class RequestIdMiddleware:
    """Tag each request with an id (the caller's X-Request-ID when sane, else a new one).

    It sets the request context (id, client address, user agent; the user id follows from
    RequestUserMiddleware) for the request, and writes one access line per request to the
    `bazaar.access` logger: route, method, masked path, status, duration, user, address, id.
    The id, address and user id also stay on the request (request.request_id, .client_ip,
    .user_id_for_logs), where project.logging finds them for lines Django writes after this
    middleware has returned (its 4xx "Not Found: ..." lines).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        address = client_ips.client_ip(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        request.client_ip = address  # type: ignore[attr-defined]
        request.user_id_for_logs = None  # type: ignore[attr-defined]
        user_agent = request.headers.get("User-Agent", "")[:USER_AGENT_MAX_LENGTH]
        tokens: list[tuple[ContextVar[Any], Token[Any]]] = [
            (current_request_id, current_request_id.set(request_id)),
            (current_client_ip, current_client_ip.set(address)),
            (current_user_agent, current_user_agent.set(user_agent)),
            (current_user_id, current_user_id.set(None)),
        ]
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            self._log(request, response, started)
        finally:
            for variable, token in reversed(tokens):
                variable.reset(token)
        return response

    def _log(self, request: HttpRequest, response: HttpResponse, started: float) -> None:
        match = getattr(request, "resolver_match", None)
        if request.user_id_for_logs is None:  # type: ignore[attr-defined]
            # Signed in during this request (the response has left SessionMiddleware, so
            # reading the user now changes no header).
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                request.user_id_for_logs = user.pk  # type: ignore[attr-defined]
        access_logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "request": request,
                "http": {
                    "route": match.view_name if match else None,
                    "pattern": match.route if match else None,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            },
        )


class HeadWithoutBodyMiddleware:
    """A HEAD answer carries GET's headers, Content-Length included, and no body (RFC 9110).
    Django renders the body as for GET and leaves dropping it to the server; gunicorn does,
    with a warning per response, so it is dropped here."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method == "HEAD":
            if response.streaming:
                response.streaming_content = []  # type: ignore[attr-defined]
            else:
                response.content = b""
        return response


class RequestUserMiddleware:
    """Put the signed-in user's id into project.request_context (after AuthenticationMiddleware).

    The user is looked up only when the request carries a session cookie, so anonymous
    pages do not read a session (nor vary on the cookie) just for the logs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user_id = None
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                user_id = user.pk
        request.user_id_for_logs = user_id  # type: ignore[attr-defined]
        token = current_user_id.set(user_id)
        try:
            return self.get_response(request)
        finally:
            current_user_id.reset(token)


def is_private(request: HttpRequest, response: HttpResponse) -> bool:
    """A page no shared cache or back/forward cache may keep: private paths, anything for a
    signed-in user, and any response that sets the session cookie."""
    if request.path.startswith(settings.PRIVATE_PATH_PREFIXES):
        return True
    if settings.SESSION_COOKIE_NAME in response.cookies:
        return True
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated)
    return False


class SecurityHeadersMiddleware:
    """Headers Django's SecurityMiddleware does not set: Cross-Origin-Resource-Policy,
    Permissions-Policy, Reporting-Endpoints (for the CSP's report-to), and
    `Cache-Control: no-store` on private pages. Sits outside SessionMiddleware so it sees
    the session cookie a response sets."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.reporting_endpoints = ", ".join(
            f'{name}="{url}"' for name, url in settings.REPORTING_ENDPOINTS.items()
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(
            "Cross-Origin-Resource-Policy", settings.CROSS_ORIGIN_RESOURCE_POLICY
        )
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        if self.reporting_endpoints:
            response.headers.setdefault("Reporting-Endpoints", self.reporting_endpoints)
        if is_private(request, response):
            directives = response.get("Cache-Control", "")
            if "no-store" not in directives:
                response["Cache-Control"] = "no-store"
        return response
