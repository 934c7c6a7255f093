"""Bazaar settings, driven by environment variables.

With no variables set this is the embedded default: a SQLite file under var/,
local-memory cache, in-memory channel layer, Django-Q2 on the ORM broker and
emails written to var/mail/. Setting DATABASE_URL / REDIS_URL (or REDIS_SENTINELS)
switches to the production shape; BAZAAR_MODE=production additionally turns on the transport
security settings and refuses to start without SECRET_KEY and ALLOWED_HOSTS.
"""

import hashlib
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BAZAAR_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def required(name: str) -> str:
    value = env(name)
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when BAZAAR_MODE=production.")
    return value


PRODUCTION = env("BAZAAR_MODE", "development") == "production"

if PRODUCTION:
    SECRET_KEY = required("SECRET_KEY")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or [required("ALLOWED_HOSTS")]
    # Mail must leave the building: verification, password reset and order emails.
    required("EMAIL_HOST")
    DEBUG = False
else:
    SECRET_KEY = env("SECRET_KEY", "insecure-development-key-change-me-0123456789abcdef")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
    DEBUG = env_bool("DJANGO_DEBUG", True)

CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # The admin behind the shop's sign-in and a verified second factor (accounts.admin_site).
    "accounts.admin_apps.BazaarAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Full-text search fields and indexes (the catalogue's search, docs/search.md).
    "django.contrib.postgres",
    "django_htmx",
    "channels",
    "django_q",
    "project",
    "project.events",
    "project.background",
    "project.audit",
    "accounts",
    "shop",
    "backoffice",
    # The JSON API (/api/v1/) and its docs pages' templates and assets.
    "ninja",
    "api",
    # Webhooks to vendors' own systems (docs/webhooks.md).
    "webhooks",
]

MIDDLEWARE = [
    # First, so a request's count and latency include every other middleware.
    "project.metrics.RequestMetricsMiddleware",
    "project.middleware.RequestIdMiddleware",
    # Outside CommonMiddleware, which sets Content-Length from the body this one drops.
    "project.middleware.HeadWithoutBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "project.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "project.middleware.RequestUserMiddleware",
    "accounts.ratelimit.RememberSignedInBrowserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.cart_summary",
                "backoffice.context_processors.backoffice_link",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# Two roles in production (docs/database-security.md): DATABASE_URL is the app role every
# process connects as (not the tables' owner, not superuser, not BYPASSRLS, so row-level
# security binds it); DATABASE_MIGRATE_URL is the owner role, used instead by the commands
# that change the schema. With only DATABASE_URL, that one role does both.
DATABASE_URL = env("DATABASE_URL")
DATABASE_MIGRATE_URL = env("DATABASE_MIGRATE_URL")
# DATABASE_URL leads to PgBouncer in transaction pooling mode (docs/pgbouncer.md): each of a
# client's transactions may run on another server connection, so nothing may rely on a
# session. What needs one (the dispatcher's LISTEN) connects to DATABASE_DIRECT_URL instead.
DATABASE_PGBOUNCER = env_bool("DATABASE_PGBOUNCER")
DATABASE_DIRECT_URL = env("DATABASE_DIRECT_URL")
if DATABASE_PGBOUNCER and not DATABASE_DIRECT_URL:
    raise ImproperlyConfigured(
        "DATABASE_DIRECT_URL must name PostgreSQL itself (not PgBouncer) when "
        "DATABASE_PGBOUNCER is on: the event dispatcher's LISTEN needs a session of its own."
    )
DATABASE_OWNER_COMMANDS = {"migrate", "setup_database_roles"}
# The role granted row access after every migrate (empty: one role, nothing to grant).
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE") or (
    dj_database_url.parse(DATABASE_URL).get("USER", "")
    if DATABASE_URL and DATABASE_MIGRATE_URL
    else ""
)
if DATABASE_URL:
    # psycopg 3's pool: many short requests share a few connections. Not in a Django-Q2
    # cluster, which forks its workers: a pool's open sockets must never cross a fork, so
    # each worker process keeps its own persistent connection instead.
    DATABASE_POOL = env_bool("DATABASE_POOL", not {"qcluster", "run_worker"} & set(sys.argv))
    as_owner = bool(DATABASE_MIGRATE_URL) and DATABASE_OWNER_COMMANDS & set(sys.argv[1:2])
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_MIGRATE_URL if as_owner else DATABASE_URL,
            conn_max_age=0 if DATABASE_POOL else 300,
            conn_health_checks=True,
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, plus the 'system' row-level-security scope on every connection.
        DATABASES["default"]["ENGINE"] = "project.db.backends.postgresql"
    if DATABASES["default"]["ENGINE"] == "project.db.backends.postgresql" and DATABASE_POOL:
        # A request holds one connection from its first query to its response, so max_size
        # bounds the requests of one process in PostgreSQL at once; the rest wait for one up
        # to `timeout` seconds, then fail (docs/checkout.md).
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": int(env("DATABASE_POOL_MIN", "2")),
            "max_size": int(env("DATABASE_POOL_MAX", "10")),
            "timeout": float(env("DATABASE_POOL_TIMEOUT", "10")),
        }
    if DATABASE_PGBOUNCER and not as_owner:
        DATABASES["default"]["OPTIONS"] = {
            **DATABASES["default"].get("OPTIONS", {}),
            # No session setting per connection (project.db.backends.postgresql).
            "transaction_pooling": True,
            # Django's default, pinned: PgBouncer before 1.21 (Debian 12 has 1.18) cannot
            # keep a prepared statement with its client, and psycopg would prepare repeats.
            "prepare_threshold": None,
        }
        # A server-side cursor (QuerySet.iterator()) lives in one server session.
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "bazaar.sqlite3"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, sessions, channel layer ---------------------------------------
# Redis is one server (REDIS_URL) or the primary a set of Redis Sentinels names
# (REDIS_SENTINELS + REDIS_SENTINEL_SERVICE). With Sentinel every connection asks the
# sentinels where the primary is, and asks again after a connection error, so the cache,
# sessions, rate limits and the channel layer follow a failover without a restart.


