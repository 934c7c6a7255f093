from django.core.cache import cache, caches
from django.db import connection


def test_runs_on_postgresql(db):
    assert connection.vendor == "postgresql"


def test_cache_is_redis():
    cache.set("infrastructure-probe", "ok", 10)
    assert cache.get("infrastructure-probe") == "ok"
    assert type(caches["default"]).__name__ == "RedisCache"
