"""Every API error is RFC 9457 problem+json: `type`, `title`, `status`, `detail`, and for bad
input `errors`, one entry per field (`{"field": "quantity", "message": "…"}`).

Views raise `ApiError` (or a `DomainError` from a service, which becomes a 409 with the
service's code and message); `install` maps Django's and django-ninja's own exceptions the
same way, so a client parses one shape whatever went wrong.
"""

import math
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import (
    AuthenticationError,
    AuthorizationError,
    HttpError,
    Throttled,
    ValidationError,
)

from project.errors import DomainError
from project.ratelimit import RateLimited, too_many_message

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://bazaar.example/problems/"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    422: "Invalid input",
    428: "Precondition required",
    429: "Too many requests",
}


class ApiError(Exception):
    """An answer other than success: `status`, a stable `code` (the problem type's last part)
    and a `detail` safe to show; `errors` lists field errors, `headers` extra headers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        errors: Iterable[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or TITLES.get(status, "error").lower().replace(" ", "-")
        self.errors = list(errors)
        self.headers = headers or {}


INVALID_INPUT = "Some fields are missing or invalid."


def invalid_input(errors: Iterable[dict[str, str]], *, detail: str = INVALID_INPUT) -> ApiError:
    """A 422 with field errors found past the schema (a form's rules, a lookup, a service's
    refusal), shaped like the ones django-ninja's validation gives."""
    return ApiError(422, detail, code="invalid-input", errors=errors)


def problem(
    request: HttpRequest,
    status: int,
    detail: str,
    *,
    code: str,
    errors: Iterable[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    from api.main import api  # the renderer is the API's own (one JSON encoder for all)

    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    errors = list(errors)
    if errors:
        body["errors"] = errors
    response = api.create_response(request, body, status=status)
    response["Content-Type"] = PROBLEM_CONTENT_TYPE
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def field_errors(validation: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as one entry per field: the dotted path inside the body or query."""
    entries = []
    for error in validation.errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
        # ninja nests the body under the parameter's name ("payload"); the client never saw it.
        if location and location[0] == "payload":
            location = location[1:]
        entries.append({"field": ".".join(location) or "__all__", "message": error["msg"]})
    return entries


def install(api: NinjaAPI) -> None:
    """Answer every error of `api` as problem+json."""

    @api.exception_handler(ApiError)
    def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return problem(
            request, exc.status, exc.detail, code=exc.code, errors=exc.errors, headers=exc.headers
        )

    @api.exception_handler(ValidationError)
    def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return problem(request, 422, INVALID_INPUT, code="invalid-input", errors=field_errors(exc))

    @api.exception_handler(AuthenticationError)
    def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return problem(
            request,
            401,
            "Send a valid access token or API key: Authorization: Bearer <token>.",
            code="not-authenticated",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )

    @api.exception_handler(AuthorizationError)
    @api.exception_handler(PermissionDenied)
    def on_forbidden(request: HttpRequest, exc: Exception) -> HttpResponse:
        detail = str(exc) or "You may not do this."
        if isinstance(exc, AuthorizationError):
            detail = exc.message if isinstance(exc.message, str) else "You may not do this."
        return problem(request, 403, detail, code="forbidden")

    @api.exception_handler(Http404)
    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem(request, 404, "No such resource, or not yours to see.", code="not-found")

    @api.exception_handler(DomainError)
    def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        return problem(request, 409, exc.message, code=exc.code.replace("_", "-"))

    @api.exception_handler(RateLimited)
    def on_rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
        return problem(
            request,
            429,
            exc.message,
            code="rate-limited",
            headers={"Retry-After": str(exc.retry_after)},
        )

    @api.exception_handler(Throttled)
    def on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        # api.ratelimits' refusal; ninja adds Retry-After (the seconds left in the window).
        retry_after = max(1, math.ceil(exc.wait or 1))
        return problem(
            request,
            429,
            too_many_message(retry_after).replace("attempts", "requests"),
            code="rate-limited",
            headers={"Retry-After": str(retry_after)},
        )

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return problem(request, exc.status_code, str(exc.message), code=f"http-{exc.status_code}")


class FieldError(Schema):
    field: str  # the dotted path in the body or query ("lines.0.quantity"), or a header's name
    message: str


class Problem(Schema):
    """The problem+json body, for the OpenAPI document (responses are built by `problem`);
    `errors` is there for bad input only."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] = []


def problems(*statuses: int) -> dict[int, type[Problem]]:
    """The error answers an operation declares beside its success:
    `response={200: Out, **problems(401, 403, 404)}`."""
    return dict.fromkeys(statuses, Problem)
