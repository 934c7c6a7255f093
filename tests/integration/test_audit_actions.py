"""One test per audited action: the entry says what happened, who did it, in which shop, the
before/after of what changed, and where from (client address, request id).

Requests come from REMOTE_ADDR 203.0.113.7 with X-Request-ID req-audit-1 and a browser's
User-Agent (no trusted proxy, so the address is the peer's own)."""

import datetime
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataExport, User
from backoffice import tokens
from backoffice.services import onboarding, team
from project.audit.models import AuditEntry
from shop.models import (
    OrderStatus,
    Product,
    ReportJob,
    Vendor,
    VendorInvitation,
    VendorMembership,
    VendorStatus,
)
from shop.services import payments, reports
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor
from tests.integration import payments_support

pytestmark = pytest.mark.django_db

IP = "203.0.113.7"
REQUEST_ID = "req-audit-1"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
FROM = {"REMOTE_ADDR": IP, "HTTP_X_REQUEST_ID": REQUEST_ID, "HTTP_USER_AGENT": AGENT}


def entry(action: str) -> AuditEntry:
    """The one entry of this action (fails if there are none or several)."""
    return AuditEntry.objects.get(action=action)


def assert_from_the_request(found: AuditEntry) -> None:
    assert (found.ip, found.request_id, found.user_agent) == (IP, REQUEST_ID, AGENT)


@pytest.fixture
def owner(db):
    return factories.UserFactory(email="owner@example.com")


@pytest.fixture
def vendor(owner):
    return factories.VendorMembershipFactory(user=owner, vendor__name="Pottery Barn").vendor


@pytest.fixture
def owner_client(owner, vendor):
    client = Client()
    sign_in_with_second_factor(client, owner)
    return client


@pytest.fixture
def staff_client(staff):
    client = Client()
    sign_in_with_second_factor(client, staff)
    return client


@pytest.fixture
def mug(vendor):
    return factories.ProductFactory(
        vendor=vendor, name="Stoneware Mug", price=Decimal("12.00"), stock=10
    )


# --- Sign-in, sign-out, passwords ------------------------------------------------------------


def test_sign_in_is_audited(client, shopper):
    client.post(
        reverse("accounts:login"),
        {"email": shopper.email, "password": factories.PASSWORD},
        **FROM,
    )

    found = entry("auth.login")
    assert (found.actor_id, found.actor_email, found.vendor_id) == (shopper.pk, shopper.email, None)
    assert_from_the_request(found)


def test_failed_sign_in_is_audited_against_the_account_without_what_was_typed(client, shopper):
    client.post(
        reverse("accounts:login"), {"email": shopper.email, "password": "not-it-at-all"}, **FROM
    )

    found = entry("auth.login_failed")
    assert found.actor_id is None
    assert (found.target_type, found.target_id) == ("accounts.user", str(shopper.pk))
    assert found.metadata == {"account_exists": True, "path": "/accounts/login/"}
    assert "not-it-at-all" not in str(found.metadata) + str(found.changes)
    assert_from_the_request(found)


def test_failed_sign_in_for_an_unknown_address_stores_no_address(client):
    client.post(
        reverse("accounts:login"), {"email": "nobody@example.com", "password": "whatever1"}, **FROM
    )

    found = entry("auth.login_failed")
    assert (found.target_id, found.metadata["account_exists"]) == ("", False)
    assert "nobody@example.com" not in str(found.metadata) + found.target_repr


def test_sign_out_is_audited(client, shopper):
    client.force_login(shopper)

    client.post(reverse("accounts:logout"), **FROM)

    found = entry("auth.logout")
    assert found.actor_id == shopper.pk
    assert_from_the_request(found)


