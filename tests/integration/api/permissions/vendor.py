"""Permission rows of the vendor endpoints: vendor members only (shoppers and staff get 403);
vendor B asking for vendor A's objects gets 404, and its stock batch naming A's product is
refused whole (422) without saying whose it is."""

import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.utils import timezone

from project import files
from shop.models import ReportJob, ReportKind, ReportStatus
from tests.integration.api.permissions.rows import Row

PRODUCTS = "/api/v1/vendor/products"
ORDERS = "/api/v1/vendor/orders"
REPORTS = "/api/v1/vendor/reports"


def vendors(status: int, *, vendor_b: int | None = None) -> dict[str, int]:
    """Vendor members get `status` (vendor B `vendor_b` when it differs: A's objects)."""
    return {
        "anonymous": 401,
        "shopper": 403,
        "vendor_a": status,
        "vendor_b": status if vendor_b is None else vendor_b,
        "staff": 403,
    }


def finished_report(world: Any) -> ReportJob:
    """A ready sales report of vendor A, its CSV in the private storage."""
    today = timezone.localdate()
    report = ReportJob.objects.create(
        kind=ReportKind.VENDOR_SALES_BY_DAY,
        vendor=world.a.vendor,
        requested_by=world.a.member,
        date_from=today - datetime.timedelta(days=6),
        date_to=today,
        status=ReportStatus.DONE,
        progress=100,
        finished_at=timezone.now(),
        expires_at=timezone.now() + datetime.timedelta(days=1),
    )
    report.file.save(files.unguessable_name(".csv"), ContentFile(b"date,orders,units,revenue\n"))
    return report


def _product(world: Any) -> dict[str, int]:
    return {"product_id": world.a.product.pk}


def _order(world: Any) -> dict[str, int]:
    return {"order_id": world.a.order.pk}


def _report(world: Any) -> dict[str, int]:
    return {"report_id": finished_report(world).pk}


ROWS = [
    Row("GET", PRODUCTS, vendors(200)),
    Row(
        "POST",
        PRODUCTS,
        vendors(201),
        body=lambda world: {
            "name": "Desk lamp",
            "category": world.a.product.category.slug,
            "price": "24.50",
        },
    ),
    Row("GET", PRODUCTS + "/{product_id}", vendors(200, vendor_b=404), params=_product),
    Row(
        "PATCH",
        PRODUCTS + "/{product_id}",
        vendors(200, vendor_b=404),
        params=_product,
        body=lambda world: {"price": "12.00"},
        headers={"HTTP_IF_MATCH": '"1"'},
    ),
    Row(
        "POST",
        "/api/v1/vendor/stock",
        vendors(200, vendor_b=422),
        body=lambda world: {
            "items": [{"product_id": world.a.product.pk, "version": 1, "stock": 7}]
        },
    ),
    Row("GET", ORDERS, vendors(200)),
    Row("GET", ORDERS + "/{order_id}", vendors(200, vendor_b=404), params=_order),
    Row(
        "POST",
        ORDERS + "/{order_id}/ship",
        vendors(200, vendor_b=404),
        params=_order,
        body=lambda world: {"carrier": "DHL", "tracking_number": "JD0001"},
    ),
    Row(
        "POST",
        ORDERS + "/{order_id}/lines/{line_id}/cancel",
        vendors(200, vendor_b=404),
        params=lambda world: {"order_id": world.a.order.pk, "line_id": world.a.line.pk},
        body=lambda world: {"reason": "Broken in the warehouse"},
    ),
    Row("GET", REPORTS, vendors(200)),
    Row(
        "POST",
        REPORTS,
        vendors(202),
        body=lambda world: {
            "kind": "vendor_sales_by_day",
            "date_from": str(timezone.localdate() - datetime.timedelta(days=6)),
            "date_to": str(timezone.localdate()),
        },
    ),
    Row("GET", REPORTS + "/{report_id}", vendors(200, vendor_b=404), params=_report),
    Row("GET", REPORTS + "/{report_id}/download", vendors(200, vendor_b=404), params=_report),
]
