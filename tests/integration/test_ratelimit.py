"""project.ratelimit: one count in Redis, shared by every process."""

import json as jsonlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.test import RequestFactory

from project import ratelimit

rf = RequestFactory()


def test_hit_allows_the_limit_then_refuses_with_the_time_left():
    for _ in range(3):
        ratelimit.hit("test_bucket", "alice", limit=3, window=120)
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.hit("test_bucket", "alice", limit=3, window=120)
    assert 110 <= refused.value.retry_after <= 120
    assert refused.value.message == "Too many attempts. Try again in 2 minutes."
    # Another key has its own count.
    ratelimit.hit("test_bucket", "bob", limit=3, window=120)


def test_on_redis_a_count_left_without_expiry_gets_one():
    # E.g. written by an older version or a process that died between two commands: the next
    # hit still gives the window an end, so no key can refuse forever.
    backend = caches["default"]
    name = backend.make_and_validate_key(ratelimit._cache_key("test_bucket", "henry"))
    client = backend._cache.get_client(name, write=True)
    client.set(name, 5)

    count = ratelimit.hit("test_bucket", "henry", limit=10, window=45)

    assert count == 6
    assert 40 <= client.ttl(name) <= 45


def test_peek_refuses_once_the_limit_is_used_up_without_counting():
    ratelimit.hit("test_bucket", "carol", limit=2, window=60)
    ratelimit.peek("test_bucket", "carol", limit=2, window=60)
    assert ratelimit.count("test_bucket", "carol") == 1
    ratelimit.hit("test_bucket", "carol", limit=2, window=60)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.peek("test_bucket", "carol", limit=2, window=60)
    assert ratelimit.count("test_bucket", "carol") == 2


def test_reset_forgets_the_count():
    ratelimit.hit("test_bucket", "dave", limit=1, window=60)
    ratelimit.reset("test_bucket", "dave")
    ratelimit.hit("test_bucket", "dave", limit=1, window=60)


def test_limits_come_from_settings_when_not_given(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "test_bucket": {"limit": 1, "window": 30}}
    ratelimit.hit("test_bucket", "erin")
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.hit("test_bucket", "erin")
    assert refused.value.message == "Too many attempts. Try again in 30 seconds."


LOCAL_MEMORY = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


def test_the_embedded_default_counts_in_local_memory(settings):
    settings.CACHES = LOCAL_MEMORY
    assert [ratelimit.hit("test_bucket", "frank", limit=2, window=90) for _ in range(2)] == [1, 2]
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.hit("test_bucket", "frank", limit=2, window=90)
    assert 85 <= refused.value.retry_after <= 90
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.peek("test_bucket", "frank", limit=2, window=90)
    ratelimit.reset("test_bucket", "frank")
    assert ratelimit.count("test_bucket", "frank") == 0


def test_an_unreachable_redis_lets_attempts_through(settings, caplog):
    settings.CACHES = UNREACHABLE_REDIS
    for _ in range(3):
        assert ratelimit.hit("test_bucket", "gina", limit=1, window=60) == 0
    ratelimit.peek("test_bucket", "gina", limit=1, window=60)
    assert "Rate limit test_bucket not counted: cache unavailable" in caplog.text


def test_too_many_requests_answers_browsers_with_a_page(db):
    request = rf.get("/", HTTP_ACCEPT="text/html,application/xhtml+xml")
    request.user = AnonymousUser()
    request.session = {}
    response = ratelimit.too_many_requests(request, ratelimit.RateLimited(240))
    assert response.status_code == 429
    assert response["Retry-After"] == "240"
    assert "Too many attempts. Try again in 4 minutes." in response.content.decode()
    assert "<html" in response.content.decode()


def test_too_many_requests_answers_scripts_and_htmx_briefly():
    plain = ratelimit.too_many_requests(rf.post("/", HTTP_ACCEPT="*/*"), ratelimit.RateLimited(61))
    assert plain.status_code == 429
    assert plain["Retry-After"] == "61"
    assert plain.content == b"Too many attempts. Try again in 2 minutes.\n"
    htmx = ratelimit.too_many_requests(
        rf.post("/", HTTP_ACCEPT="text/html", HTTP_HX_REQUEST="true"), ratelimit.RateLimited(5)
    )
    assert htmx["Content-Type"].startswith("text/plain")
    json = ratelimit.too_many_requests(
        rf.post("/", HTTP_ACCEPT="application/json"), ratelimit.RateLimited(5)
    )
    assert jsonlib.loads(json.content) == {
        "detail": "Too many attempts. Try again in 5 seconds.",
        "retry_after": 5,
    }


_COUNTER = textwrap.dedent(
    """
    import django, os, sys
    django.setup()
    from project import ratelimit
    allowed = refused = 0
    for _ in range(int(sys.argv[1])):
        try:
            ratelimit.hit("two_processes", "shared-key", limit=30, window=300)
            allowed += 1
        except ratelimit.RateLimited:
            refused += 1
    print(allowed, refused)
    """
)


def test_rate_limits_across_two_processes_share_one_count():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(Path.cwd())}
    processes = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _COUNTER, "25"], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [tuple(map(int, process.communicate(timeout=60)[0].split())) for process in processes]
    assert all(process.returncode == 0 for process in processes)
    # 50 attempts against one limit of 30: exactly 30 allowed in total, whoever won the race.
    assert sum(allowed for allowed, _ in results) == 30
    assert sum(refused for _, refused in results) == 20
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.peek("two_processes", "shared-key", limit=30, window=300)
