"""Permission rows of the cross endpoints: none so far. Idempotency and rate limits add no
operation, and the docs (/api/v1/docs, /api/v1/openapi.json) are not operations of the
document; who may read them is tested in test_cross.py."""

from tests.integration.api.permissions.rows import Row

ROWS: list[Row] = []
