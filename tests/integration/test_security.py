import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.urls import reverse

from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor


def test_every_page_carries_a_nonce_csp_without_unsafe_sources(client, db):
    response = client.get(reverse("shop:home"))

    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    scripts = re.findall(r"<script[^>]*>", response.content.decode())
    assert scripts, "the page loads htmx and app.js"
    assert all(f'nonce="{nonce}"' in tag for tag in scripts)


def test_the_nonce_changes_on_every_response(client, db):
    first = client.get(reverse("shop:home")).headers["Content-Security-Policy"]
    second = client.get(reverse("shop:home")).headers["Content-Security-Policy"]
    assert re.search(r"'nonce-([^']+)'", first).group(1) != re.search(
        r"'nonce-([^']+)'", second
    ).group(1)


def test_responses_carry_a_request_id(client, db):
    response = client.get(reverse("healthz"), headers={"X-Request-ID": "trace-123"})
    assert response.headers["X-Request-ID"] == "trace-123"
    generated = client.get(reverse("healthz")).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_readyz_reports_database_and_cache(client, db):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok", "task_queues": "ok"}


def test_argon2_is_the_first_password_hasher():
    import project.settings as project_settings

    assert (
        project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_mode_refuses_to_start_without(missing):
    environment = {
        "PATH": os.environ["PATH"],
        "BAZAAR_MODE": "production",
        "SECRET_KEY": "a-real-secret-key-for-this-test-only-0123456789",
        "ALLOWED_HOSTS": "shop.example.com",
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    del environment[missing]
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=environment,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert result.returncode != 0
    assert f"{missing} must be set when BAZAAR_MODE=production." in result.stderr


def test_production_mode_passes_the_deployment_checks():
    environment = {
        "PATH": os.environ["PATH"],
        "BAZAAR_MODE": "production",
        "SECRET_KEY": "k" * 20 + "a-real-secret-key-for-this-test-only-0123456789",
        "ALLOWED_HOSTS": "shop.example.com",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "EMAIL_HOST": "smtp.example.com",
        "API_JWT_KEYS": "test=Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=environment,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


ADMIN_MODELS = [
    "accounts/user",
    "accounts/address",
    "shop/vendor",
    "shop/vendormembership",
    "shop/category",
    "shop/product",
    "shop/cart",
    "shop/order",
    "shop/payment",
    "shop/vendorinvitation",
    "shop/stockadjustment",
    "shop/shipment",
    "shop/reportjob",
    "accounts/dataexport",
]


@pytest.mark.parametrize("model_path", ADMIN_MODELS)
def test_admin_lists_load_for_staff_with_a_bounded_query_count(
    client, staff, model_path, django_assert_max_num_queries
):
    for _ in range(3):
        factories.ProductFactory()
    sign_in_with_second_factor(client, staff)
    with django_assert_max_num_queries(12):
        response = client.get(f"/admin/{model_path}/")
    assert response.status_code == 200


def test_admin_is_closed_to_shoppers(client, shopper):
    client.force_login(shopper)
    response = client.get("/admin/shop/order/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
