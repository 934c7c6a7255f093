"""Fixtures shared by the integration tests."""

# json_logs: what the production log handler would print, parsed (tests/fixtures/json_logs.py).
from tests.fixtures.json_logs import json_logs  # noqa: F401 - a fixture
