"""Who and what the current request is, readable from logs, tasks, events and the audit log.

Set for each HTTP request by project.middleware (and for each websocket connect by
project.asgi): the request id, the client's address (project.client_ip), its user agent and
the signed-in user's id (None when anonymous).
"""

from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")
current_client_ip: ContextVar[str] = ContextVar("current_client_ip", default="-")
current_user_agent: ContextVar[str] = ContextVar("current_user_agent", default="")
current_user_id: ContextVar[int | None] = ContextVar("current_user_id", default=None)
