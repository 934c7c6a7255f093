"""The id of the request being served, readable from logs, tasks and events."""

from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")
