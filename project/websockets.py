"""Websocket plumbing around the consumers: the Origin check, the request context of a
connection, the refusal of unknown paths, and whether a socket's session still holds.

    ProtocolTypeRouter({"websocket": WebsocketContext(OriginCheck(AuthMiddlewareStack(...)))})
"""

import logging
import time
import uuid
from collections.abc import Collection, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from accounts import sessions as account_sessions
from project import client_ip
from project import sessions as project_sessions
from project.request_context import (
    current_client_ip,
    current_request_id,
    current_user_agent,
    current_user_id,
)

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_SIGNED_OUT = 4401
CLOSE_TOO_MANY = 4429
# RFC 6455's "internal error": the server could not check the session before a message.
CLOSE_INTERNAL_ERROR = 1011
USER_AGENT_MAX_LENGTH = 512


def _header(scope: Mapping[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


class WebsocketContext:
    """Give each websocket connection a request id, the client's address and user agent in
    project.request_context, for every log line its consumer writes (refusals included)."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        request_id = uuid.uuid4().hex
        scope["request_id"] = request_id
        tokens: list[tuple[ContextVar[Any], Token[Any]]] = [
            (current_request_id, current_request_id.set(request_id)),
            (current_client_ip, current_client_ip.set(client_ip.scope_client_ip(scope))),
            (
                current_user_agent,
                current_user_agent.set(_header(scope, b"user-agent")[:USER_AGENT_MAX_LENGTH]),
            ),
            (current_user_id, current_user_id.set(None)),
        ]
        try:
            return await self.application(scope, receive, send)
        finally:
            for variable, token in reversed(tokens):
                variable.reset(token)


def allowed_origins() -> set[str]:
    return {origin.rstrip("/").lower() for origin in settings.WEBSOCKET_ALLOWED_ORIGINS}


class OriginCheck:
    """Accept a websocket only from a page of this site: its Origin header must equal one of
    settings.WEBSOCKET_ALLOWED_ORIGINS exactly (scheme, host and port), never just the host."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin").rstrip("/").lower()
        if origin and origin in allowed_origins():
            return await self.application(scope, receive, send)
        return await Refuse.as_asgi(code=CLOSE_FORBIDDEN, reason="origin")(scope, receive, send)


class Refuse(AsyncWebsocketConsumer):
    """Close the handshake with `code`, logging why (a foreign origin, an unknown path)."""

    def __init__(self, *, code: int = CLOSE_FORBIDDEN, reason: str = "refused") -> None:
        super().__init__()
        self.code = code
        self.reason = reason

    async def connect(self) -> None:
        origin = _header(self.scope, b"origin") or "none"
        logger.warning(
            "Refused websocket to %s (%s; origin %s)",
            self.scope.get("path"),
            "unknown path" if self.reason == "path" else f"{self.reason} not allowed",
            origin,
        )
        await self.close(code=self.code)


@database_sync_to_async
def session_user_ids(session_keys: Collection[str]) -> dict[str, int | None]:
    """For each session key, the id of the user the session signs in right now (None: signed
    out, expired, or no longer valid, e.g. after a password change or "sign out everywhere"),
    from a fresh read of the session store: all of them in one cache round trip. Django's own
    check (auth.get_user) accepts a user once per call; that user's other sessions are accepted
    only with the same backend and auth hash, and anything else goes through auth.get_user
    again. Then each session's lifetimes (accounts.sessions: absolute and idle, as the HTTP
    side enforces them)."""
    found = project_sessions.read_many(key for key in session_keys if key)
    accepted: dict[tuple[Any, str], _Accepted] = {}  # by (user id, backend)
    now = time.time()
    return {
        key: _signed_in_user_id(key, found[key], accepted, now) if key else None
        for key in session_keys
    }


@dataclass(frozen=True)
class _Accepted:
    user: Any
    auth_hash: str
    lifetime: account_sessions.Lifetime


def _signed_in_user_id(
    key: str, data: dict | None, accepted: dict[tuple[Any, str], _Accepted], now: float
) -> int | None:
    # The cached data as read, or a store that reads the database (not in the cache).
    session: Any = data if data is not None else project_sessions.SessionStore(key)
    try:
        identity = (session[auth.SESSION_KEY], session[auth.BACKEND_SESSION_KEY])
    except KeyError:
        return None
    known = accepted.get(identity)
    if known is None or not constant_time_compare(
        session.get(auth.HASH_SESSION_KEY) or "", known.auth_hash
    ):
        request = HttpRequest()
        request.session = session if data is None else project_sessions.store_with(key, data)
        user = auth.get_user(request)
        if not user.is_authenticated:
            return None
        known = accepted[identity] = _Accepted(
            user, user.get_session_auth_hash(), account_sessions.lifetime_for(user=user)
        )
    signed_in_at = session.get(account_sessions.SIGNED_IN_AT_KEY, now)
    last_seen = session.get(account_sessions.LAST_SEEN_KEY, now)
    if now - signed_in_at > known.lifetime.max_age or now - last_seen > known.lifetime.idle_timeout:
        return None
    return known.user.pk