def redis_sentinels(value: str) -> list[tuple[str, int]]:
    """REDIS_SENTINELS, "host:port,host:port" ([::1]:26379 for IPv6), as (host, port) pairs."""
    sentinels = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            address = urlsplit(f"//{item}")
            host, port = address.hostname, address.port or 26379
        except ValueError:
            host = None
        if not host or address.path or address.username:
            raise ImproperlyConfigured(f"REDIS_SENTINELS: {item!r} is not host:port.")
        sentinels.append((host, port))
    return sentinels


REDIS_URL = env("REDIS_URL")
REDIS_SENTINELS = redis_sentinels(env("REDIS_SENTINELS"))
REDIS_SENTINEL_SERVICE = env("REDIS_SENTINEL_SERVICE", "mymaster")
if REDIS_URL and REDIS_SENTINELS:
    raise ImproperlyConfigured("Set REDIS_URL or REDIS_SENTINELS, not both.")
USE_REDIS = bool(REDIS_URL or REDIS_SENTINELS)
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", "bazaar")
# A Redis that hangs must not hang a request or a worker's guard loop for long.
_REDIS_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 3}


def redis_channel_layer(host: dict) -> dict:
    """Redis Pub/Sub: each web process holds one subscribing connection (its sockets' channels
    and the groups they joined) and one for publishing, and fans a group's message out to its
    own sockets in memory; a socket costs Redis a subscription, never a connection or a key
    (docs/performance-websockets.md)."""
    return {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [host], "prefix": CACHE_KEY_PREFIX},
    }


if REDIS_SENTINELS:
    # The primary's own password and database; REDIS_SENTINEL_PASSWORD is the sentinels'.
    _redis_server = {"db": int(env("REDIS_DB", "0")), "password": env("REDIS_PASSWORD") or None}
    _sentinel_kwargs = {**_REDIS_TIMEOUTS, "password": env("REDIS_SENTINEL_PASSWORD") or None}
    CACHES = {
        "default": {
            "BACKEND": "project.redis_cache.SentinelRedisCache",
            "LOCATION": REDIS_SENTINEL_SERVICE,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "sentinels": REDIS_SENTINELS,
                "sentinel_kwargs": _sentinel_kwargs,
                **_redis_server,
                **_REDIS_TIMEOUTS,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": redis_channel_layer(
            {
                "sentinels": REDIS_SENTINELS,
                "master_name": REDIS_SENTINEL_SERVICE,
                "sentinel_kwargs": _sentinel_kwargs,
                **_redis_server,
                **_REDIS_TIMEOUTS,
            }
        )
    }
elif REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "project.redis_cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": _REDIS_TIMEOUTS,
        }
    }
    CHANNEL_LAYERS = {"default": redis_channel_layer({"address": REDIS_URL, **_REDIS_TIMEOUTS})}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # Local memory is each process's own, and a session is read by two servers (the
        # pages' and the websockets'): a copy one kept would outlive a sign-out in the other.
        "sessions": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Anonymous catalogue pages kept in the cache this long at most (project.page_cache); the
