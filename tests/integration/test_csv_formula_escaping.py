"""CSV formula injection: every CSV we write (sales reports, the marketplace report, the
product export) goes through project.csv, which quotes cells a spreadsheet would run."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from backoffice.services import imports as import_services
from project import csv as safe_csv
from shop.models import LineStatus, OrderStatus, ReportJob, ReportKind
from shop.services import reports as report_services
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

EVIL = '=HYPERLINK("http://evil","x")'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (EVIL, "'" + EVIL),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Plain mug", "Plain mug"),
        ("a=b", "a=b"),
        # Genuine numbers stay numbers, so spreadsheets still add them up.
        (Decimal("-12.50"), Decimal("-12.50")),
        (-3, -3),
        ("-12.50", "-12.50"),
        ("+7", "+7"),
        (None, ""),
    ],
)
def test_escape_cell(value, written):
    assert safe_csv.escape_cell(value) == written


def test_unescape_reads_back_what_escape_wrote():
    for text in (EVIL, "-20% off", "@home", "plain", "'quoted on purpose"):
        assert safe_csv.unescape_cell(safe_csv.escape_cell(text)) == text


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))


@pytest.fixture
def evil_sales(db, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {
            "BACKEND": "project.files.PrivateFileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }
    membership = factories.VendorMembershipFactory(vendor__name=EVIL)
    product = factories.ProductFactory(vendor=membership.vendor, name="@SUM(1+1)*cmd|' /C calc'!A0")
    order = factories.OrderFactory(status=OrderStatus.PAID)
    factories.OrderLineFactory(
        order=order,
        product=product,
        quantity=1,
        line_total=product.price,
        status=LineStatus.PENDING,
    )
    return membership


def test_staff_marketplace_report_escapes_a_formula_shop_name(
    client, staff, evil_sales, django_capture_on_commit_callbacks
):
    sign_in_with_second_factor(client, staff)
    today = timezone.localdate()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/shop/reportjob/add/",
            {
                "kind": ReportKind.MARKETPLACE_SALES,
                "date_from": (today - datetime.timedelta(days=1)).isoformat(),
                "date_to": today.isoformat(),
            },
        )
    report = ReportJob.objects.get()

    download = client.get(f"/admin/shop/reportjob/{report.pk}/download/")

    [header, row] = _rows(b"".join(download.streaming_content))
    assert header == ["date", "vendor", "orders", "units", "revenue"]
    assert row[1] == "'" + EVIL
    assert row[2:] == ["1", "1", str(evil_sales.vendor.products.get().price)]


def test_vendor_report_and_product_export_escape_formula_cells(
    client, evil_sales, django_capture_on_commit_callbacks
):
    sign_in_with_second_factor(client, evil_sales.user)
    today = timezone.localdate()
    with django_capture_on_commit_callbacks(execute=True):
        report = report_services.request_report(
            kind=ReportKind.VENDOR_SALES_BY_PRODUCT,
            vendor=evil_sales.vendor,
            date_from=today,
            date_to=today,
            acting_user=evil_sales.user,
        )

    download = client.get(reverse("backoffice:report_download", args=[report.pk]))
    rows = _rows(b"".join(download.streaming_content))
    assert rows[1][0] == "'@SUM(1+1)*cmd|' /C calc'!A0"

    export = client.get(reverse("backoffice:product_export"))
    [_, product_row] = _rows(b"".join(export.streaming_content))
    assert product_row[1] == "'@SUM(1+1)*cmd|' /C calc'!A0"


def test_an_exported_product_file_imports_back_unchanged(client, evil_sales):
    product = evil_sales.vendor.products.get()
    sign_in_with_second_factor(client, evil_sales.user)
    exported = b"".join(client.get(reverse("backoffice:product_export")).streaming_content)
    assert b"'@SUM" in exported

    upload = SimpleUploadedFile("products.csv", exported, content_type="text/csv")
    rows, errors = import_services.validate_rows(vendor=evil_sales.vendor, upload=upload)

    assert errors == []
    assert [row.name for row in rows] == [product.name]
