"""`Idempotency-Key` on API writes: a retried request with the same key, from the same
caller, to the same method and path, gets the first response again instead of doing the work
twice.

    @router.post("/things", summary="…", response={201: ThingOut, **errors.problems(…)})
    @idempotency.idempotent
    async def create_thing(request, payload: ThingIn): ...

The claim is a row of `IdempotencyRecord`, inserted in its own transaction before the work
starts (the unique (owner, key) constraint makes one request win). Then:
- the same key with the same request, answered: the stored answer, with `Idempotent-Replayed:
  true`;
- the same key with another body or query: 422 `idempotency-key-reused`;
- the same key while the first request is still running: 409 `idempotency-in-progress` with
  `Retry-After`; a claim older than API_IDEMPOTENCY_CLAIM_SECONDS belongs to a process that
  died, and the next request takes it over and does the work;
- successes and 4xx answers are stored; a 5xx (or an exception) releases the claim, so a
  retry does the work again. Records are purged API_IDEMPOTENCY_TTL_HOURS after their claim.

A request without the header is served as usual. Anonymous callers have nobody to scope a
key to, so their requests are served without it too.
"""

import copy
import datetime
import hashlib
import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from api import callers, ratelimits
from api.errors import ApiError
from api.models import IdempotencyRecord
from project.housekeeping import delete_in_batches

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# The answer's headers worth replaying (never cookies, rate-limit counters or request ids).
REPLAYED_HEADERS = ("Content-Type", "Location", "ETag", "Last-Modified", "Retry-After")
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


@dataclass(frozen=True)
class _Claim:
    record_id: int
    claimed_at: datetime.datetime


def scoped_key(method: str, path: str, key: str) -> str:
    """The stored key: the client's key within one method and path."""
    return hashlib.sha256(f"{method}\n{path}\n{key}".encode()).hexdigest()


def fingerprint(query_string: str, body: bytes) -> str:
    """What must match for a retry to be the same request: its query and body."""
    digest = hashlib.sha256()
    digest.update(query_string.encode())
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body or b""), status=record.status_code)
    for name, value in record.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def _in_progress() -> ApiError:
    return ApiError(
        409,
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency-in-progress",
        headers={"Retry-After": "1"},
    )


def _claim(*, owner: str, key: str, request_fingerprint: str) -> _Claim | HttpResponse:
    """Claim (owner, key) for this request, or answer it from the first request's record."""
    now = timezone.now()
    stale = now - datetime.timedelta(seconds=settings.API_IDEMPOTENCY_CLAIM_SECONDS)
    expired = now - datetime.timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS)
    with transaction.atomic():
        record, created = IdempotencyRecord.objects.get_or_create(
            owner=owner, key=key, defaults={"fingerprint": request_fingerprint}
        )
    if created:
        return _Claim(record_id=record.pk, claimed_at=record.created_at)
    outlived = record.created_at < expired  # kept past its time, not purged yet
    if record.fingerprint != request_fingerprint and not outlived:
        raise ApiError(
            422,
            "This Idempotency-Key was used for a different request; send a new key.",
            code="idempotency-key-reused",
            errors=[{"field": HEADER, "message": "Already used with another request body."}],
        )
    if record.completed_at is not None and not outlived:
        return _replay(record)
    if record.completed_at is None and record.created_at >= stale:
        raise _in_progress()
    # A claim whose process died, or a record past its time: take it over, unless another
    # request just did (the update is conditional on the claim we read).
    taken = IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).update(
        fingerprint=request_fingerprint,
        created_at=now,
        completed_at=None,
        status_code=None,
        response_body=None,
        response_headers={},
    )
    if not taken:
        raise _in_progress()
    if record.completed_at is None:
        logger.warning("Idempotency claim of %s taken over: its request died", owner)
    return _Claim(record_id=record.pk, claimed_at=now)


def _complete(claim: _Claim, response: HttpResponseBase) -> None:
    content = getattr(response, "content", b"")
    headers = {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)}
    IdempotencyRecord.objects.filter(pk=claim.record_id, created_at=claim.claimed_at).update(
        status_code=response.status_code,
        response_body=content,
        response_headers=headers,
        completed_at=timezone.now(),
    )


def _release(claim: _Claim) -> None:
    IdempotencyRecord.objects.filter(
        pk=claim.record_id, created_at=claim.claimed_at, completed_at__isnull=True
    ).delete()


def _operation(wrapper: Callable[..., Any], request: HttpRequest) -> Any:
    """The operation of `wrapper` bound to the API serving this request (the router keeps the
    unbound one on the function; api.openapi.BazaarApi puts itself on the request)."""
    operation = copy.copy(wrapper._ninja_operation)  # type: ignore[attr-defined]
    operation.api = request.ninja_api  # type: ignore[attr-defined]
    return operation


def _to_response(operation: Any, request: HttpRequest, result: Any) -> HttpResponse:
    """The view's result as django-ninja would answer it (the operation's response schema)."""
    return operation._result_to_response(
        request, result, operation.api.create_temporal_response(request)
    )


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Make a write endpoint honour `Idempotency-Key` (see the module docstring)."""
    if not inspect.iscoroutinefunction(view):
        raise TypeError(f"@idempotent needs an `async def` endpoint; {view.__name__} is not.")

    @wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        raw_key = request.headers.get(HEADER)
        owner = callers.caller_key(request)
        if raw_key is None or owner is None:
            return await view(request, *args, **kwargs)
        if not _VALID_KEY.match(raw_key):
            raise ApiError(
                422,
                "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.",
                code="invalid-idempotency-key",
                errors=[{"field": HEADER, "message": "1 to 255 printable ASCII characters."}],
            )
        claimed = await sync_to_async(_claim)(
            owner=owner,
            key=scoped_key(request.method or "", request.path, raw_key),
            request_fingerprint=fingerprint(request.META.get("QUERY_STRING", ""), request.body),
        )
        if isinstance(claimed, HttpResponse):
            ratelimits.add_headers(request, claimed)
            return claimed
        operation = _operation(wrapper, request)
        try:
            response = _to_response(operation, request, await view(request, *args, **kwargs))
        except Exception as exc:
            try:
                response = operation.api.on_exception(request, exc)
            except Exception:
                await sync_to_async(_release)(claimed)  # an unhandled error: a 500
                raise
        if response.status_code >= 500:
            await sync_to_async(_release)(claimed)
        else:
            await sync_to_async(_complete)(claimed, response)
        return response

    wrapper.idempotent = True  # type: ignore[attr-defined]  # read by the OpenAPI document
    return wrapper


def purge_expired_records(*, dry_run: bool = False) -> int:
    """Delete idempotency records claimed more than API_IDEMPOTENCY_TTL_HOURS ago."""
    cutoff = timezone.now() - datetime.timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS)
    return delete_in_batches(
        IdempotencyRecord.objects.filter(created_at__lt=cutoff), dry_run=dry_run
    )
