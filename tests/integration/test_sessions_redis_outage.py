"""A Redis outage does not sign anybody out or turn pages into errors: sessions are written
through to the database and read from it while the cache is away."""

import shutil
import socket
import subprocess
import time

import pytest
from django.urls import reverse


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    def __init__(self, directory):
        self.port = _free_port()
        self.directory = directory
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=5)


@pytest.fixture
def private_redis(tmp_path, settings):
    redis = PrivateRedis(tmp_path)
    redis.start()
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
        }
    }
    try:
        yield redis
    finally:
        if redis.process.poll() is None:
            redis.kill()


def test_a_signed_in_shopper_stays_signed_in_through_a_redis_restart(
    client, shopper, private_redis
):
    client.force_login(shopper)
    assert client.get(reverse("shop:order_list")).status_code == 200

    private_redis.kill()
    during = client.get(reverse("shop:order_list"))
    private_redis.start()  # back, and empty
    after = client.get(reverse("shop:order_list"))

    assert during.status_code == 200
    assert during.wsgi_request.user == shopper
    assert after.status_code == 200
    assert after.wsgi_request.user == shopper


def test_signing_out_while_redis_is_down_signs_out(client, shopper, private_redis):
    client.force_login(shopper)
    client.get(reverse("shop:order_list"))
    private_redis.kill()

    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert client.get(reverse("shop:order_list")).status_code == 302  # to the login page
