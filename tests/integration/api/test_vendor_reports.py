"""The vendor API's sales reports: requested onto the report queue, polled, downloaded from
the private storage once done; another vendor's report is not found."""

import datetime

import pytest
from django.utils import timezone

from project.audit.models import AuditEntry
from shop.models import ReportJob
from tests.integration.api.permissions.vendor import finished_report
from tests.integration.api.vendor_calls import get, send

pytestmark = pytest.mark.django_db

REPORTS = "/api/v1/vendor/reports"
TODAY = timezone.localdate()


@pytest.fixture(autouse=True)
def private_files(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {**settings.STORAGES["private"], "OPTIONS": {"location": str(tmp_path)}},
    }


def request_body(**changes):
    return {
        "kind": "vendor_sales_by_day",
        "date_from": str(TODAY - datetime.timedelta(days=2)),
        "date_to": str(TODAY),
        **changes,
    }


def test_a_requested_report_is_queued_then_made_and_downloadable(
    api_client, api_world, django_capture_on_commit_callbacks
):
    member = api_world.a.member

    with django_capture_on_commit_callbacks(execute=True):
        response = send(api_client, "POST", REPORTS, member, request_body())

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    report = ReportJob.objects.get()
    assert (report.vendor, report.requested_by) == (api_world.a.vendor, member)
    assert response["Location"] == f"{REPORTS}/{report.pk}"
    status = get(api_client, response["Location"], member).json()
    assert (status["status"], status["progress"], status["downloadable"]) == ("done", 100, True)

    download = get(api_client, f"{REPORTS}/{report.pk}/download", member)

    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    rows = b"".join(download.streaming_content).decode().splitlines()
    assert rows[0] == "date,orders,units,revenue"
    assert len(rows) == 1 + 3  # one row a day
    assert AuditEntry.objects.filter(action="export.sales_report_downloaded").count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "marketplace_sales"}, "kind"),
        ({"date_to": str(TODAY + datetime.timedelta(days=1))}, "date_to"),
        ({"date_from": str(TODAY - datetime.timedelta(days=400))}, "date_to"),
        ({"date_from": "yesterday"}, "date_from"),
    ],
)
def test_a_bad_request_is_refused_by_field_and_queues_nothing(
    api_client, api_world, changes, field
):
    response = send(api_client, "POST", REPORTS, api_world.a.member, request_body(**changes))

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not ReportJob.objects.exists()


def test_lists_only_the_vendors_reports_newest_first(api_client, api_world):
    mine = [finished_report(api_world) for _ in range(3)]
    ReportJob.objects.create(
        kind="vendor_sales_by_day", vendor=api_world.b.vendor, date_from=TODAY, date_to=TODAY
    )

    first = get(api_client, REPORTS, api_world.a.member, {"limit": 2}).json()
    second = get(
        api_client, REPORTS, api_world.a.member, {"limit": 2, "cursor": first["next_cursor"]}
    ).json()

    assert [r["id"] for r in first["items"] + second["items"]] == [r.pk for r in mine[::-1]]
    assert second["next_cursor"] is None


def test_a_report_not_done_yet_cannot_be_downloaded(api_client, api_world):
    report = ReportJob.objects.create(
        kind="vendor_sales_by_day", vendor=api_world.a.vendor, date_from=TODAY, date_to=TODAY
    )

    response = get(api_client, f"{REPORTS}/{report.pk}/download", api_world.a.member)

    assert response.status_code == 409
    assert response.json()["type"].endswith("/report-not-ready")


def test_an_expired_report_is_gone(api_client, api_world):
    report = finished_report(api_world)
    ReportJob.objects.filter(pk=report.pk).update(expires_at=timezone.now())

    status = get(api_client, f"{REPORTS}/{report.pk}", api_world.a.member).json()
    response = get(api_client, f"{REPORTS}/{report.pk}/download", api_world.a.member)

    assert status["status"] == "expired"
    assert response.status_code == 410


def test_another_vendors_report_is_not_found(api_client, api_world):
    report = finished_report(api_world)

    status = get(api_client, f"{REPORTS}/{report.pk}", api_world.b.member)
    download = get(api_client, f"{REPORTS}/{report.pk}/download", api_world.b.member)

    assert (status.status_code, download.status_code) == (404, 404)
    assert not AuditEntry.objects.filter(action="export.sales_report_downloaded").exists()
