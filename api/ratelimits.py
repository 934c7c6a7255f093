"""Rate limits of the API, counted in the shared cache (Redis in production) by
project.ratelimit: per signed-in caller (a person, whatever token they use; or one API key)
the `api_principal` limit, per client address for anonymous calls the `api_address` limit.

Every counted answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
(seconds until the window ends); past the limit the answer is 429 problem+json with
`Retry-After`. With the cache unreachable the API serves on, uncounted (project.ratelimit
logs it): an outage of Redis must not take the API down with it.
"""

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from ninja import NinjaAPI
from ninja.errors import Throttled

from api import callers
from api.auth import Principal
from project import client_ip, ratelimit

PRINCIPAL_BUCKET = "api_principal"
ADDRESS_BUCKET = "api_address"


@dataclass(frozen=True)
class Window:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends


def bucket_for(request: HttpRequest) -> tuple[str, str]:
    owner = callers.caller_key(request)
    if owner is not None:
        return PRINCIPAL_BUCKET, owner
    return ADDRESS_BUCKET, client_ip.client_ip(request)


def count(request: HttpRequest) -> int | None:
    """Count this request against its caller's limit (after authentication, so the caller is
    known). Returns the seconds to wait when it is past the limit, else None. Synchronous (a
    Redis round trip): api.openapi.BazaarApi calls it off the event loop."""
    who = getattr(request, "auth", None)
    if isinstance(who, Principal):  # the access log's user (there is no session here)
        request.user_id_for_logs = who.user.pk  # type: ignore[attr-defined]
    bucket, key = bucket_for(request)
    counted = ratelimit.attempt(bucket, key)
    if counted is None:
        return None
    attempts, limit, reset = counted
    request.api_rate_limit = Window(  # type: ignore[attr-defined]
        limit=limit, remaining=max(0, limit - attempts), reset=max(1, reset)
    )
    return max(1, reset) if attempts > limit else None


def refuse(api: NinjaAPI, request: HttpRequest, retry_after: int) -> HttpResponse:
    """The 429 answer (api.errors turns ninja's Throttled into problem+json)."""
    return api.on_exception(request, Throttled(wait=retry_after))


def add_headers(request: HttpRequest, response: HttpResponseBase) -> None:
    window = getattr(request, "api_rate_limit", None)
    if isinstance(window, Window):
        response["RateLimit-Limit"] = str(window.limit)
        response["RateLimit-Remaining"] = str(window.remaining)
        response["RateLimit-Reset"] = str(window.reset)
