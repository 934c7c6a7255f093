"""API rate limits, counted in the real Redis: per signed-in caller and per client address for
anonymous calls; RateLimit-* headers on answers, 429 problem+json with Retry-After past the
limit, and the API still serving (uncounted) when Redis is away."""

import pytest
from django.http import HttpRequest
from django.test import Client
from django.urls import path
from ninja import Router

from api import auth, errors
from api.openapi import BazaarApi
from api.services import sessions
from tests.integration.api.conftest import bearer

router = Router()


@router.get("/me", summary="Who am I (test)", response={200: dict, **errors.problems(401, 429)})
async def me(request: HttpRequest) -> dict:
    return {"id": request.auth.user.pk}


@router.get("/open", auth=None, summary="Open (test)", response={200: dict, **errors.problems(429)})
async def open_to_all(request: HttpRequest) -> dict:
    return {"ok": True}


@router.get("/sync-me", summary="Who am I, sync (test)", response={200: dict})
def me_sync(request: HttpRequest) -> dict:
    return {"id": request.auth.user.pk}


test_api = BazaarApi(
    urls_namespace="ratelimit-test",
    auth=auth.bearer,
    docs_url=None,
    rate_limited=True,
)
errors.install(test_api)
test_api.add_router("/", router)
urlpatterns = [path("test-api/", test_api.urls)]

pytestmark = pytest.mark.urls(__name__)


@pytest.fixture
def limits(settings):
    def set_limits(*, principal: int = 600, address: int = 120) -> None:
        settings.RATE_LIMITS = {
            **settings.RATE_LIMITS,
            "api_principal": {"limit": principal, "window": 60},
            "api_address": {"limit": address, "window": 60},
        }

    return set_limits


def test_answers_carry_the_callers_rate_limit(api_world, limits):
    limits(principal=5)
    client = Client()
    first = client.get("/test-api/me", **bearer(api_world.a.member))
    second = client.get("/test-api/me", **bearer(api_world.a.member))

    assert first.status_code == 200
    assert first["RateLimit-Limit"] == "5"
    assert first["RateLimit-Remaining"] == "4"
    assert second["RateLimit-Remaining"] == "3"
    assert 1 <= int(second["RateLimit-Reset"]) <= 60


def test_past_the_limit_a_caller_gets_429_problem_with_retry_after(api_world, limits):
    limits(principal=2)
    client = Client()
    for _ in range(2):
        assert client.get("/test-api/me", **bearer(api_world.a.member)).status_code == 200
    refused = client.get("/test-api/me", **bearer(api_world.a.member))

    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused["Retry-After"]) <= 60
    body = refused.json()
    assert body["type"].endswith("/rate-limited")
    assert body["status"] == 429
    assert body["detail"].startswith("Too many requests. Try again in")
    assert refused["RateLimit-Remaining"] == "0"


def test_every_token_of_one_person_shares_the_limit_and_others_have_their_own(api_world, limits):
    limits(principal=2)
    client = Client()
    client.get("/test-api/me", **bearer(api_world.a.member))
    client.get("/test-api/me", **bearer(api_world.a.member))  # a second token, same person

    assert client.get("/test-api/me", **bearer(api_world.a.member)).status_code == 429
    assert client.get("/test-api/me", **bearer(api_world.b.member)).status_code == 200


def test_anonymous_calls_are_limited_per_client_address(api_world, limits):
    limits(address=2)
    here = Client(REMOTE_ADDR="203.0.113.7")
    elsewhere = Client(REMOTE_ADDR="203.0.113.8")
    assert here.get("/test-api/open").status_code == 200
    assert here.get("/test-api/open")["RateLimit-Remaining"] == "0"

    assert here.get("/test-api/open").status_code == 429
    assert elsewhere.get("/test-api/open").status_code == 200


def test_with_redis_away_the_api_serves_uncounted(api_world, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "KEY_PREFIX": "dead",
        }
    }
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api_principal": {"limit": 1, "window": 60}}
    # A real sign-in's token: with Redis away, revocation is checked against its sign-in's
    # rows in the database (a token with no sign-in behind it is refused, docs/api-auth.md).
    access = sessions.start_session(user=api_world.a.member).access_token
    client = Client()
    for _ in range(3):
        response = client.get("/test-api/me", HTTP_AUTHORIZATION=f"Bearer {access}")
        assert response.status_code == 200
        assert response.json() == {"id": api_world.a.member.pk}
        assert not response.has_header("RateLimit-Limit")
    assert "Rate limit api_principal not counted: cache unavailable" in caplog.text


def test_the_access_log_names_the_api_caller(api_world, json_logs):
    Client().get("/test-api/me", **bearer(api_world.a.member))
    access = [line for line in json_logs() if line.get("http", {}).get("path") == "/test-api/me"]
    assert [line["user_id"] for line in access] == [api_world.a.member.pk]


def test_a_synchronous_endpoint_is_limited_too(api_world, limits):
    limits(principal=1)
    client = Client()
    assert client.get("/test-api/sync-me", **bearer(api_world.a.member)).status_code == 200
    refused = client.get("/test-api/sync-me", **bearer(api_world.a.member))
    assert refused.status_code == 429
    assert refused.json()["type"].endswith("/rate-limited")


def test_the_limit_is_declared_on_every_operation():
    schema = test_api.get_openapi_schema(path_prefix="/test-api/")
    declared = {
        (method, url): "429" in {str(status) for status in operation["responses"]}
        for url, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert declared == {
        ("get", "/test-api/me"): True,
        ("get", "/test-api/open"): True,
        ("get", "/test-api/sync-me"): True,
    }
