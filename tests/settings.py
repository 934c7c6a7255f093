"""Test overlay: the production shape (PostgreSQL, Redis) with fast hashing and in-memory mail."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bazaar")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("CACHE_KEY_PREFIX", "bazaar-test")
os.environ.setdefault(
    "PRIVATE_FILES_ROOT", os.path.join(os.path.dirname(__file__), "..", "var", "test-private")
)

from project.settings import *  # noqa: E402, F403
from project.settings import DATABASES, TASKS  # noqa: E402

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
MEDIA_ROOT = BASE_DIR / "var" / "test-media"  # noqa: F405
SIMULATED_GATEWAY_LATENCY_MS = 0
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Flushing the database after transactional (browser, worker) tests truncates every table; the
# append-only audit table's trigger lets a TRUNCATE through only for a session that asks.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c bazaar.audit_allow_truncate=on"
