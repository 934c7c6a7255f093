"""A report's progress in the backoffice follows its job without a reload, in the real
ASGI server with the vendor's live socket open: the status fragment polls while the report is
queued or running (progress is no event, so it polls beside the socket) and stops once ready."""

import datetime

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from backoffice import handlers as backoffice_handlers
from shop.models import ReportJob, ReportKind, ReportStatus
from tests import factories
from tests.fixtures import twofactor
from tests.fixtures.asgi_server import asgi_server  # noqa: F401 - the fixture

POLL_TIMEOUT = 10_000


@pytest.fixture
def owner(transactional_db):
    vendor = factories.VendorFactory(name="Oak & Iron")
    return factories.VendorMembershipFactory(vendor=vendor).user


def advance(report: ReportJob, **fields) -> None:
    """What the report task records as it goes (it runs inline in tests, so the test does)."""
    ReportJob.objects.filter(pk=report.pk).update(**fields)


def sign_in(page, server, user) -> None:
    client = Client()
    twofactor.sign_in_with_second_factor(client, user)  # shop owners need both factors
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": server.url}]
    )


def test_the_report_page_follows_the_job_to_ready_without_a_reload(
    page,
    asgi_server,  # noqa: F811 - the fixture
    owner,
    csp_violations,
):
    vendor = owner.vendor_memberships.get().vendor
    report = ReportJob.objects.create(
        kind=ReportKind.VENDOR_SALES_BY_DAY,
        vendor=vendor,
        requested_by=owner,
        date_from=datetime.date(2026, 11, 1),
        date_to=datetime.date(2026, 11, 30),
    )
    sign_in(page, asgi_server, owner)
    page.goto(f"{asgi_server.url}/backoffice/reports/{report.pk}/")
    # The vendor's live socket is open: polls that only stand in for it are skipped.
    page.wait_for_selector("[data-live-connected]", state="attached", timeout=POLL_TIMEOUT)
    page.evaluate("document.documentElement.dataset.e2eMarker = 'still-here'")
    status = page.locator(f"#report-status-{report.pk}")
    expect(status).to_contain_text("Queued")
    expect(status).to_contain_text("0%")

    advance(report, status=ReportStatus.RUNNING, progress=40)
    expect(status).to_contain_text("Running", timeout=POLL_TIMEOUT)
    expect(status).to_contain_text("40%")
    expect(status.get_by_role("progressbar")).to_have_attribute("value", "40")

    report.refresh_from_db()
    report.file.save("sales.csv", ContentFile(b"day,orders\n"), save=False)
    advance(
        report,
        status=ReportStatus.DONE,
        progress=100,
        rows_written=30,
        file=report.file.name,
        finished_at=timezone.now(),
        expires_at=timezone.now() + datetime.timedelta(days=7),
    )
    expect(status).to_contain_text("Ready", timeout=POLL_TIMEOUT)
    expect(status.get_by_role("link", name="Download CSV")).to_be_visible()
    expect(status).to_contain_text("30 rows")
    # Done: the poll stops.
    expect(status).not_to_have_attribute("hx-trigger", "every 2s")
    assert page.evaluate("document.documentElement.dataset.e2eMarker") == "still-here"
    assert csp_violations == []


def test_the_report_status_is_pushed_over_the_vendors_socket(
    page,
    asgi_server,  # noqa: F811 - the fixture
    owner,
):
    vendor = owner.vendor_memberships.get().vendor
    report = ReportJob.objects.create(
        kind=ReportKind.VENDOR_SALES_BY_DAY,
        vendor=vendor,
        requested_by=owner,
        date_from=datetime.date(2026, 11, 1),
        date_to=datetime.date(2026, 11, 30),
    )
    sign_in(page, asgi_server, owner)
    page.goto(f"{asgi_server.url}/backoffice/reports/")
    page.wait_for_selector("[data-live-connected]", state="attached", timeout=POLL_TIMEOUT)
    # No poll gets through: what changes now came over the socket.
    page.route(
        f"**/backoffice/reports/{report.pk}/",
        lambda route: (
            route.abort() if route.request.headers.get("hx-request") else route.continue_()
        ),
    )
    status = page.locator(f"#report-status-{report.pk}")
    expect(status).to_contain_text("Queued")

    advance(report, status=ReportStatus.RUNNING, progress=70)
    backoffice_handlers.publish_report_status(report.pk)  # as the report task does

    expect(status).to_contain_text("Running", timeout=POLL_TIMEOUT)
    expect(status).to_contain_text("70%")
