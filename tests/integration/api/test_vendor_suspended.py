"""A suspended shop keeps reading through the API but every write is refused (the same guard
refuses a read-only API key): each vendor operation, from the permission rows."""

import json

import pytest

from project.audit.models import AuditEntry
from shop.models import Product, ReportJob, Shipment, StockAdjustment, VendorStatus
from tests.integration.api.conftest import bearer
from tests.integration.api.permissions.vendor import ROWS

pytestmark = pytest.mark.django_db


def call(client, world, row):
    headers = {**bearer(world.a.member), **row.headers}
    path = row.path.format(**row.params(world))
    if row.method == "GET":
        return client.get(path, row.query(world) if row.query else None, **headers)
    body = json.dumps(row.body(world)) if row.body else ""
    return getattr(client, row.method.lower())(
        path, body, content_type="application/json", **headers
    )


def snapshot():
    return [
        Product.objects.count(),
        list(Product.objects.order_by("pk").values_list("price", "stock", "version")),
        StockAdjustment.objects.count(),
        Shipment.objects.count(),
        ReportJob.objects.count(),
        AuditEntry.objects.count(),
    ]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row.method} {row.path}")
def test_a_suspended_shop_reads_but_cannot_write(api_client, api_world, row):
    api_world.a.vendor.status = VendorStatus.SUSPENDED
    api_world.a.vendor.save(update_fields=["status"])
    before = snapshot()

    response = call(api_client, api_world, row)

    if row.method == "GET":
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert response.json()["type"].endswith("/suspended")
        assert snapshot() == before
