"""Every API operation × every actor, in one matrix (permissions/*.py): the status each gets.
An operation in the OpenAPI document without a row fails `test_every_operation_has_a_row`."""

import json

import pytest

from api.main import api
from tests.integration.api.conftest import bearer
from tests.integration.api.permissions import auth, cross, shop, vendor, webhooks
from tests.integration.api.permissions.rows import ACTORS, Row

ROWS: list[Row] = [*auth.ROWS, *cross.ROWS, *shop.ROWS, *vendor.ROWS, *webhooks.ROWS]
BY_KEY = {(row.method, row.path): row for row in ROWS}


def _operations() -> set[tuple[str, str]]:
    schema = api.get_openapi_schema(path_prefix="/api/v1/")
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }


def test_every_operation_has_a_row():
    operations = _operations()
    missing = sorted(operations - set(BY_KEY))
    stale = sorted(set(BY_KEY) - operations)
    assert not missing, f"Give these API operations a row in the permission matrix: {missing}"
    assert not stale, f"These matrix rows name no API operation: {stale}"


def test_every_operation_has_its_own_url_name():
    # reverse() of a shared name gives the other operation's URL (a Location header
    # pointed a shopper at the vendor's order: found by merging two areas).
    names = [pattern.name for pattern in api.urls[0] if pattern.name]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_no_two_rows_for_one_operation():
    assert len(BY_KEY) == len(ROWS)


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("key", sorted(BY_KEY), ids=lambda key: f"{key[0]} {key[1]}")
def test_permission_matrix(api_client, api_world, key, actor):
    row = BY_KEY[key]
    user = api_world.user(actor)
    headers = {**(bearer(user) if user else {}), **row.headers}
    path = row.path.format(**row.params(api_world))
    query = row.query(api_world) if row.query else None
    if row.method == "GET":
        response = api_client.get(path, query, **headers)
    else:
        body = json.dumps(row.body(api_world)) if row.body else ""
        call = getattr(api_client, row.method.lower())
        response = call(path, body, content_type="application/json", **headers)
    assert response.status_code == row.expect[actor], response.content[:500]
