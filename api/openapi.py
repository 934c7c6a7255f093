"""The API object's class: django-ninja's NinjaAPI plus what every answer and the OpenAPI
document share: the caller's rate-limit headers on each answer (api.ratelimits), and the
`Idempotency-Key` header declared on the operations that honour it (api.idempotency)."""

from http import HTTPStatus
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.openapi.schema import REF_TEMPLATE, OpenAPISchema
from ninja.operation import Operation
from ninja.schema import NinjaGenerateJsonSchema

from api import idempotency, ratelimits
from api.errors import PROBLEM_CONTENT_TYPE, Problem

IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": idempotency.HEADER,
    "required": False,
    "description": (
        "A unique key per intended write (e.g. a UUID). A retry with the same key and body "
        "gets the first answer again, marked `Idempotent-Replayed: true`; keys are kept 24 h."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


PROBLEM_REF = "#/components/schemas/Problem"


def _declares_problem(model: Any) -> bool:
    # ninja wraps each declared schema in a model whose one field, "response", is it.
    field = getattr(model, "model_fields", {}).get("response")
    return field is not None and field.annotation is Problem


def _idempotent(operation: Operation) -> bool:
    return bool(getattr(operation.view_func, "idempotent", False))


class Schema(OpenAPISchema):
    """ninja's document, plus: problem answers typed application/problem+json; 429 declared on
    every throttled operation, 409 and 422 on idempotent ones (api.idempotency answers them
    whatever the endpoint declares)."""

    def operation_details(self, operation: Operation) -> dict[str, Any]:
        details = super().operation_details(operation)
        if _idempotent(operation):
            details["parameters"] = [*details.get("parameters", []), IDEMPOTENCY_PARAMETER]
        return details

    def responses(self, operation: Operation) -> dict[int, Any]:
        result = super().responses(operation)
        statuses = {
            status
            for status, model in operation.response_models.items()
            if _declares_problem(model)
        }
        if getattr(self.api, "rate_limited", False):
            statuses.add(429)
        if _idempotent(operation):
            statuses.update((409, 422))
        problem = Problem.model_json_schema(
            ref_template=REF_TEMPLATE,
            schema_generator=NinjaGenerateJsonSchema,
            mode="serialization",
        )
        self.add_schema_definitions({**problem.pop("$defs", {}), "Problem": problem})
        for status in sorted(statuses):
            result[status] = {
                "description": HTTPStatus(status).phrase,
                "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
            }
        return result


def _rate_limit(operation: Operation) -> None:
    """Count each call of `operation` once its caller is authenticated (api.ratelimits): its
    checks (authentication) then the count, off the event loop for an async operation, so a
    slow Redis never stalls the other requests of the process."""
    if getattr(operation, "rate_limited", False):
        return
    checks = operation._run_checks

    if operation.is_async:

        async def run_checks(request: HttpRequest) -> HttpResponse | None:
            error = await checks(request)  # type: ignore[misc]
            if error:
                return error
            retry_after = await sync_to_async(ratelimits.count)(request)
            return (
                None
                if retry_after is None
                else ratelimits.refuse(operation.api, request, retry_after)
            )

    else:

        def run_checks(request: HttpRequest) -> HttpResponse | None:  # type: ignore[misc]
            error = checks(request)
            if error:
                return error
            retry_after = ratelimits.count(request)
            return (
                None
                if retry_after is None
                else ratelimits.refuse(operation.api, request, retry_after)
            )

    operation._run_checks = run_checks  # type: ignore[method-assign,assignment]
    operation.rate_limited = True  # type: ignore[attr-defined]


class BazaarApi(NinjaAPI):
    """`rate_limited=True`: every operation counts against its caller's limit."""

    def __init__(self, *args: Any, rate_limited: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limited = rate_limited
        self._schemas: dict[str, OpenAPISchema] = {}

    def _get_bound_routers(self) -> Any:
        bound_routers = super()._get_bound_routers()
        if self.rate_limited:
            for bound in bound_routers:
                for path_view in bound.path_operations.values():
                    for operation in path_view.operations:
                        _rate_limit(operation)
        return bound_routers

    def create_temporal_response(self, request: HttpRequest) -> HttpResponse:
        # Called as an operation starts: the idempotency wrapper answers through this API.
        request.ninja_api = self  # type: ignore[attr-defined]
        return super().create_temporal_response(request)

    def create_response(
        self,
        request: HttpRequest,
        data: Any,
        *,
        status: int | None = None,
        temporal_response: HttpResponse | None = None,
    ) -> HttpResponse:
        response = super().create_response(
            request, data, status=status, temporal_response=temporal_response
        )
        ratelimits.add_headers(request, response)
        return response

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        # Building the schema walks every operation and model: about half a second, which
        # django-ninja would spend on every /openapi.json request. It is fixed by the code,
        # so each process builds it once.
        if path_prefix not in self._schemas:
            self._schemas[path_prefix] = Schema(self, path_prefix)
        return self._schemas[path_prefix]
