"""Sessions in the cache (Redis), written through to the database, that survive a cache outage.

Django's `cached_db` store already treats a failed cache write as harmless (the database has
every session), but a failed read-back, membership test or delete still raises, so a Redis
restart turns every page view into a 500 for its duration. Here the cache is consulted
through a wrapper for which any failure is a miss: while Redis is away, sessions come from
the database; when it is back, they are cached again on first use.
"""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, UpdateError
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import DatabaseError, router, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from project.housekeeping import delete_in_batches

logger = logging.getLogger("django.contrib.sessions")


class _CacheWhereAFailureIsAMiss:
    def __init__(self, cache):
        self._cache = cache

    def _failed(self, operation: str, exc: Exception):
        logger.warning("Session cache %s failed (%s); using the database", operation, exc)

    def get(self, key, default=None):
        try:
            return self._cache.get(key, default)
        except Exception as exc:  # noqa: BLE001 - the database answers instead
            self._failed("get", exc)
            return default

    def set(self, key, value, timeout=None):
        try:
            self._cache.set(key, value, timeout)
        except Exception as exc:  # noqa: BLE001
            self._failed("set", exc)

    def delete(self, key):
        try:
            self._cache.delete(key)
        except Exception as exc:  # noqa: BLE001
            self._failed("delete", exc)

    def get_many(self, keys):
        try:
            return self._cache.get_many(keys)
        except Exception as exc:  # noqa: BLE001
            self._failed("get_many", exc)
            return {}

    def __contains__(self, key):
        try:
            return key in self._cache
        except Exception as exc:  # noqa: BLE001
            self._failed("lookup", exc)
            return False

    async def aget(self, key, default=None):
        try:
            return await self._cache.aget(key, default)
        except Exception as exc:  # noqa: BLE001
            self._failed("get", exc)
            return default

    async def aset(self, key, value, timeout=None):
        try:
            await self._cache.aset(key, value, timeout)
        except Exception as exc:  # noqa: BLE001
            self._failed("set", exc)

    async def adelete(self, key):
        try:
            await self._cache.adelete(key)
        except Exception as exc:  # noqa: BLE001
            self._failed("delete", exc)


class SessionStore(cached_db.SessionStore):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        # Django's store goes through this attribute for every cache read and write.
        self._cache = _CacheWhereAFailureIsAMiss(caches[settings.SESSION_CACHE_ALIAS])

    def _get_new_session_key(self) -> str:
        # Django first asks whether a fresh random key exists: a Redis round-trip and a query
        # on every new session (a first add to cart, each sign-in). Every new key is saved
        # with must_create, an INSERT that fails on a duplicate and makes create() draw
        # again, so that question adds nothing.
        return get_random_string(32, VALID_KEY_CHARS)

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            # A new session: create() saves it, to the database and the cache. Django's
            # cached_db would then write the same data to the cache a second time.
            return self.create()
        if must_create or transaction.get_connection().in_atomic_block:
            return super().save(must_create)
        # An update is one UPDATE statement, a transaction of its own in autocommit: Django's
        # atomic() around it adds only BEGIN and COMMIT, two more round trips on every
        # session write (choosing an address, placing an order, adding to a guest's cart).
        data = self._get_session()  # type: ignore[attr-defined]  # Django's, unstubbed
        session = self.create_model_instance(data)
        try:
            session.save(force_update=True, using=router.db_for_write(Session, instance=session))
        except DatabaseError as exc:  # the row is gone (expired, signed out), or no database
            raise UpdateError from exc
        self._cache.set(self.cache_key, data, self.get_expiry_age())


def read_many(session_keys: Iterable[str]) -> dict[str, dict | None]:
    """The data of these sessions as the cache holds it, in one round trip; None for a session
    the cache does not have (`SessionStore(key)` reads it from the database on first use). Plain
    dicts, not a store per session: the websockets' batched check reads thousands at a time."""
    prefix = SessionStore.cache_key_prefix
    keys = list(session_keys)
    if not keys:
        return {}
    cache = _CacheWhereAFailureIsAMiss(caches[settings.SESSION_CACHE_ALIAS])
    found = cache.get_many([prefix + key for key in keys])
    return {key: found.get(prefix + key) for key in keys}


def store_with(session_key: str, data: dict) -> SessionStore:
    """A store of `session_key` holding `data` as read by read_many (what Django's own load()
    would have read from the cache)."""
    store = SessionStore(session_key)
    store._session_cache = data  # type: ignore[attr-defined]  # Django's, unstubbed
    return store


def purge_expired_sessions(*, dry_run: bool = False) -> int:
    """Delete the database rows of expired sessions, in batches (their cached copies expire
    from the cache by themselves). Django's `clearsessions` does the same in one statement,
    which on a big table holds its locks for as long as it runs."""
    expired = Session.objects.filter(expire_date__lt=timezone.now())
    return delete_in_batches(expired, dry_run=dry_run)
