"""BAZAAR_MODE=production refuses what would be unsafe: no mail server, demo accounts."""

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import User
from shop.models import Product

PRODUCTION = {
    "BAZAAR_MODE": "production",
    "SECRET_KEY": "k" * 20 + "a-real-secret-key-for-this-test-only-0123456789",
    "ALLOWED_HOSTS": "shop.example.com",
    "EMAIL_HOST": "smtp.example.com",
    "API_JWT_KEYS": "test=Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w",
}


def run(*args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        **environment,
    }
    return subprocess.run(
        [sys.executable, *args],
        env={key: value for key, value in env.items() if value is not None},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )


def test_production_refuses_to_start_without_a_mail_server():
    result = run("-c", "import django; django.setup()", **{**PRODUCTION, "EMAIL_HOST": None})

    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert "EMAIL_HOST must be set when BAZAAR_MODE=production." in result.stderr


def test_production_refuses_to_start_without_api_signing_keys():
    result = run("-c", "import django; django.setup()", **{**PRODUCTION, "API_JWT_KEYS": None})

    assert result.returncode != 0
    assert "API_JWT_KEYS must be set when BAZAAR_MODE=production." in result.stderr


@pytest.mark.parametrize(
    "keys",
    [
        "2026-12=" + "a" * 64,  # long, but one character
        "2026-12=short-but-32-characters-long-0123",  # the format's minimum, not production's
        "2026-12=" + "k" * 20 + "a-real-secret-key-for-this-test-only-0123456789",  # SECRET_KEY
        "2026-12=Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w,old=" + "b" * 50,  # one weak
    ],
)
def test_production_refuses_weak_api_signing_keys(keys):
    result = run("-c", "import django; django.setup()", **{**PRODUCTION, "API_JWT_KEYS": keys})

    assert result.returncode != 0
    assert "API_JWT_KEYS: the key" in result.stderr
    assert "is weak" in result.stderr


def test_production_signs_api_tokens_with_the_configured_active_key():
    keys = (
        "2026-12=Zq4vN8tR2xL6pW0sB3mY7cJ1hK5dF9gA-uE_oI2nQ7w,"
        "2026-06=Yp3uM7sQ1wK5oV9rA2lX6bI0gJ4cE8fZ-tD_nH1mP6v"
    )
    show = "import django; django.setup(); from django.conf import settings; "
    show += "print(settings.API_JWT_ACTIVE_KID, sorted(settings.API_JWT_KEYS))"
    result = run(
        "-c", show, **{**PRODUCTION, "API_JWT_KEYS": keys, "API_JWT_ACTIVE_KID": "2026-06"}
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2026-06 ['2026-06', '2026-12']"


def test_the_deployment_checks_pass_in_the_production_shape():
    result = run("manage.py", "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "mail.E001" not in result.stdout + result.stderr


def test_the_deployment_checks_still_see_hsts_subdomains_once_opted_in():
    """Silencing W005/W021 follows the opt-in: with it on, nothing is silenced and all pass."""
    result = run(
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION,
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_seed_demo_refuses_in_production_and_creates_nothing(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError) as refusal:
        call_command("seed_demo", stdout=StringIO())

    assert str(refusal.value) == (
        "Refusing to load demo data in production (BAZAAR_MODE=production): it creates "
        "shopper, vendor and staff accounts whose password is published in the README. "
        "Run with --force if this really is a throwaway demo installation."
    )
    assert User.objects.count() == 0
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_seed_demo_with_force_seeds_in_production(settings):
    settings.PRODUCTION = True
    out = StringIO()

    call_command("seed_demo", "--force", stdout=out)

    assert "Demo data ready: 5 vendors" in out.getvalue()
    assert User.objects.filter(email="staff@example.com").exists()
