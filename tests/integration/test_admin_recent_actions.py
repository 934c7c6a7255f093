"""The admin's "Recent actions" (and each object's history) show what staff did through the
custom buttons and actions, not only through the change forms."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from project.audit.models import AuditEntry
from project.background import runner
from project.background.models import TaskRecord
from shop.models import OrderStatus, ReportJob, VendorStatus
from shop.services import payments as payment_services
from shop.services import reports as report_services
from tests import factories
from tests.fixtures import tasks as fixture_tasks
from tests.fixtures.twofactor import enrol, sign_in_with_second_factor
from tests.integration.payments_support import card, place_order
from tests.integration.test_background_monitoring import q2_backend  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_ledger(settings, tmp_path):
    settings.SIMULATED_GATEWAY_LEDGER_PATH = tmp_path / "gateway.sqlite3"


@pytest.fixture
def staff_client(client, staff):
    sign_in_with_second_factor(client, staff)
    return client


def recent_action(obj) -> LogEntry:
    """The one admin log entry about `obj` (fails if there are none or several)."""
    return LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    )


def assert_logged(obj, staff, message: str) -> None:
    logged = recent_action(obj)
    assert (logged.user_id, logged.action_flag) == (staff.pk, CHANGE)
    assert logged.get_change_message() == message
    assert logged.object_repr == str(obj)


def test_a_vendor_decision_button_is_in_recent_actions(
    staff_client, staff, django_capture_on_commit_callbacks
):
    vendor = factories.VendorFactory(status=VendorStatus.APPROVED, name="Flax House")
    url = reverse("admin:shop_vendor_decide", args=[vendor.pk, "suspend"])

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url, {"note": "Late shipments"})

    assert_logged(vendor, staff, "Suspended: Late shipments.")
    # The service audited the suspension; the admin log adds no second audit entry.
    assert not AuditEntry.objects.filter(action="admin.changed").exists()
    home = staff_client.get(reverse("admin:index")).content.decode()
    assert "Flax House" in home


def test_a_vendor_decision_action_is_in_recent_actions(
    staff_client, staff, django_capture_on_commit_callbacks
):
    vendor = factories.VendorFactory(status=VendorStatus.PENDING, name="Oak & Ash")

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:shop_vendor_changelist"),
            {"action": "approve_selected", "_selected_action": [vendor.pk]},
        )

    assert_logged(vendor, staff, "Approved.")


def test_a_whole_order_refund_is_in_recent_actions(
    staff_client, staff, shopper, django_capture_on_commit_callbacks
):
    product = factories.ProductFactory(price=Decimal("24.50"))
    order = place_order(shopper, (product, 2))
    with django_capture_on_commit_callbacks(execute=True):
        payment_services.start_payment(order=order, card_token=card())

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:shop_order_changelist"),
            {"action": "refund_whole_order", "_selected_action": [order.pk]},
        )

    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert_logged(order, staff, "Refund of the whole order requested: 49.00 EUR.")


def test_a_report_download_is_in_recent_actions(
    staff_client, staff, django_capture_on_commit_callbacks
):
    vendor = factories.VendorFactory()
    today = timezone.localdate()
    with django_capture_on_commit_callbacks(execute=True):
        report = report_services.request_report(
            kind="vendor_sales_by_day",
            vendor=vendor,
            date_from=today - datetime.timedelta(days=2),
            date_to=today,
            acting_user=staff,
        )
    report = ReportJob.objects.get(pk=report.pk)

    response = staff_client.get(reverse("admin:shop_reportjob_download", args=[report.pk]))

    assert response.status_code == 200
    assert_logged(report, staff, "Downloaded the CSV file.")


def test_retry_now_is_in_recent_actions(staff_client, staff, q2_backend, settings):  # noqa: F811
    result = fixture_tasks.always_fails.enqueue(order_id=7)
    for _ in range(3):
        TaskRecord.objects.filter(pk=result.id).update(next_attempt_at=timezone.now())
        runner.run_task(result.id)

    staff_client.post(
        reverse("admin:background_taskrecord_changelist"),
        {"action": "retry_now", "_selected_action": [result.id]},
    )

    record = TaskRecord.objects.get(pk=result.id)
    assert_logged(
        record,
        staff,
        f"Retried now: {settings.TASK_MAX_ATTEMPTS} fresh attempts after 3 failed.",
    )


def test_a_two_factor_reset_is_in_recent_actions(staff_client, staff, vendor_member):
    enrol(vendor_member)

    staff_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "reset_two_factor", "_selected_action": [vendor_member.pk]},
    )

    assert_logged(vendor_member, staff, "Two-factor sign-in reset.")