def test_password_change_is_audited_without_the_password(client, shopper):
    client.force_login(shopper)

    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": factories.PASSWORD,
            "new_password1": "a-Much-better-secret-42",
            "new_password2": "a-Much-better-secret-42",
        },
        **FROM,
    )

    assert response.status_code == 302
    found = entry("auth.password_changed")
    assert (found.actor_id, found.target_id) == (shopper.pk, str(shopper.pk))
    assert found.changes == {}
    assert "a-Much-better-secret-42" not in str(found.metadata)
    assert_from_the_request(found)


def test_password_reset_request_and_completion_are_audited(
    client, shopper, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:password_reset"), {"email": shopper.email}, **FROM)
    link = re.search(r"https?://\S+/accounts/reset/\S+/", mail.outbox[-1].body).group(0)
    form_page = client.get(link, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {
            "new_password1": "Fresh-secret-after-reset-7",
            "new_password2": "Fresh-secret-after-reset-7",
        },
        **FROM,
    )

    requested = entry("auth.password_reset_requested")
    assert requested.actor_id is None
    assert (requested.target_id, requested.metadata) == (str(shopper.pk), {"account_exists": True})
    assert_from_the_request(requested)
    reset = entry("auth.password_reset")
    assert (reset.actor_id, reset.target_id) == (shopper.pk, str(shopper.pk))
    assert_from_the_request(reset)


def test_password_reset_request_for_an_unknown_address_is_audited_without_it(client):
    client.post(reverse("accounts:password_reset"), {"email": "ghost@example.com"}, **FROM)

    found = entry("auth.password_reset_requested")
    assert (found.target_id, found.metadata) == ("", {"account_exists": False})


# --- Team: roles and membership --------------------------------------------------------------


def test_inviting_a_member_is_audited_with_the_role(owner_client, owner, vendor):
    owner_client.post(
        reverse("backoffice:member_list"), {"email": "new@example.com", "role": "staff"}, **FROM
    )

    found = entry("team.invited")
    assert (found.actor_id, found.vendor_id, found.vendor_name) == (
        owner.pk,
        vendor.pk,
        vendor.name,
    )
    assert found.target_type == "shop.vendorinvitation"
    assert found.changes == {"role": [None, "staff"]}
    assert_from_the_request(found)


def test_accepting_an_invitation_is_audited_as_the_new_member(owner, vendor):
    invitation = team.invite_member(
        vendor=vendor, email="new@example.com", role="staff", acting_user=owner
    )
    newcomer = factories.UserFactory(email="new@example.com")

    membership = team.accept_invitation(
        token=tokens.make_invitation_token(invitation), user=newcomer
    )

    found = entry("team.invitation_accepted")
    assert (found.actor_id, found.vendor_id) == (newcomer.pk, vendor.pk)
    assert (found.target_type, found.target_id) == ("shop.vendormembership", str(membership.pk))
    assert found.changes == {"role": [None, "staff"]}
    assert found.metadata == {"invitation_id": invitation.pk}


def test_removing_a_member_is_audited_with_the_role_they_had(owner_client, owner, vendor):
    helper = factories.VendorMembershipFactory(
        vendor=vendor, user__email="helper@example.com", role=VendorMembership.Role.STAFF
    )

    owner_client.post(reverse("backoffice:member_remove", args=[helper.pk]), **FROM)

    assert not VendorMembership.objects.filter(pk=helper.pk).exists()
    found = entry("team.member_removed")
    assert (found.actor_id, found.vendor_id) == (owner.pk, vendor.pk)
    assert found.changes == {"role": ["staff", None]}
    assert found.metadata == {"user_id": helper.user_id}
    assert found.target_repr == f"helper@example.com @ {vendor.name} (staff)"
    assert_from_the_request(found)


def test_withdrawing_an_invitation_is_audited(owner_client, owner, vendor):
    invitation = factories.VendorInvitationFactory(vendor=vendor, invited_by=owner)

    owner_client.post(reverse("backoffice:invitation_revoke", args=[invitation.pk]), **FROM)

    found = entry("team.invitation_revoked")
    assert (found.actor_id, found.vendor_id, found.target_id) == (
        owner.pk,
        vendor.pk,
        str(invitation.pk),
    )
    assert_from_the_request(found)


def test_a_role_change_in_the_admin_is_audited_with_before_and_after(staff_client, staff, vendor):
    helper = factories.VendorMembershipFactory(vendor=vendor, role=VendorMembership.Role.STAFF)

    response = staff_client.post(
        reverse("admin:shop_vendormembership_change", args=[helper.pk]),
        {"vendor": vendor.pk, "user": helper.user_id, "role": "owner"},
        **FROM,
    )

    assert response.status_code == 302, response.content[:2000]
    found = entry("admin.changed")
    assert (found.actor_id, found.vendor_id) == (staff.pk, vendor.pk)
    assert found.changes == {"role": ["staff", "owner"]}
    assert_from_the_request(found)


# --- Vendor approval and suspension ----------------------------------------------------------


def test_applying_to_sell_is_audited_as_the_applicant_becoming_owner(shopper):
    vendor = onboarding.apply_to_sell(
        user=shopper,
        name="Clay Works",
        description="Hand-made",
        contact_email="clay@example.com",
        contact_phone="",
        payout_details="Sam Shopper, DE89370400440532013000",
    )

    found = entry("vendor.applied")
    assert (found.actor_id, found.vendor_id) == (shopper.pk, vendor.pk)
    assert found.changes == {"role": [None, "owner"]}


def test_approving_a_vendor_with_the_admin_button_is_audited(staff_client, staff):
    vendor = factories.VendorFactory(status=VendorStatus.PENDING, name="Clay Works")

    staff_client.post(
        reverse("admin:shop_vendor_decide", args=[vendor.pk, "approve"]), {"note": ""}, **FROM
    )

    found = entry("vendor.approved")
    assert (found.actor_id, found.vendor_id, found.target_id) == (
        staff.pk,
        vendor.pk,
        str(vendor.pk),
    )
    assert found.changes == {"status": ["pending", "approved"]}
    assert_from_the_request(found)


def test_suspending_a_vendor_is_audited_with_the_reason(staff, vendor):
    onboarding.suspend_vendor(vendor=vendor, acting_user=staff, note="Counterfeit goods")

    found = entry("vendor.suspended")
    assert (found.actor_id, found.vendor_id) == (staff.pk, vendor.pk)
    assert found.changes == {"status": ["approved", "suspended"]}
    assert found.metadata == {"note": "Counterfeit goods"}


# --- Prices and stock ------------------------------------------------------------------------


def test_a_price_change_in_the_product_list_is_audited(owner_client, owner, vendor, mug):
    owner_client.post(
        reverse("backoffice:product_inline_edit", args=[mug.pk]),
        {"price": "14.50", "stock": "10", "stock_seen": "10"},
        **FROM,
    )

    assert Product.objects.get(pk=mug.pk).price == Decimal("14.50")
    found = entry("product.price_changed")
    assert (found.actor_id, found.vendor_id, found.target_id) == (owner.pk, vendor.pk, str(mug.pk))
    assert found.changes == {"price": ["12.00", "14.50"]}
    assert_from_the_request(found)
    assert not AuditEntry.objects.filter(action="stock.changed").exists()


def test_a_stock_adjustment_is_audited_with_before_and_after(owner_client, owner, vendor, mug):
    owner_client.post(
        reverse("backoffice:stock_detail", args=[mug.pk]),
        {"change": "-3", "reason": "damaged", "note": "Dropped a box"},
        **FROM,
    )

    found = entry("stock.changed")
    assert (found.actor_id, found.vendor_id, found.target_id) == (owner.pk, vendor.pk, str(mug.pk))
    assert found.changes == {"stock": [10, 7]}
    assert found.metadata == {"reason": "damaged", "note": "Dropped a box"}
    assert_from_the_request(found)


# --- Orders, payments, refunds ---------------------------------------------------------------


def test_a_captured_payment_is_audited_with_the_order_becoming_paid(shopper, mug):
    order = payments_support.place_order(shopper, (mug, 2))

    payment = payments.start_payment(order=order, card_token=payments_support.card())
    payments.process_payment(payment_id=payment.pk)

    started, captured = AuditEntry.objects.filter(action="payment.status_changed").order_by("id")
    assert (started.actor_id, started.changes) == (shopper.pk, {"status": [None, "pending"]})
    assert captured.changes == {"status": ["processing", "captured"]}
    paid = entry("order.status_changed")
    assert (paid.target_type, paid.target_id) == ("shop.order", str(order.pk))
    assert paid.changes == {"status": ["pending_payment", "paid"]}


def test_a_declined_payment_is_audited_with_the_order_cancelled(shopper, mug):
    order = payments_support.place_order(shopper, (mug, 1))

    payment = payments.start_payment(
        order=order, card_token=payments_support.card(payments_support.DECLINE)
    )
    payments.process_payment(payment_id=payment.pk)

    failed = AuditEntry.objects.filter(action="payment.status_changed").order_by("id").last()
    assert failed.changes == {"status": ["processing", "failed"]}
    cancelled = entry("order.status_changed")
    assert cancelled.changes == {"status": ["pending_payment", "cancelled"]}
    assert cancelled.metadata == {"reason": "Your card was declined."}


def _paid_order(shopper, mug):
    order = payments_support.place_order(shopper, (mug, 2))
    payment = payments.start_payment(order=order, card_token=payments_support.card())
    payments.process_payment(payment_id=payment.pk)
    return order


def test_shipping_is_audited_per_line_and_the_order_becomes_shipped(
    owner_client, owner, vendor, shopper, mug
):
    order = _paid_order(shopper, mug)
    line = order.lines.get()

    owner_client.post(
        reverse("backoffice:order_ship", args=[order.pk]),
        {"carrier": "DHL", "tracking_number": "JD0001"},
        **FROM,
    )

    shipped = entry("order.lines_shipped")
    assert (shipped.actor_id, shipped.vendor_id, shipped.target_id) == (
        owner.pk,
        vendor.pk,
        str(order.pk),
    )
    assert shipped.changes == {f"line {line.pk} status": ["pending", "shipped"]}
    assert_from_the_request(shipped)
    moved = AuditEntry.objects.filter(action="order.status_changed").order_by("id").last()
    assert moved.changes == {"status": ["paid", "shipped"]}
    assert moved.request_id == REQUEST_ID


def test_cancelling_a_line_is_audited_with_its_refund(
    owner_client, owner, vendor, shopper, mug, django_capture_on_commit_callbacks
):
    order = _paid_order(shopper, mug)
    line = order.lines.get()

    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            reverse("backoffice:order_line_cancel", args=[order.pk, line.pk]),
            {"reason": "Broken in the warehouse"},
            **FROM,
        )

    cancelled = entry("order.line_cancelled")
    assert (cancelled.actor_id, cancelled.vendor_id, cancelled.target_id) == (
        owner.pk,
        vendor.pk,
        str(line.pk),
    )
    assert cancelled.changes == {"status": ["pending", "cancelled"]}
    assert_from_the_request(cancelled)
    requested = entry("refund.requested")
    assert (requested.actor_id, requested.vendor_id) == (owner.pk, vendor.pk)
    assert requested.changes == {"amount": [None, "24.00"]}
    refunded = entry("refund.status_changed")
    assert refunded.changes == {"status": ["processing", "succeeded"]}
    assert refunded.vendor_id == vendor.pk