# services invalidate them at once on every change they show. 0 turns the page cache off, the
# default without Redis: a worker's change could not reach another process's local memory.
PAGE_CACHE_SECONDS = int(env("PAGE_CACHE_SECONDS", "600" if USE_REDIS else "0"))
# Sessions live in the cache and are written through to the database, so a Redis restart
# signs nobody out; while Redis is away they are read from the database (project.sessions).
SESSION_ENGINE = "project.sessions"
SESSION_CACHE_ALIAS = "default" if USE_REDIS else "sessions"

# --- Background work --------------------------------------------------------
# Tasks are declared with Django's Tasks API (`django.tasks.task`) and run by Django-Q2
# workers on its ORM broker (project/background/). Each queue is its own Q2 cluster, started
# with Q_CLUSTER_NAME=<queue>, so analytics work can never starve a payment.
TASKS = {
    "default": {
        "BACKEND": env("TASKS_BACKEND", "project.background.backend.DjangoQ2Backend"),
        "QUEUES": ["default", "critical", "emails", "analytics"],
    }
}


def q_queue(queue: str, *, workers: int, timeout: int, poll: float) -> dict:
    """One Q2 cluster per queue. `retry` (redelivery after an unacknowledged dequeue) must
    exceed `timeout`, or a slow task would be handed to a second worker while still running."""
    timeout = int(env(f"Q_TIMEOUT_{queue.upper()}", str(timeout)))
    workers = int(env(f"Q_WORKERS_{queue.upper()}", str(workers)))
    return {
        "workers": workers,
        # How often an idle cluster asks the broker for work: the floor of a task's latency.
        "poll": float(env(f"Q_POLL_{queue.upper()}", str(poll))),
        # Prefetch little: a task waiting in a cluster's memory still ages towards `retry`.
        "queue_limit": workers,
        "timeout": timeout,
        "retry": int(env(f"Q_RETRY_{queue.upper()}", str(timeout + max(10, timeout // 2)))),
        # Q2's default (0) redelivers forever; our runner also bounds crash loops.
        "max_attempts": TASK_MAX_ATTEMPTS + 1,
    }


TASK_MAX_ATTEMPTS = int(env("TASK_MAX_ATTEMPTS", "3"))
TASK_RETRY_BASE_DELAY = float(env("TASK_RETRY_BASE_DELAY", "2"))  # seconds, doubled per retry
TASK_RETRY_MAX_DELAY = float(env("TASK_RETRY_MAX_DELAY", "300"))
TASK_RETRY_JITTER = float(env("TASK_RETRY_JITTER", "0.25"))  # +/- share of each delay
TASK_FAILURE_WEBHOOK_URL = env("TASK_FAILURE_WEBHOOK_URL")
Q_CLUSTER = {
    "name": "critical",
    "orm": "default",
    "broker_class": "project.background.broker.OrmBroker",
    "catch_up": False,
    "save_limit": 100,
    "label": "Django-Q2",
    **q_queue("critical", workers=4, timeout=60, poll=0.05),
    "ALT_CLUSTERS": {
        "emails": q_queue("emails", workers=2, timeout=60, poll=0.1),
        "analytics": q_queue("analytics", workers=2, timeout=600, poll=0.5),
        "default": q_queue("default", workers=1, timeout=120, poll=0.2),
    },
}
# How long a cluster may hold a broker row it took before another cluster may take it
# (a cluster that died loses those rows for this long; see project.background.broker).
Q_LEASE_SECONDS = int(env("Q_LEASE_SECONDS", "10"))
# A cluster alive but not making progress for this long is restarted as a whole, and a
# queue with due tasks and no attempt started for this long is reported stalled.
Q_STALL_SECONDS = float(env("Q_STALL_SECONDS", "15"))
# `run_worker` touches worker-<queue>.alive here while its cluster makes progress (for
# liveness probes: `manage.py worker_alive <queue>`).
WORKER_HEARTBEAT_DIR = Path(env("WORKER_HEARTBEAT_DIR", str(VAR_DIR / "run")))
QUEUE_ALERT_INTERVAL = int(env("QUEUE_ALERT_INTERVAL", "300"))
QUEUE_ALERT_THRESHOLDS = {
    "critical": int(env("QUEUE_ALERT_THRESHOLD_CRITICAL", "50")),
    "emails": int(env("QUEUE_ALERT_THRESHOLD_EMAILS", "500")),
    "analytics": int(env("QUEUE_ALERT_THRESHOLD_ANALYTICS", "2000")),
    "default": int(env("QUEUE_ALERT_THRESHOLD_DEFAULT", "500")),
}
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
METRICS_TOKEN = env("METRICS_TOKEN")
DATA_EXPORT_TTL = int(env("DATA_EXPORT_TTL", str(7 * 24 * 3600)))
REPORT_TTL = int(env("REPORT_TTL", str(7 * 24 * 3600)))  # seconds a sales report downloads

# --- Housekeeping -------------------------------------------------------------
# Ages after which `manage.py purge` (and its hourly schedules) deletes what is no longer
# needed, in batches of PURGE_BATCH_SIZE rows (one short transaction each). Sent-email keys
# must outlive every task and event that could send their email again (docs/housekeeping.md).
PURGE_BATCH_SIZE = int(env("PURGE_BATCH_SIZE", "1000"))
PURGE_OUTBOX_AFTER_DAYS = float(env("PURGE_OUTBOX_AFTER_DAYS", "7"))
PURGE_TASKS_AFTER_DAYS = float(env("PURGE_TASKS_AFTER_DAYS", "14"))
PURGE_FAILED_TASKS_AFTER_DAYS = float(env("PURGE_FAILED_TASKS_AFTER_DAYS", "90"))
PURGE_SENT_EMAILS_AFTER_DAYS = float(env("PURGE_SENT_EMAILS_AFTER_DAYS", "120"))
PURGE_CARTS_AFTER_DAYS = float(env("PURGE_CARTS_AFTER_DAYS", "30"))
PURGE_HEARTBEATS_AFTER_DAYS = float(env("PURGE_HEARTBEATS_AFTER_DAYS", "1"))

# --- Liveness ----------------------------------------------------------------------------
# Workers and dispatchers write a heartbeat row this often; /metrics counts one as alive
# while its heartbeat is younger than LIVENESS_STALE_SECONDS.
LIVENESS_HEARTBEAT_SECONDS = float(env("LIVENESS_HEARTBEAT_SECONDS", "5"))
LIVENESS_STALE_SECONDS = float(env("LIVENESS_STALE_SECONDS", "30"))

# --- Domain events ----------------------------------------------------------
# The dispatcher runs inside the web process when the channel layer is in-memory (only that
# process reaches its websockets); with Redis it runs as `manage.py run_dispatcher`.
EVENTS_EMBEDDED_DISPATCHER = env_bool("EVENTS_EMBEDDED_DISPATCHER", not USE_REDIS)
EVENTS_MAX_ATTEMPTS = int(env("EVENTS_MAX_ATTEMPTS", "5"))
EVENTS_RETRY_BASE_SECONDS = float(env("EVENTS_RETRY_BASE_SECONDS", "2"))
EVENTS_POLL_SECONDS = float(env("EVENTS_POLL_SECONDS", "1" if DATABASE_URL else "0.5"))

# --- Auth -----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# ModelBackend behind the sign-in limits, so every sign-in path is limited and counted.
AUTHENTICATION_BACKENDS = ["accounts.backends.RateLimitedModelBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "shop:home"
LOGOUT_REDIRECT_URL = "shop:home"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# How long an email-verification link stays valid.
EMAIL_VERIFICATION_MAX_AGE = int(env("EMAIL_VERIFICATION_MAX_AGE", str(3 * 24 * 3600)))
PASSWORD_RESET_TIMEOUT = int(env("PASSWORD_RESET_TIMEOUT", str(3600)))
# Two-factor sign-in (accounts.twofactor): how long the second step may follow the password,
# and the emailed fallback code's lifetime and number of tries.
TWOFACTOR_PENDING_SECONDS = int(env("TWOFACTOR_PENDING_SECONDS", str(10 * 60)))
TWOFACTOR_EMAIL_CODE_TTL = int(env("TWOFACTOR_EMAIL_CODE_TTL", str(10 * 60)))
TWOFACTOR_EMAIL_CODE_TRIES = int(env("TWOFACTOR_EMAIL_CODE_TRIES", "5"))
# Session lifetimes (accounts.middleware): absolute from sign-in, and idle between requests.
SESSION_MAX_AGE = int(env("SESSION_MAX_AGE", str(7 * 24 * 3600)))
SESSION_IDLE_TIMEOUT = int(env("SESSION_IDLE_TIMEOUT", str(24 * 3600)))
STAFF_SESSION_MAX_AGE = int(env("STAFF_SESSION_MAX_AGE", str(8 * 3600)))
STAFF_SESSION_IDLE_TIMEOUT = int(env("STAFF_SESSION_IDLE_TIMEOUT", str(30 * 60)))
SESSION_COOKIE_AGE = SESSION_MAX_AGE


def rate_limit(bucket: str, limit: int, window: int) -> dict[str, int]:
    """A limit from RATE_LIMIT_<BUCKET>="<attempts>/<seconds>" (e.g. "10/900"), else the default."""
    value = env(f"RATE_LIMIT_{bucket.upper()}")
    if value:
        try:
            limit_text, window_text = value.split("/")
            limit, window = int(limit_text), int(window_text)
        except ValueError:
            raise ImproperlyConfigured(
                f"RATE_LIMIT_{bucket.upper()} must look like 10/900 (attempts/seconds)."
            ) from None
        if limit < 1 or window < 1:
            raise ImproperlyConfigured(f"RATE_LIMIT_{bucket.upper()} must be positive numbers.")
    return {"limit": limit, "window": window}


# Rate limits (project.ratelimit), counted in the cache (Redis: shared by every process).
# Each is overridable by RATE_LIMIT_<NAME>="attempts/seconds"; see README "Rate limits".
RATE_LIMITS = {
    # Failed sign-ins (shop and /admin/ alike, counted in accounts.backends).
    "login_account_address": rate_limit("login_account_address", 10, 15 * 60),
    "login_address": rate_limit("login_address", 50, 15 * 60),
    # Past this many failures on one account from anywhere, a correct password from a browser
    # the owner has not unlocked by an emailed link is answered with that link, not refused.
    "login_account": rate_limit("login_account", 20, 60 * 60),
    "login_unlock_email": rate_limit("login_unlock_email", 1, 5 * 60),
    "password_reset_email": rate_limit("password_reset_email", 3, 60 * 60),
    "password_reset_address": rate_limit("password_reset_address", 10, 60 * 60),
    "register_address": rate_limit("register_address", 10, 60 * 60),
    # Wrong current passwords on the change-password form, per user (a stolen session).
    "password_change_user": rate_limit("password_change_user", 5, 15 * 60),
    # "Someone tried to register with your address" notices, per address.
    "registration_notice_email": rate_limit("registration_notice_email", 1, 60 * 60),
    "verification_resend_minute": rate_limit("verification_resend_minute", 1, 60),
    "verification_resend_day": rate_limit("verification_resend_day", 5, 24 * 60 * 60),
    "checkout_user": rate_limit("checkout_user", 20, 10 * 60),
    "pay_user": rate_limit("pay_user", 10, 10 * 60),
    # Second-factor code attempts per user, and email codes sent per user (accounts 2FA).
    "twofactor_user": rate_limit("twofactor_user", 5, 5 * 60),
    "twofactor_email_send": rate_limit("twofactor_email_send", 3, 15 * 60),
    "twofactor_address": rate_limit("twofactor_address", 30, 15 * 60),
    # Websocket connects per session (consumers), and CSP reports per client address.
    "websocket_session": rate_limit("websocket_session", 30, 60),
    "csp_report_address": rate_limit("csp_report_address", 60, 60),
}
# Proxies whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated); see project.client_ip.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")

# --- Email ----------------------------------------------------------------
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Bazaar <no-reply@bazaar.local>")
if env("EMAIL_HOST"):
    MAILERS = {
        "default": {
            # Django's SMTP backend, telling a refused email (sent again by a retry) from
            # one the server may have accepted (never sent again by itself).
            "BACKEND": "project.background.smtp.EmailBackend",
            "OPTIONS": {
                "host": env("EMAIL_HOST"),
                "port": int(env("EMAIL_PORT", "587")),
                "username": env("EMAIL_HOST_USER"),
                "password": env("EMAIL_HOST_PASSWORD"),
                "use_tls": env_bool("EMAIL_USE_TLS", True),
                "timeout": 15,
            },
        }
    }
else:
    # Embedded default: every email is a file a developer can open (an .eml and an .html copy).
    MAILERS = {
        "default": {
            "BACKEND": "project.background.mail_files.EmailBackend",
            "OPTIONS": {"file_path": str(VAR_DIR / "mail")},
        }
    }
# Production without SITE_URL: https:// on the first of ALLOWED_HOSTS.
SITE_URL = env(
    "SITE_URL",
    f"https://{ALLOWED_HOSTS[0].lstrip('.')}" if PRODUCTION else "http://127.0.0.1:8000",
).rstrip("/")

# --- Payments ---------------------------------------------------------------
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", "shop.gateways.simulated.SimulatedGateway")
PAYMENT_CURRENCY = env("PAYMENT_CURRENCY", "EUR")
SIMULATED_GATEWAY_LATENCY_MS = int(env("SIMULATED_GATEWAY_LATENCY_MS", "0"))
# Share of simulated gateway calls that fail transiently (0.0-1.0), to exercise retries.
SIMULATED_GATEWAY_FAILURE_RATE = float(env("SIMULATED_GATEWAY_FAILURE_RATE", "0"))
# Share of simulated charges and refunds recorded whose reply is then lost (a GatewayError).
SIMULATED_GATEWAY_LOST_RESPONSE_RATE = float(env("SIMULATED_GATEWAY_LOST_RESPONSE_RATE", "0"))
# The simulated processor's own ledger, outside our database and its transactions.
SIMULATED_GATEWAY_LEDGER_PATH = Path(
    env("SIMULATED_GATEWAY_LEDGER_PATH", str(VAR_DIR / "simulated_gateway.sqlite3"))
)
# A payment or refund processing longer than this is re-enqueued by the sweeper.
PAYMENT_STUCK_AFTER_SECONDS = int(env("PAYMENT_STUCK_AFTER_SECONDS", "120"))
# A charge is sent (or sent again) only this long after checkout; later a payment is only
# looked up at the processor by its key (found: applied; nothing there: failed, pay again).
PAYMENT_CHARGE_WINDOW_SECONDS = int(env("PAYMENT_CHARGE_WINDOW_SECONDS", "900"))
# A payment given up on (nothing found at the processor) is looked up again for this long,
# each one at most every PAYMENT_RECONCILE_EVERY_SECONDS: a charge that landed after all is
# applied (the order paid) or refunded automatically.
PAYMENT_RECONCILE_HOURS = float(env("PAYMENT_RECONCILE_HOURS", "24"))
PAYMENT_RECONCILE_EVERY_SECONDS = int(env("PAYMENT_RECONCILE_EVERY_SECONDS", "600"))
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
# Only to point the adapter at a local stand-in of the Stripe API (tests, demos).
STRIPE_API_BASE = env("STRIPE_API_BASE")

# --- I18N -----------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media files -----------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Public uploads (product images). MEDIA_URL may name a CDN, an object store or a proxy
# location (https://cdn.example.com/media/); while it is a path on this site, Django serves
# the public images itself (project.media) unless MEDIA_SERVE=false says a proxy does.
MEDIA_URL = env("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_SERVE = env_bool("MEDIA_SERVE", MEDIA_URL.startswith("/"))
# Private files (sales reports, personal-data exports): never under MEDIA_ROOT; only views
# that check permission serve them (project.files), and they are deleted once expired.
PRIVATE_FILES_ROOT = Path(env("PRIVATE_FILES_ROOT", str(VAR_DIR / "private")))
if PRIVATE_FILES_ROOT.resolve().is_relative_to(MEDIA_ROOT.resolve()):
    raise ImproperlyConfigured("PRIVATE_FILES_ROOT must not be inside MEDIA_ROOT.")
STORAGES = {
    "default": {
        "BACKEND": env("MEDIA_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")
    },
    "private": {
        "BACKEND": "project.files.PrivateFileSystemStorage",
        "OPTIONS": {"location": PRIVATE_FILES_ROOT},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    # Where `manage.py backup` writes (project/backups): a folder, or any storage class set by
    # BACKUP_STORAGE_BACKEND (configured by its own variables).
    "backups": {
        "BACKEND": env("BACKUP_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": {}
        if env("BACKUP_STORAGE_BACKEND")
        else {
            "location": Path(env("BACKUP_ROOT", str(VAR_DIR / "backups"))),
            # Backups hold personal data and password hashes: the server's user only.
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Largest product image a vendor may upload (bytes), and in pixels (width x height; also
# Pillow's decompression-bomb limit in every process).
PRODUCT_IMAGE_MAX_BYTES = int(env("PRODUCT_IMAGE_MAX_BYTES", "2097152"))
PRODUCT_IMAGE_MAX_PIXELS = int(env("PRODUCT_IMAGE_MAX_PIXELS", "25000000"))

# --- Backups (project/backups, docs/operations.md) ---------------------------
# The STORAGES alias backups go to unless --storage/--dir says otherwise, the storages whose
# files a backup carries, and what `prune_backups` keeps: the newest backup of each of the
# last N days, ISO weeks and months that have one.
BACKUP_STORAGE = env("BACKUP_STORAGE", "backups")
BACKUP_MEDIA_STORAGES = env_list("BACKUP_MEDIA_STORAGES", "default,private")
BACKUP_KEEP_DAILY = int(env("BACKUP_KEEP_DAILY", "7"))
BACKUP_KEEP_WEEKLY = int(env("BACKUP_KEEP_WEEKLY", "4"))
BACKUP_KEEP_MONTHLY = int(env("BACKUP_KEEP_MONTHLY", "12"))

# --- Security -------------------------------------------------------------
# The site's own origin (SITE_URL) and its websocket origin, named in the CSP's connect-src
# and checked against every websocket's Origin header (project.websockets).
_site = urlsplit(SITE_URL)
# Where pages open their websockets. Empty: on the page's own origin, as in production, where
# the ingress routes /ws/ to the websockets Deployment. A port: on the page's own host at that
# port, where `make run` serves them (uvicorn beside gunicorn); a host of its own would not
# do, since the session cookie is sent to the host it was set for, whatever the port.
WEBSOCKET_PORT = int(env("WEBSOCKET_PORT") or 0) or None
SITE_ORIGIN = f"{_site.scheme}://{_site.netloc}"
_ws_scheme = "wss" if _site.scheme == "https" else "ws"
WEBSOCKET_ALLOWED_ORIGINS = list(
    dict.fromkeys(
        [SITE_ORIGIN, *CSRF_TRUSTED_ORIGINS, *env_list("WEBSOCKET_ALLOWED_ORIGINS")]
        # Development: the same server reached as 127.0.0.1, localhost or [::1].
        + (
            []
            if PRODUCTION
            else [
                f"{_site.scheme}://{host}{':' + str(_site.port) if _site.port else ''}"
                for host in ALLOWED_HOSTS
                if host and host[0] not in ".*" and host != "testserver"
            ]
        )
    )
)
# CSP host sources cannot name IPv6 literals ([::1]); 'self' still covers the page's own.
_ws_origins = [
    f"{_ws_scheme}://{urlsplit(origin).hostname}:{WEBSOCKET_PORT}"
    if WEBSOCKET_PORT
    else f"{_ws_scheme}://{urlsplit(origin).netloc}"
    for origin in WEBSOCKET_ALLOWED_ORIGINS
    if urlsplit(origin).scheme == _site.scheme and not urlsplit(origin).netloc.startswith("[")
]
CSP_REPORT_PATH = "/csp-report/"
CSP_REPORT_MAX_BYTES = int(env("CSP_REPORT_MAX_BYTES", "16384"))
_media = urlsplit(MEDIA_URL)
_media_origins = [f"{_media.scheme}://{_media.netloc}"] if _media.scheme and _media.netloc else []
SECURE_CSP = {
    # Nothing by default; every kind of resource the pages use is named below.
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    # Product images from a CDN or object store (MEDIA_URL on another origin) are allowed too.
    "img-src": [CSP.SELF, "data:", *_media_origins],
    "font-src": [CSP.SELF],
    "manifest-src": [CSP.SELF],
    "connect-src": [CSP.SELF, *_ws_origins],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
    "report-uri": [CSP_REPORT_PATH],
    "report-to": ["csp-endpoint"],
}
# Sent with the CSP (project.middleware.SecurityHeadersMiddleware): where report-to reports go.
REPORTING_ENDPOINTS = {"csp-endpoint": CSP_REPORT_PATH}
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the meta tag, never the cookie
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Added by project.middleware.SecurityHeadersMiddleware to every response.
CROSS_ORIGIN_RESOURCE_POLICY = "same-origin"
# Only features Chromium recognises (an unknown one is reported as an error in the console).
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), browsing-topics=(), camera=(), "
    "display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), "
    "hid=(), idle-detection=(), interest-cohort=(), magnetometer=(), microphone=(), midi=(), "
    "payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
    "serial=(), usb=(), xr-spatial-tracking=()"
)
# Pages that are always private (Cache-Control: no-store), besides every response to a
# signed-in user or one that sets the session cookie.
PRIVATE_PATH_PREFIXES = (
    "/accounts/",
    "/cart/",
    "/checkout/",
    "/orders/",
    "/backoffice/",
    "/admin/",
)
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Only behind a TLS-terminating proxy that sets (and never passes through from clients)
    # this header, e.g. SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto.
    if env("SECURE_PROXY_SSL_HEADER"):
        SECURE_PROXY_SSL_HEADER = (
            "HTTP_" + env("SECURE_PROXY_SSL_HEADER").upper().replace("-", "_"),
            "https",
        )
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    # Both change what browsers do for every subdomain, for a year: opt in deliberately.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host- cookies: Secure, Path=/, no Domain, so no subdomain can set or shadow them.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    # Not opting in to includeSubDomains/preload is a decision, not an oversight.
    SILENCED_SYSTEM_CHECKS = [
        *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
        *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
    ]


# --- JSON API (/api/v1/, docs/api.md) -------------------------------------------
# JWT signing keys by id ("kid"): API_JWT_KEYS="2026-12=<secret>,2026-06=<older secret>".
# New tokens are signed with API_JWT_ACTIVE_KID (default: the first listed); tokens signed
# with any listed key are accepted until they expire, so a key is rotated by adding the new
# one first and removing the old one a refresh lifetime later. Without the variable (the
# embedded default) one key is derived from SECRET_KEY.
def _jwt_keys(raw: str) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in raw.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[0].strip() or len(pair[1].strip()) < 32 for pair in pairs):
        raise ImproperlyConfigured("API_JWT_KEYS must be kid=secret pairs, each secret 32+ chars.")
    return {kid.strip(): secret.strip() for kid, secret in pairs}


def _strong_jwt_keys(keys: dict[str, str]) -> dict[str, str]:
    # Production: random secrets of their own (not SECRET_KEY, not a placeholder).
    for kid, secret in keys.items():
        if len(secret) < 43 or len(set(secret)) < 16 or secret == SECRET_KEY:
            raise ImproperlyConfigured(
                f"API_JWT_KEYS: the key {kid!r} is weak; use 43+ random characters "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))").'
            )
    return keys


if PRODUCTION:
    API_JWT_KEYS = _strong_jwt_keys(_jwt_keys(required("API_JWT_KEYS")))
else:
    API_JWT_KEYS = _jwt_keys(env("API_JWT_KEYS")) or {
        "default": hashlib.sha256(f"bazaar.api.jwt:{SECRET_KEY}".encode()).hexdigest()
    }
API_JWT_ACTIVE_KID = env("API_JWT_ACTIVE_KID") or next(iter(API_JWT_KEYS))
if API_JWT_ACTIVE_KID not in API_JWT_KEYS:
    raise ImproperlyConfigured("API_JWT_ACTIVE_KID must name one of API_JWT_KEYS.")
API_ACCESS_TOKEN_SECONDS = int(env("API_ACCESS_TOKEN_SECONDS", "900"))
API_REFRESH_TOKEN_SECONDS = int(env("API_REFRESH_TOKEN_SECONDS", str(7 * 24 * 3600)))
# Idempotency-Key (api.idempotency): answers are kept this long for retries; a claim older
# than API_IDEMPOTENCY_CLAIM_SECONDS with no answer belongs to a dead process and is taken over.
API_IDEMPOTENCY_TTL_HOURS = float(env("API_IDEMPOTENCY_TTL_HOURS", "24"))
API_IDEMPOTENCY_CLAIM_SECONDS = int(env("API_IDEMPOTENCY_CLAIM_SECONDS", "60"))
# API requests per signed-in caller (a person's tokens, or one API key) and per client address
# for anonymous calls (api.ratelimits); RATE_LIMIT_API_PRINCIPAL="600/60" overrides.
RATE_LIMITS["api_principal"] = rate_limit("api_principal", 600, 60)
RATE_LIMITS["api_address"] = rate_limit("api_address", 120, 60)
# The interactive docs (/api/v1/docs) and the OpenAPI document: public, or staff only. On by
# default outside production; production serves them to signed-in staff unless set.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", not PRODUCTION)
# The cache holding the access-token revocation list (api.revocation): Redis in production.
API_REVOCATION_CACHE = env("API_REVOCATION_CACHE", "default")

# --- Logging ----------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "project.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "project.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Webhooks to vendors' systems (docs/webhooks.md) ------------------------------------
# Endpoint URLs must be https in production; private, loopback and link-local addresses are
# refused there (a vendor must not make Bazaar call into its own network).
WEBHOOKS_REQUIRE_HTTPS = env_bool("WEBHOOKS_REQUIRE_HTTPS", PRODUCTION)
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", not PRODUCTION)
WEBHOOKS_TIMEOUT_SECONDS = float(env("WEBHOOKS_TIMEOUT_SECONDS", "5"))
WEBHOOKS_MAX_ATTEMPTS = int(env("WEBHOOKS_MAX_ATTEMPTS", "8"))
# Attempt n failed: wait base * 4**(n-1), capped, +/- jitter (1, 4, 16, 64 min, 4 h, 17 h, 24 h).
WEBHOOKS_RETRY_BASE_SECONDS = float(env("WEBHOOKS_RETRY_BASE_SECONDS", "60"))
WEBHOOKS_RETRY_MAX_SECONDS = float(env("WEBHOOKS_RETRY_MAX_SECONDS", str(24 * 3600)))
WEBHOOKS_RETRY_JITTER = float(env("WEBHOOKS_RETRY_JITTER", "0.2"))
PURGE_WEBHOOK_DELIVERIES_AFTER_DAYS = float(env("PURGE_WEBHOOK_DELIVERIES_AFTER_DAYS", "30"))
