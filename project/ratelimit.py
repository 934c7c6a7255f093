"""Rate limits on the shared cache: every web process, worker and consumer counts in one place.

A bucket names what is limited ("login_address", "password_reset_email", ...) and a key says
whose attempts they are (an address, a user id, an email; keys are hashed, so no personal data
sits in the cache). A window starts at a key's first attempt and lasts `window` seconds; the
`limit`+1-th attempt inside it raises RateLimited, whose `retry_after` is the time left.

On Redis (the production shape) one attempt is one atomic script (INCR, and EXPIRE when the
window starts), so concurrent processes never lose a count and a window always ends. On the
local-memory cache (the embedded default, one process) add+incr does the same job.

Limits live in settings.RATE_LIMITS ({bucket: {"limit": n, "window": seconds}}); `hit` and
`peek` read them when a caller gives no limit/window of its own. If the cache is unreachable
the limiter lets the attempt through and logs a warning: an outage of Redis must not sign
everyone out of the shop (passwords, second factors and CSRF still apply).
"""

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)

# KEYS[1] the counter. ARGV[1] the window. Returns {count, seconds left in the window}.
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RateLimited(Exception):  # noqa: N818 - the contract's name
    """Too many attempts; `message` is safe to show, `retry_after` is in seconds."""

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        self.message = message or too_many_message(self.retry_after)
        super().__init__(self.message)


def too_many_message(retry_after: int) -> str:
    if retry_after < 60:
        seconds = max(1, int(retry_after))
        return f"Too many attempts. Try again in {seconds} second{'s' if seconds != 1 else ''}."
    minutes = math.ceil(retry_after / 60)
    return f"Too many attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


def rule(bucket: str) -> tuple[int, int]:
    """(limit, window) configured for a bucket in settings.RATE_LIMITS."""
    try:
        configured = settings.RATE_LIMITS[bucket]
    except KeyError:
        raise KeyError(f"No rate limit named {bucket!r} in settings.RATE_LIMITS") from None
    return int(configured["limit"]), int(configured["window"])


def _cache_key(bucket: str, key: str) -> str:
    digest = hashlib.sha256(str(key).strip().lower().encode()).hexdigest()[:32]
    return f"rl:{bucket}:{digest}"


def _limits(bucket: str, limit: int | None, window: int | None) -> tuple[int, int]:
    if limit is None or window is None:
        configured_limit, configured_window = rule(bucket)
        limit = configured_limit if limit is None else limit
        window = configured_window if window is None else window
    return int(limit), max(1, int(window))


def _cache():
    # The backend itself: django.core.cache.cache is a proxy, never an instance of RedisCache.
    return caches["default"]


def _redis_hit(name: str, window: int) -> tuple[int, int]:
    cache = _cache()
    full_key = cache.make_and_validate_key(name)
    client = cache._cache.get_client(full_key, write=True)
    count, ttl = client.eval(_HIT_SCRIPT, 1, full_key, window)
    return int(count), int(ttl)


def _local_hit(name: str, window: int) -> tuple[int, int]:
    cache = _cache()
    deadline_key = f"{name}:until"
    now = time.time()
    if cache.add(name, 1, timeout=window):
        cache.set(deadline_key, now + window, timeout=window)
        return 1, window
    try:
        count = cache.incr(name)
    except ValueError:  # the window ended between add and incr
        cache.set(name, 1, timeout=window)
        cache.set(deadline_key, now + window, timeout=window)
        return 1, window
    deadline = cache.get(deadline_key) or now + window
    return count, max(1, math.ceil(deadline - now))


def _count(name: str) -> tuple[int, int]:
    """(count, seconds left) without counting."""
    cache = _cache()
    if isinstance(cache, RedisCache):
        full_key = cache.make_and_validate_key(name)
        client = cache._cache.get_client(full_key)
        pipeline = client.pipeline(transaction=False)
        pipeline.get(full_key)
        pipeline.ttl(full_key)
        raw, ttl = pipeline.execute()
        return (int(raw) if raw is not None else 0), max(0, int(ttl))
    count = cache.get(name) or 0
    deadline = cache.get(f"{name}:until") or time.time()
    return int(count), max(0, math.ceil(deadline - time.time()))


def attempt(
    bucket: str, key: str, *, limit: int | None = None, window: int | None = None
) -> tuple[int, int, int] | None:
    """Count one attempt without refusing it: (count so far, limit, seconds left in the
    window), or None when the cache is unreachable and nothing was counted (logged)."""
    limit, window = _limits(bucket, limit, window)
    name = _cache_key(bucket, key)
    try:
        if isinstance(_cache(), RedisCache):
            count, ttl = _redis_hit(name, window)
        else:
            count, ttl = _local_hit(name, window)
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        logger.warning("Rate limit %s not counted: cache unavailable (%s)", bucket, exc)
        return None
    return count, limit, ttl


def hit(bucket: str, key: str, *, limit: int | None = None, window: int | None = None) -> int:
    """Count one attempt; raise RateLimited if this makes more than `limit` in the window.

    Returns the count so far (0 when the cache is unreachable and nothing was counted).
    """
    counted = attempt(bucket, key, limit=limit, window=window)
    if counted is None:
        return 0
    count, limit, ttl = counted
    if count > limit:
        raise RateLimited(ttl)
    return count


def peek(bucket: str, key: str, *, limit: int | None = None, window: int | None = None) -> None:
    """Raise RateLimited if the limit is already used up (the next hit would be refused)."""
    limit, window = _limits(bucket, limit, window)
    try:
        count, ttl = _count(_cache_key(bucket, key))
    except Exception as exc:  # noqa: BLE001
        logger.warning("Rate limit %s not checked: cache unavailable (%s)", bucket, exc)
        return
    if count >= limit:
        raise RateLimited(ttl or window)


def count(bucket: str, key: str) -> int:
    """Attempts counted in the current window (0 when none, or when the cache is away)."""
    try:
        return _count(_cache_key(bucket, key))[0]
    except Exception:  # noqa: BLE001
        return 0


def reset(bucket: str, key: str) -> None:
    name = _cache_key(bucket, key)
    try:
        _cache().delete_many([name, f"{name}:until"])
    except Exception as exc:  # noqa: BLE001
        logger.warning("Rate limit %s not reset: cache unavailable (%s)", bucket, exc)


def refuse(response: HttpResponse, exc: RateLimited) -> HttpResponse:
    """Make a page that already shows `exc.message` (e.g. a form's error) the 429 answer."""
    response.status_code = 429
    response["Retry-After"] = str(exc.retry_after)
    return response


def _wants_html(request: HttpRequest) -> bool:
    if getattr(request, "htmx", False) or request.headers.get("HX-Request"):
        return False
    accept = request.headers.get("Accept", "")
    # Browsers always ask for text/html; curl and scripts send */* or nothing HTML-ish.
    return accept == "" or "text/html" in accept


def too_many_requests(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    """429 with Retry-After: a page in the shop's layout for browsers, short text otherwise."""
    accept = request.headers.get("Accept", "")
    if "application/json" in accept or request.path.startswith("/api/"):
        body = {"detail": exc.message, "retry_after": exc.retry_after}
        response: HttpResponse = JsonResponse(body, status=429)
    elif _wants_html(request):
        context = {"message": exc.message, "retry_after": exc.retry_after}
        response = render(request, "errors/429.html", context, status=429)
    else:
        response = HttpResponse(exc.message + "\n", status=429, content_type="text/plain")
    response["Retry-After"] = str(exc.retry_after)
    return response