def test_a_staff_refund_of_the_whole_order_is_audited(
    staff_client, staff, shopper, mug, django_capture_on_commit_callbacks
):
    order = _paid_order(shopper, mug)

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:shop_order_changelist"),
            {"action": "refund_whole_order", "_selected_action": [order.pk], "index": 0},
            **FROM,
        )

    requested = entry("refund.requested")
    assert (requested.actor_id, requested.vendor_id) == (staff.pk, None)
    assert requested.changes == {"amount": [None, "24.00"]}
    action = entry("admin.action")
    assert action.metadata["action"] == "refund_whole_order"
    assert action.metadata["selected"] == [str(order.pk)]
    refunded = AuditEntry.objects.filter(action="order.status_changed").order_by("id").last()
    assert refunded.changes == {"status": ["paid", "refunded"]}


# --- Data exports ----------------------------------------------------------------------------


def test_a_personal_data_export_request_and_download_are_audited(client, shopper):
    client.force_login(shopper)

    client.post(reverse("accounts:data_export_request"), **FROM)
    export = DataExport.objects.get(user=shopper)
    response = client.get(reverse("accounts:data_export_download", args=[export.pk]), **FROM)

    assert response.status_code == 200
    requested = entry("export.personal_data_requested")
    assert (requested.actor_id, requested.target_id) == (shopper.pk, str(export.pk))
    assert_from_the_request(requested)
    downloaded = entry("export.personal_data_downloaded")
    assert (downloaded.actor_id, downloaded.target_id) == (shopper.pk, str(export.pk))
    assert_from_the_request(downloaded)


