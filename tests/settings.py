"""Test overlay: the production shape (PostgreSQL, Redis) with fast hashing and in-memory mail."""

import os
from urllib.parse import urlsplit

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("CACHE_KEY_PREFIX", "bazaar-test")

REDIS_DATABASES = int(os.environ.get("REDIS_DATABASES", "16"))  # the server's `databases`


def worker_redis_url(url: str, worker: int) -> str:
    """REDIS_URL's database number plus the worker's (redis://host:6379/9 → /10 for gw1)."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + worker
    if number >= REDIS_DATABASES:
        raise RuntimeError(
            f"pytest-xdist worker gw{worker} would use Redis database {number} of {url}; "
            f"set REDIS_URL to a database number below {REDIS_DATABASES - worker}."
        )
    return parts._replace(path=f"/{number}").geturl()


# Under pytest-xdist (`make test` runs workers gw0, gw1, …) each worker owns everything the
# tests share: pytest-django names its test database test_<name>_gw<N>; here it gets its own
# Redis database (REDIS_URL's number + N: cache, sessions, rate limits, channel layer, and the
# FLUSHDB of cache.clear()), its own key and channel prefix, and its own var/ folder (media,
# private files, the simulated gateway's ledger, backups). The processes the tests start
# inherit this environment; BAZAAR_TEST_WORKER says it is already done (their REDIS_URL is the
# worker's).
_VAR = os.path.join(os.path.dirname(__file__), "..", "var")
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and os.environ.get("BAZAAR_TEST_WORKER") != _worker:
    os.environ["BAZAAR_TEST_WORKER"] = _worker
    os.environ["REDIS_URL"] = worker_redis_url(os.environ["REDIS_URL"], int(_worker[2:]))
    # Pub/Sub channels belong to the Redis server, not to a database: the channel layer's
    # prefix keeps one worker's live groups (order-1, vendor-1) from another's.
    os.environ["CACHE_KEY_PREFIX"] = f"{os.environ['CACHE_KEY_PREFIX']}-{_worker}"
    os.environ["BAZAAR_VAR_DIR"] = os.path.join(
        os.environ.get("BAZAAR_VAR_DIR", _VAR), f"test-{_worker}"
    )
os.environ.setdefault(
    "PRIVATE_FILES_ROOT", os.path.join(os.environ.get("BAZAAR_VAR_DIR", _VAR), "test-private")
)

from project.settings import *  # noqa: E402, F403
from project.settings import DATABASES, TASKS, VAR_DIR  # noqa: E402

if DATABASES["default"]["ENGINE"] != "project.db.backends.postgresql":
    raise RuntimeError(
        "The test suite runs on PostgreSQL only; set DATABASE_URL to a postgres:// URL."
    )

# The general suite runs tasks inline (Django's immediate backend); the background tests
# switch to the Django-Q2 backend and start real run_worker processes.
TASKS = {
    "default": {**TASKS["default"], "BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}
}
# Events are delivered in the recording process right after its commit (like the immediate
# tasks backend), so tests see a service's reactions; the bus's own tests switch it off.
EVENTS_DISPATCH_ON_COMMIT = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
MEDIA_ROOT = VAR_DIR / "test-media"
SIMULATED_GATEWAY_LATENCY_MS = 0
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Flushing the database after transactional (browser, worker) tests truncates every table; the
# append-only audit table's trigger lets a TRUNCATE through only for a session that asks.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c bazaar.audit_allow_truncate=on"
