"""Signing in does not hold a database connection while the password is hashed.

argon2 takes a quarter of a second of CPU per sign-in; a connection held through it is one
the pool (DATABASE_POOL_MAX per process) cannot give to anyone else, and two dozen sign-ins
at once left every other request waiting for one until the pool gave up.
"""

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


class ConnectionWatchingHasher(MD5PasswordHasher):
    """MD5 (the suite's fast hasher) that notes whether this thread held a database
    connection at the moment it verified a password."""

    algorithm = "watched_md5"
    held: list[bool] = []

    def verify(self, password: str, encoded: str) -> bool:
        self.held.append(connection.connection is not None)
        return super().verify(password, encoded)


@pytest.fixture
def watched(settings):
    settings.PASSWORD_HASHERS = [
        f"{ConnectionWatchingHasher.__module__}.{ConnectionWatchingHasher.__qualname__}"
    ]
    ConnectionWatchingHasher.held.clear()
    return ConnectionWatchingHasher.held


def test_the_password_is_checked_with_the_connection_back_in_the_pool(client, watched):
    assert connection.settings_dict["OPTIONS"].get("pool")  # the production shape
    user = factories.UserFactory(email="ada@example.com")

    response = client.post(
        reverse("accounts:login"), {"email": "ada@example.com", "password": factories.PASSWORD}
    )

    assert response.status_code == 302
    assert int(client.session[SESSION_KEY]) == user.pk
    assert watched == [False]


def test_a_wrong_password_is_refused_the_same_way(client, watched):
    factories.UserFactory(email="ada@example.com")

    response = client.post(
        reverse("accounts:login"), {"email": "ada@example.com", "password": "not-it"}
    )

    assert response.status_code == 200
    assert "Email or password is incorrect." in response.text
    assert SESSION_KEY not in client.session
    assert watched == [False]
