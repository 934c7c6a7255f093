"""REDIS_SENTINELS as an operator writes it, and the settings it gives every Redis user.
(The failover itself, on real servers: tests/integration/test_redis_sentinel.py.)"""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from project.settings import redis_sentinels


def settings_of(**environment: str) -> subprocess.CompletedProcess:
    """Print the cache and channel layer settings of a process started with `environment`."""
    script = (
        "from django.conf import settings as s;"
        "print(s.CACHES['default']['BACKEND'], s.CACHES['default']['LOCATION']);"
        "print(sorted(s.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0].items()))"
    )
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "project.settings", **environment}
    return subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )


def test_sentinels_are_host_port_pairs_with_the_sentinel_port_by_default():
    value = " 10.0.0.1:26380, sentinel-b ,[fd00::3]:26381,"

    assert redis_sentinels(value) == [
        ("10.0.0.1", 26380),
        ("sentinel-b", 26379),
        ("fd00::3", 26381),
    ]
    assert redis_sentinels("") == []


@pytest.mark.parametrize("value", ["10.0.0.1:port", "10.0.0.1:26379/0", "user@10.0.0.1", ":26379"])
def test_a_sentinel_that_is_not_host_port_refuses_to_start(value):
    with pytest.raises(ImproperlyConfigured, match=r"REDIS_SENTINELS: .* is not host:port\."):
        redis_sentinels(value)


def test_sentinels_configure_the_cache_and_the_channel_layer():
    result = settings_of(
        REDIS_SENTINELS="10.0.0.1:26379,10.0.0.2:26379",
        REDIS_SENTINEL_SERVICE="bazaar",
        REDIS_SENTINEL_PASSWORD="sentinel-secret",  # noqa: S106 - a test value
        REDIS_PASSWORD="primary-secret",  # noqa: S106
        REDIS_DB="3",
    )

    assert result.returncode == 0, result.stderr
    cache, channel_layer = result.stdout.splitlines()
    assert cache == "project.redis_cache.SentinelRedisCache bazaar"
    sentinel_kwargs = {
        "socket_connect_timeout": 2,
        "socket_timeout": 3,
        "password": "sentinel-secret",
    }
    assert channel_layer == str(
        [
            ("db", 3),
            ("master_name", "bazaar"),
            ("password", "primary-secret"),
            ("sentinel_kwargs", sentinel_kwargs),
            ("sentinels", [("10.0.0.1", 26379), ("10.0.0.2", 26379)]),
            ("socket_connect_timeout", 2),
            ("socket_timeout", 3),
        ]
    )


def test_redis_url_and_sentinels_together_refuse_to_start():
    result = settings_of(REDIS_URL="redis://127.0.0.1:6379/0", REDIS_SENTINELS="127.0.0.1:26379")

    assert result.returncode != 0
    assert "ImproperlyConfigured: Set REDIS_URL or REDIS_SENTINELS, not both." in result.stderr
