"""What every API answer shares, on the real /api/v1/: rate limits on an anonymous endpoint,
the OpenAPI document's quality, who may read the docs, and logs without secrets."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.http import HttpRequest
from django.test import Client
from django.urls import path
from ninja import Router
from ninja.operation import Operation
from openapi_spec_validator import validate

from api import auth, errors
from api.main import api
from api.openapi import BazaarApi
from project.urls import urlpatterns as project_urls
from tests.factories import PASSWORD
from tests.integration.api.conftest import bearer
from tests.integration.api.test_permission_matrix import ROWS

router = Router()


@router.post("/leak", summary="Fail, naming secrets (test)", response={200: dict})
async def leak(request: HttpRequest) -> dict:
    # An exception whose message carries what a careless error path might: the header, the body.
    raise RuntimeError(f"failed for {request.headers['Authorization']} with {request.body!r}")


test_api = BazaarApi(urls_namespace="cross-test", auth=auth.bearer, docs_url=None)
errors.install(test_api)
test_api.add_router("/", router)
urlpatterns = [path("test-api/", test_api.urls), *project_urls]

pytestmark = pytest.mark.urls(__name__)


def test_the_real_apis_anonymous_token_endpoint_is_limited(api_world, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "api_address": {"limit": 1, "window": 60}}
    client = Client()
    body = {"email": "nobody@example.com", "password": "wrong"}
    first = client.post("/api/v1/auth/token", body, content_type="application/json")
    second = client.post("/api/v1/auth/token", body, content_type="application/json")

    assert first.status_code == 401
    assert first["RateLimit-Limit"] == "1"
    assert second.status_code == 429
    assert second.has_header("Retry-After")


def test_the_openapi_document_validates(api_world):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    validate(response.json())  # raises on the first error of the OpenAPI 3.1 document


def _operations() -> list[Operation]:
    return [
        operation
        for bound in api._get_bound_routers()
        for path_view in bound.path_operations.values()
        for operation in path_view.operations
    ]


def test_every_operation_has_its_own_summary():
    # ninja makes one from the function's name when none is given ("Obtain Token").
    generated = [
        operation.view_func.__name__
        for operation in _operations()
        if operation.summary == operation.view_func.__name__.title().replace("_", " ")
    ]
    assert generated == [], "Give these operations summary=…"


# Sign-in and token refresh answer with fresh credentials each time: never a replay.
NOT_IDEMPOTENT_PREFIXES = ("/api/v1/auth/",)


def test_every_write_honours_idempotency_key():
    """`@router.post(...)` above `@idempotency.idempotent` (the other order registers the bare
    endpoint, and the key would be silently ignored)."""
    schema = api.get_openapi_schema(path_prefix="/api/v1/")
    missing = [
        f"{method.upper()} {url}"
        for url, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch")
        and not url.startswith(NOT_IDEMPOTENT_PREFIXES)
        and not any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    ]
    assert missing == [], "Decorate these writes with @idempotency.idempotent"


def test_every_operation_declares_the_problems_its_matrix_row_expects():
    schema = json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api/v1/")))
    missing = []
    for row in ROWS:
        operation = schema["paths"][row.path][row.method.lower()]
        for status in sorted({s for s in row.expect.values() if s >= 400}):
            declared = operation["responses"].get(str(status), {}).get("content", {})
            if "application/problem+json" not in declared:
                missing.append(f"{row.method} {row.path} {status}")
    assert missing == [], "Declare these with errors.problems(…)"


def test_every_operation_declares_429(api_world):
    schema = Client().get("/api/v1/openapi.json").json()
    for url, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "429" in operation["responses"], f"{method} {url}"


def test_docs_render_from_our_own_static_files_under_the_nonce_csp(api_world, settings):
    settings.API_DOCS_PUBLIC = True
    response = Client().get("/api/v1/docs")

    assert response.status_code == 200
    html = response.content.decode()
    csp = response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    scripts = re.findall(r"<script[^>]*>", html)
    executable = [tag for tag in scripts if "application/json" not in tag]
    assert len(executable) == 2
    for tag in executable:
        assert f'nonce="{nonce}"' in tag
        assert re.search(r'src="/static/(vendor/swagger-ui|js)/', tag), tag
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', html))  # no CDN
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp


def test_private_docs_are_for_staff_only(api_world, settings):
    settings.API_DOCS_PUBLIC = False
    visitor, shopper, staff = Client(), Client(), Client()
    shopper.force_login(api_world.shopper)
    staff.force_login(api_world.staff)

    for url in ("/api/v1/docs", "/api/v1/openapi.json"):
        assert visitor.get(url).status_code == 404
        assert shopper.get(url).status_code == 404
        assert staff.get(url).status_code == 200
    # The API itself does not depend on the docs being public.
    token = visitor.post(
        "/api/v1/auth/token",
        {"email": api_world.shopper.email, "password": PASSWORD},
        content_type="application/json",
    )
    assert token.status_code == 200


def _docs_public_in(mode: str, **extra: str) -> str:
    environment = {
        "PATH": os.environ["PATH"],
        "BAZAAR_MODE": mode,
        "SECRET_KEY": "a-real-secret-key-for-this-test-only-0123456789",
        "ALLOWED_HOSTS": "shop.example.com",
        "EMAIL_HOST": "smtp.example.com",
        "API_JWT_KEYS": "test=Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        **extra,
    }
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.API_DOCS_PUBLIC)"],
        env=environment,
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
        check=True,
    )
    return result.stdout.strip()


def test_docs_are_public_in_development_and_staff_only_in_production_unless_set():
    assert _docs_public_in("development") == "True"
    assert _docs_public_in("production") == "False"
    assert _docs_public_in("production", API_DOCS_PUBLIC="true") == "True"


def test_api_logs_mask_credentials_and_passwords(api_world, json_logs):
    token = bearer(api_world.a.member)["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    client = Client(raise_request_exception=False)
    client.post(
        "/api/v1/auth/token",
        {"email": api_world.shopper.email, "password": "Wrong-horse-battery-9"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    leaked = client.post(
        "/test-api/leak",
        {"password": "Wrong-horse-battery-9", "refresh_token": "r-0123456789abcdef"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert leaked.status_code == 500
    text = json.dumps(json_logs())
    assert "Internal Server Error: /test-api/leak" in text
    assert "[masked]" in text
    for secret in (token, token.split(".")[2], "Wrong-horse-battery-9", "r-0123456789abcdef"):
        assert secret not in text
