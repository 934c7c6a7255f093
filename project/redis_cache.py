"""Django's Redis cache with one connection pool per process, on one server or on the primary
that Redis Sentinel names.

One pool per process: Django keeps a cache object per request context, and under ASGI every
request is a context of its own, so its built-in RedisCache opens a pool (and a connection)
per request. Here every cache object with the same settings shares one client, hence one
pool: a process holds as many Redis connections as it runs commands at once.

Sentinel (SentinelRedisCache): the pool is redis-py's SentinelConnectionPool. Every new
connection asks the sentinels where the primary is, and a connection error (the primary
died) or a READONLY reply (it was demoted) drops the connection, so the next command, or
redis-py's own retry of it, reaches the replica the sentinels promoted: the web process,
workers and dispatcher follow a failover without a restart. Reads go to the primary too: a
replica may lag behind what this process has just written (a session, a rate-limit count).

    CACHES = {"default": {
        "BACKEND": "project.redis_cache.SentinelRedisCache",
        "LOCATION": "mymaster",  # the Sentinel service name
        "OPTIONS": {"sentinels": [("10.0.0.1", 26379)], "sentinel_kwargs": {...}, "db": 0},
    }}
"""

import threading
from typing import Any

from django.core.cache.backends import redis as django_redis
from django.utils.functional import cached_property
from redis.sentinel import Sentinel, SentinelConnectionPool

_clients: dict[str, django_redis.RedisCacheClient] = {}
_lock = threading.Lock()


class SharedPoolClient(django_redis.RedisCacheClient):
    # Django's own attributes, which django-stubs does not declare.
    _pools: dict[int, Any]
    _servers: list[str]
    _pool_options: dict[str, Any]
    _client: Any  # redis.Redis

    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._redis_clients: dict[int, Any] = {}

    def _get_connection_pool(self, write):
        with _lock:  # requests share this client from many threads: make each pool once
            return super()._get_connection_pool(write)  # type: ignore[misc]  # not in the stubs

    def get_client(self, key=None, *, write=False):
        # Django builds a redis.Redis for every command (about 0.13 ms of CPU, a session read
        # costs one); one per pool serves every thread, taking a connection per command.
        pool = self._get_connection_pool(write)
        client = self._redis_clients.get(id(pool))
        if client is None:
            client = self._redis_clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class SentinelClient(SharedPoolClient):
    def __init__(self, servers, *, sentinels, sentinel_kwargs=None, **options):
        super().__init__(servers, **options)
        self._sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)

    def _get_connection_pool(self, write):
        with _lock:
            if 0 not in self._pools:
                self._pools[0] = SentinelConnectionPool(
                    self._servers[0], self._sentinel, **self._pool_options
                )
            return self._pools[0]


class RedisCache(django_redis.RedisCache):
    """Django's RedisCache, its client (and so its pools) shared by the whole process."""

    client_class: type[SharedPoolClient] = SharedPoolClient
    # Django's own attributes, which django-stubs does not declare.
    _servers: list[str]
    _options: dict[str, Any]

    @cached_property
    def _cache(self):
        key = repr((self.client_class, self._servers, sorted(self._options.items())))
        with _lock:
            if key not in _clients:
                _clients[key] = self.client_class(self._servers, **self._options)
            return _clients[key]


class SentinelRedisCache(RedisCache):
    """LOCATION is the Sentinel service name, OPTIONS["sentinels"] its sentinels' (host, port)
    pairs and OPTIONS["sentinel_kwargs"] how to connect to them (password, timeouts)."""

    client_class = SentinelClient