def test_a_sales_report_request_generation_and_download_are_audited(
    owner_client, owner, vendor, django_capture_on_commit_callbacks
):
    today = timezone.localdate()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            reverse("backoffice:report_list"),
            {
                "kind": "vendor_sales_by_day",
                "date_from": (today - datetime.timedelta(days=7)).isoformat(),
                "date_to": today.isoformat(),
            },
            **FROM,
        )
    report = ReportJob.objects.get(vendor=vendor)
    owner_client.get(reverse("backoffice:report_download", args=[report.pk]), **FROM)

    requested = entry("export.sales_report_requested")
    assert (requested.actor_id, requested.vendor_id, requested.target_id) == (
        owner.pk,
        vendor.pk,
        str(report.pk),
    )
    assert requested.metadata["kind"] == "vendor_sales_by_day"
    generated = entry("export.sales_report_generated")
    assert (generated.vendor_id, generated.metadata["rows"]) == (vendor.pk, 8)
    downloaded = entry("export.sales_report_downloaded")
    assert (downloaded.actor_id, downloaded.vendor_id) == (owner.pk, vendor.pk)
    assert_from_the_request(downloaded)


# --- The Django admin ------------------------------------------------------------------------


def test_admin_add_change_and_delete_are_audited(staff_client, staff):
    staff_client.post(reverse("admin:auth_group_add"), {"name": "Support"}, **FROM)
    group = Group.objects.get(name="Support")
    staff_client.post(
        reverse("admin:auth_group_change", args=[group.pk]), {"name": "Support team"}, **FROM
    )
    staff_client.post(reverse("admin:auth_group_delete", args=[group.pk]), {"post": "yes"}, **FROM)

    added, changed, deleted = (
        entry("admin.added"),
        entry("admin.changed"),
        entry("admin.deleted"),
    )
    assert (added.actor_id, added.target_type, added.changes) == (
        staff.pk,
        "auth.group",
        {"name": [None, "Support"]},
    )
    assert changed.changes == {"name": ["Support", "Support team"]}
    assert (deleted.target_id, deleted.target_repr) == (str(group.pk), "Support team")
    for found in (added, changed, deleted):
        assert_from_the_request(found)


