import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from project.request_context import (
    current_client_ip,
    current_request_id,
    current_user_agent,
    current_user_id,
)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
USER_AGENT_MAX_LENGTH = 512


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "-"


class RequestIdMiddleware:
    """Tag each request with an id (the caller's X-Request-ID when sane, else a new one).

    Also sets the client address and user agent in project.request_context for the request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        client_ip = _client_ip(request)
        request.client_ip = client_ip  # type: ignore[attr-defined]
        tokens = [
            (current_request_id, current_request_id.set(request_id)),
            (current_client_ip, current_client_ip.set(client_ip)),
            (
                current_user_agent,
                current_user_agent.set(
                    request.headers.get("User-Agent", "")[:USER_AGENT_MAX_LENGTH]
                ),
            ),
            (current_user_id, current_user_id.set(None)),
        ]
        try:
            response = self.get_response(request)
        finally:
            for variable, token in reversed(tokens):
                variable.reset(token)
        response["X-Request-ID"] = request_id
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
        token = current_user_id.set(user_id)
        try:
            return self.get_response(request)
        finally:
            current_user_id.reset(token)
