"""Sales reports and personal-data exports are private files: outside MEDIA_ROOT, under random
names, downloaded only by those allowed (the vendor's members or staff; the export's owner)
until they expire, then deleted by the scheduled purge."""

import datetime
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from accounts import tasks as account_tasks
from accounts.models import DataExport
from shop.models import ReportJob, ReportKind, ReportStatus
from shop.services import reports as report_services
from shop.tasks import reports as report_tasks
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
WEEK_AGO = TODAY - datetime.timedelta(days=7)
IMMEDIATE = {
    "default": {
        "BACKEND": "django.tasks.backends.immediate.ImmediateBackend",
        "QUEUES": ["default", "critical", "emails", "analytics"],
    }
}


@pytest.fixture(autouse=True)
def roots(settings, tmp_path):
    """Media and private files in a fresh folder each, as the settings lay them out."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {
            "BACKEND": "project.files.PrivateFileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private"},
        },
    }
    settings.TASKS = IMMEDIATE
    return {"media": tmp_path / "media", "private": tmp_path / "private"}


@pytest.fixture
def vendor(vendor_member):
    return vendor_member.vendor_memberships.get().vendor


def _report(vendor, user, capture, kind=ReportKind.VENDOR_SALES_BY_DAY) -> ReportJob:
    with capture(execute=True):
        report = report_services.request_report(
            kind=kind, vendor=vendor, date_from=WEEK_AGO, date_to=TODAY, acting_user=user
        )
    report.refresh_from_db()
    assert report.status == ReportStatus.DONE
    return report


def test_a_report_is_stored_privately_under_a_random_name(
    vendor, vendor_member, roots, django_capture_on_commit_callbacks
):
    first = _report(vendor, vendor_member, django_capture_on_commit_callbacks)
    second = _report(vendor, vendor_member, django_capture_on_commit_callbacks)

    stored = roots["private"] / first.file.name
    assert stored.is_file()
    assert not roots["media"].exists() or not any(roots["media"].rglob("*.csv"))
    # Nothing of the vendor, the kind or the period in the name; two reports never collide.
    assert vendor.slug not in first.file.name
    assert WEEK_AGO.strftime("%Y%m%d") not in first.file.name
    assert len(Path(first.file.name).stem) >= 32
    assert first.file.name != second.file.name
    assert first.expires_at - first.finished_at == datetime.timedelta(
        seconds=django_settings.REPORT_TTL
    )
    with pytest.raises(ValueError, match="no URL"):
        first.file.url  # noqa: B018 - a private file has no address of its own


def test_only_the_vendors_members_download_its_report(
    client, vendor, vendor_member, roots, django_capture_on_commit_callbacks
):
    report = _report(vendor, vendor_member, django_capture_on_commit_callbacks)
    url = reverse("backoffice:report_download", args=[report.pk])

    # The old public address and any guess under /media/ answer nothing.
    assert client.get(f"/media/{report.file.name}").status_code == 404
    assert client.get(f"/media/reports/{report.download_name}").status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("accounts:login"))

    sign_in_with_second_factor(client, factories.VendorMembershipFactory().user)
    assert client.get(url).status_code == 404
    client.force_login(factories.UserFactory())
    assert client.get(url).status_code in (403, 404)

    sign_in_with_second_factor(client, vendor_member)
    download = client.get(url)
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="{report.download_name}"'
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert "no-store" in download["Cache-Control"]
    assert download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content).startswith(b"date,orders,units,revenue")


def test_an_expired_report_stops_downloading_and_the_purge_deletes_it(
    client, vendor, vendor_member, roots, django_capture_on_commit_callbacks
):
    report = _report(vendor, vendor_member, django_capture_on_commit_callbacks)
    kept = _report(vendor, vendor_member, django_capture_on_commit_callbacks)
    stored = roots["private"] / report.file.name
    ReportJob.objects.filter(pk=report.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    sign_in_with_second_factor(client, vendor_member)

    assert client.get(reverse("backoffice:report_download", args=[report.pk])).status_code == 404
    page = client.get(reverse("backoffice:report_detail", args=[report.pk])).content.decode()
    assert "Expired" in page
    assert reverse("backoffice:report_download", args=[report.pk]) not in page

    result = report_tasks.purge_expired_reports.enqueue()

    assert result.return_value == 1
    report.refresh_from_db()
    assert (report.status, report.file.name) == (ReportStatus.EXPIRED, "")
    assert not stored.exists()
    assert (roots["private"] / kept.file.name).is_file()
    assert client.get(reverse("backoffice:report_download", args=[kept.pk])).status_code == 200
    assert report_tasks.purge_expired_reports.enqueue().return_value == 0


def test_staff_download_the_marketplace_report_until_it_expires(
    client, staff, shopper, vendor, django_capture_on_commit_callbacks
):
    report = _report(None, staff, django_capture_on_commit_callbacks, ReportKind.MARKETPLACE_SALES)
    url = f"/admin/shop/reportjob/{report.pk}/download/"

    client.force_login(shopper)
    assert client.get(url)["Location"].startswith("/admin/login/")
    sign_in_with_second_factor(client, staff)
    download = client.get(url)
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="{report.download_name}"'
    assert report.download_name.startswith("marketplace-marketplace-sales-")
    assert "no-store" in download["Cache-Control"]

    ReportJob.objects.filter(pk=report.pk).update(expires_at=timezone.now())
    assert client.get(url).status_code == 404
    assert "Expired" in client.get("/admin/shop/reportjob/").content.decode()


def test_a_data_export_is_private_to_its_owner_and_purged_when_expired(
    client, shopper, roots, django_capture_on_commit_callbacks
):
    client.force_login(shopper)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:data_export_request"))
    export = DataExport.objects.get(user=shopper)
    stored = roots["private"] / export.file.name
    url = reverse("accounts:data_export_download", args=[export.pk])
    assert stored.is_file()
    assert not Path(export.file.name).name.startswith("bazaar-data-")  # nothing guessable
    assert len(mail.outbox) == 1

    download = client.get(url)
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    assert "no-store" in download["Cache-Control"]
    assert download["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/media/{export.file.name}").status_code == 404
    client.force_login(factories.UserFactory())
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302

    DataExport.objects.filter(pk=export.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert account_tasks.purge_expired_exports.enqueue().return_value == 1

    export.refresh_from_db()
    assert (export.status, export.file.name) == (DataExport.Status.EXPIRED, "")
    assert not stored.exists()
    client.force_login(shopper)
    assert client.get(url).status_code == 404


def test_the_purges_are_scheduled():
    # The schedules are a data migration's rows, which the transactional tests that may run
    # earlier flush: apply it again (it is idempotent), as the sweeper's schedule test does.
    migration = importlib.import_module(
        "project.background.migrations.0005_purge_expired_files_schedules"
    )
    migration.create_schedules(django_apps, None)
    migration.create_schedules(django_apps, None)
    rows = list(Schedule.objects.filter(name__startswith="purge-expired-").order_by("name"))
    schedules = {schedule.name: schedule for schedule in rows}

    assert [s.name for s in rows] == ["purge-expired-exports", "purge-expired-reports"]
    assert all(s.func == "project.background.schedules.run_scheduled" for s in schedules.values())
    assert "shop.tasks.reports.enqueue_report_purge" in schedules["purge-expired-reports"].args
    assert "accounts.tasks.enqueue_export_purge" in schedules["purge-expired-exports"].args


def test_private_files_may_not_live_under_media_root(tmp_path):
    env = {
        **os.environ,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PRIVATE_FILES_ROOT": str(tmp_path / "media" / "private"),
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and settings module
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "PRIVATE_FILES_ROOT must not be inside MEDIA_ROOT." in result.stderr