def test_an_admin_price_change_is_audited_with_before_and_after(staff_client, staff, vendor, mug):
    data = {
        "vendor": vendor.pk,
        "category": mug.category_id,
        "name": mug.name,
        "slug": mug.slug,
        "description": mug.description,
        "price": "15.00",
        "stock": mug.stock,
        "is_active": "on",
    }

    response = staff_client.post(reverse("admin:shop_product_change", args=[mug.pk]), data, **FROM)

    assert response.status_code == 302, response.content[:3000]
    found = entry("admin.changed")
    assert (found.actor_id, found.vendor_id) == (staff.pk, vendor.pk)
    assert found.changes == {"price": ["12.00", "15.00"]}


def test_an_admin_password_change_is_audited_redacted(staff_client, staff, shopper):
    staff_client.post(
        reverse("admin:auth_user_password_change", args=[shopper.pk]),
        {
            "password1": "Admin-chosen-secret-9",
            "password2": "Admin-chosen-secret-9",
            "usable_password": "true",
        },
        **FROM,
    )

    found = entry("admin.changed")
    assert (found.actor_id, found.target_id) == (staff.pk, str(shopper.pk))
    assert found.changes == {"password": ["[redacted]", "[redacted]"]}
    assert "Admin-chosen-secret-9" not in str(found.metadata)


