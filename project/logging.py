"""Structured JSON logs: one object per line, with the request's id, client address and user,
and with secrets and personal data masked.

The request context comes from project.request_context, or from the record's `request` when a
line is written after the middleware has returned (Django's "Not Found: ..." lines for 4xx
responses are logged by the handler once every middleware is done).
"""

import json
import logging
import re

from project.request_context import current_client_ip, current_request_id, current_user_id

_MASKED = "[masked]"
# Paths that carry a secret: e-mail verification, password reset and invitation links.
_PATH_TOKENS = [
    (re.compile(r"(/verify/)(?!sent/|resend/)[^/\s?#\"']+"), rf"\1{_MASKED}"),
    (re.compile(r"(/reset/)[^/\s?#\"']+/[^/\s?#\"']+"), rf"\1{_MASKED}/{_MASKED}"),
    (re.compile(r"(/invitations/)(?!\d+/)[^/\s?#\"']+"), rf"\1{_MASKED}"),
    (re.compile(r"(/unlock/)[^/\s?#\"']+"), rf"\1{_MASKED}"),
]
# Names of secrets to mask (not secrets themselves).
_SECRET_NAMES = "|".join(
    [
        "password",
        "passwd",
        "secret",
        "token",
        r"api[_-]?key",
        r"access[_-]?key",
        "signature",
        "sig",
        "code",
        "cvc",
        "cvv",
        "otp",
        "sessionid",
        "csrftoken",
        "csrfmiddlewaretoken",
        "authorization",
    ]
)
_MASKS = [
    *_PATH_TOKENS,
    (re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), "[card]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {_MASKED}"),
    # key=value (query strings, form bodies, cookies) and "key": "value" (JSON)
    (re.compile(rf"(?i)((?:{_SECRET_NAMES})=)[^&\s;,\"']+"), rf"\1{_MASKED}"),
    (
        re.compile(rf"(?i)([\"'][\w-]*(?:{_SECRET_NAMES})[\w-]*[\"']\s*:\s*)[\"'][^\"']*[\"']"),
        rf'\1"{_MASKED}"',
    ),
    # JSON Web Tokens wherever they appear
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), _MASKED),
]


_CODE_FIELDS = {"route", "pattern"}


def _scoped(pattern: re.Pattern) -> str:
    """A mask's pattern as one branch of an alternation (a leading (?i) scoped to it)."""
    source = pattern.pattern
    return f"(?i:{source[4:]})" if source.startswith("(?i)") else f"(?:{source})"


# Whether any mask could apply: one scan instead of one substitution per mask, so the
# usual line (an access line's "GET /products/ 200") costs a few microseconds to check.
_ANY_MASK = re.compile("|".join(_scoped(pattern) for pattern, _ in _MASKS))


def mask(text: str) -> str:
    if not _ANY_MASK.search(text):
        return text
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


def mask_path(path: str) -> str:
    """A URL path with the secrets some links carry replaced by [masked]."""
    for pattern, replacement in _PATH_TOKENS:
        path = pattern.sub(replacement, path)
    return path


def _masked(value):
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


class RequestIdFilter(logging.Filter):
    """Adds request_id, client_ip and user_id to every record (the request's, when it has one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        request_id = getattr(request, "request_id", None)
        if request_id is not None:
            record.request_id = request_id
            record.client_ip = getattr(request, "client_ip", "-")
            record.user_id = getattr(request, "user_id_for_logs", None)
        else:
            record.request_id = current_request_id.get()
            record.client_ip = current_client_ip.get()
            record.user_id = current_user_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "user_id": getattr(record, "user_id", None),
            "client_ip": getattr(record, "client_ip", "-"),
            "message": mask(record.getMessage()),
        }
        for key in ("http", "csp", "websocket", "security"):
            value = getattr(record, key, None)
            if isinstance(value, dict):
                # Route names and URL patterns are code, not data: they stay readable.
                entry[key] = {
                    name: item if name in _CODE_FIELDS else _masked(item)
                    for name, item in value.items()
                }
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)
