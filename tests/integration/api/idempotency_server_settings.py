"""Settings of a uvicorn process serving only the idempotency tests' API (and hanging inside
its write, so that the test can kill the process mid-request)."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.integration.api.test_idempotency"