def test_an_admin_changelist_action_is_audited(staff_client, staff):
    pending = factories.VendorFactory(status=VendorStatus.PENDING, name="Clay Works")

    staff_client.post(
        reverse("admin:shop_vendor_changelist"),
        {"action": "approve_selected", "_selected_action": [pending.pk], "index": 0},
        **FROM,
    )

    assert Vendor.objects.get(pk=pending.pk).status == VendorStatus.APPROVED
    action = entry("admin.action")
    assert action.actor_id == staff.pk
    assert action.metadata == {
        "action": "approve_selected",
        "model": "shop.vendor",
        "selected": [str(pending.pk)],
        "select_across": False,
    }
    assert_from_the_request(action)
    assert entry("vendor.approved").actor_id == staff.pk


def test_deleting_a_user_and_a_vendor_keeps_their_history(staff, owner, vendor):
    invitation = team.invite_member(
        vendor=vendor, email="new@example.com", role="staff", acting_user=owner
    )
    VendorInvitation.objects.filter(pk=invitation.pk).delete()
    VendorMembership.objects.filter(vendor=vendor).delete()
    Vendor.objects.filter(pk=vendor.pk).delete()
    User.objects.filter(pk=owner.pk).delete()

    found = entry("team.invited")
    assert (found.actor_id, found.actor_email) == (owner.pk, "owner@example.com")
    assert (found.vendor_id, found.vendor_name) == (vendor.pk, "Pottery Barn")


def test_order_status_changes_record_who_when_a_service_passes_the_actor(staff, shopper, mug):
    from shop.services import orders

    order = payments_support.place_order(shopper, (mug, 1))

    orders.transition_order(
        order=order, to=OrderStatus.CANCELLED, reason="Shopper asked", acting_user=staff
    )

    found = entry("order.status_changed")
    assert (found.actor_id, found.changes) == (
        staff.pk,
        {"status": ["pending_payment", "cancelled"]},
    )
    assert found.metadata == {"reason": "Shopper asked"}


def test_sales_report_generation_by_a_worker_has_no_address(
    vendor, django_capture_on_commit_callbacks
):
    today = timezone.localdate()

    with django_capture_on_commit_callbacks(execute=True):
        report = reports.request_report(
            kind="vendor_sales_by_day",
            vendor=vendor,
            date_from=today,
            date_to=today,
            acting_user=None,
        )

    generated = entry("export.sales_report_generated")
    assert (generated.target_id, generated.ip, generated.request_id) == (str(report.pk), "", "")


def test_an_admin_action_that_asks_for_a_note_is_audited_once_when_confirmed(staff_client, staff):
    vendor = factories.VendorFactory(name="Clay Works")
    changelist = reverse("admin:shop_vendor_changelist")
    chosen = {"action": "suspend_selected", "_selected_action": [vendor.pk], "index": 0}

    note_page = staff_client.post(changelist, chosen, **FROM)
    staff_client.post(changelist, {**chosen, "confirm": "yes", "note": "Fake goods"}, **FROM)

    assert note_page.status_code == 200
    assert AuditEntry.objects.filter(action="admin.action").count() == 1
    assert entry("admin.action").metadata["action"] == "suspend_selected"
    assert entry("vendor.suspended").metadata == {"note": "Fake goods"}
