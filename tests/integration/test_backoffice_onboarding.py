"""Becoming a vendor: applying, staff decisions (services, admin actions and buttons)."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backoffice.services import onboarding
from shop.models import Vendor, VendorMembership, VendorStatus
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

VALID_APPLICATION = {
    "name": "Oak & Iron",
    "description": "Hand-made kitchen tools.",
    "contact_email": "hello@oak-iron.example",
    "contact_phone": "+49 30 1234567",
    "account_holder": "Oak & Iron GmbH",
    "iban": "DE89 3704 0044 0532 0130 00",
}


def _apply(user, **overrides):
    data = {
        "name": "Oak & Iron",
        "description": "Hand-made kitchen tools.",
        "contact_email": "hello@oak-iron.example",
        "contact_phone": "",
        "payout_details": "Oak & Iron GmbH, IBAN DE89370400440532013000",
        **overrides,
    }
    return onboarding.apply_to_sell(user=user, **data)


def _vendor_state(vendor):
    vendor = Vendor.objects.get(pk=vendor.pk)
    return (vendor.status, vendor.review_note, vendor.reviewed_at)


# --- Services ------------------------------------------------------------------------------


def test_applying_creates_a_pending_vendor_owned_by_the_applicant(
    shopper, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        vendor = _apply(shopper)

    assert vendor.status == VendorStatus.PENDING
    assert (vendor.slug, vendor.applied_by, vendor.contact_email) == (
        "oak-iron",
        shopper,
        "hello@oak-iron.example",
    )
    membership = VendorMembership.objects.get(vendor=vendor)
    assert (membership.user, membership.role) == (shopper, VendorMembership.Role.OWNER)
    assert [m.to for m in mail.outbox] == [[shopper.email]]
    assert "We received your application" in mail.outbox[0].subject


def test_slugs_stay_unique(db):
    factories.VendorFactory(name="Oak & Iron", slug="oak-iron")
    vendor = _apply(factories.UserFactory())
    assert vendor.slug == "oak-iron-2"


def test_an_unverified_user_cannot_apply(db):
    user = factories.UserFactory(email_verified_at=None)
    with pytest.raises(onboarding.ApplicationNotAllowed, match="Verify your email"):
        _apply(user)
    assert not Vendor.objects.exists()


def test_a_member_of_a_live_shop_cannot_apply_again(vendor_member):
    with pytest.raises(onboarding.ApplicationNotAllowed, match="You already belong to"):
        _apply(vendor_member)
    assert Vendor.objects.count() == 1


def test_a_pending_applicant_cannot_apply_twice(shopper):
    _apply(shopper)
    with pytest.raises(onboarding.ApplicationNotAllowed, match="pending review"):
        _apply(shopper, name="Second Shop")
    assert Vendor.objects.count() == 1


def test_a_rejected_applicant_may_apply_again(shopper, staff):
    first = _apply(shopper)
    onboarding.reject_vendor(vendor=first, acting_user=staff, note="No photos")
    second = _apply(shopper, name="Oak and Iron")
    assert second.status == VendorStatus.PENDING
    assert second.slug == "oak-and-iron"


def test_approving_opens_the_shop_and_emails_the_applicant(
    shopper, staff, django_capture_on_commit_callbacks
):
    vendor = _apply(shopper)
    with django_capture_on_commit_callbacks(execute=True):
        onboarding.approve_vendor(vendor=vendor, acting_user=staff, note="Welcome!")

    assert _vendor_state(vendor)[:2] == (VendorStatus.APPROVED, "Welcome!")
    assert vendor.reviewed_at is not None
    assert [m.to for m in mail.outbox] == [[shopper.email]]
    assert mail.outbox[0].subject == "Your shop Oak & Iron is approved"
    assert "/backoffice/" in mail.outbox[0].body
    assert "Welcome!" in mail.outbox[0].body


def test_rejecting_tells_the_applicant_why(shopper, staff, django_capture_on_commit_callbacks):
    vendor = _apply(shopper)
    with django_capture_on_commit_callbacks(execute=True):
        onboarding.reject_vendor(vendor=vendor, acting_user=staff, note="Photos are missing")

    assert _vendor_state(vendor)[0] == VendorStatus.REJECTED
    assert [m.to for m in mail.outbox] == [[shopper.email]]
    assert mail.outbox[0].subject == "Your application for Oak & Iron was not approved"
    assert "Photos are missing" in mail.outbox[0].body


def test_suspending_and_reinstating_email_the_owners(
    vendor_member, staff, django_capture_on_commit_callbacks
):
    vendor = vendor_member.vendor_memberships.get().vendor
    with django_capture_on_commit_callbacks(execute=True):
        onboarding.suspend_vendor(vendor=vendor, acting_user=staff, note="Unpaid fees")
    assert _vendor_state(vendor)[0] == VendorStatus.SUSPENDED
    with django_capture_on_commit_callbacks(execute=True):
        onboarding.reinstate_vendor(vendor=vendor, acting_user=staff)

    assert _vendor_state(vendor)[0] == VendorStatus.APPROVED
    assert [(m.to, m.subject) for m in mail.outbox] == [
        ([vendor_member.email], f"Your shop {vendor.name} is suspended"),
        ([vendor_member.email], f"Your shop {vendor.name} is open again"),
    ]
    assert "Unpaid fees" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("status", "decide"),
    [
        (VendorStatus.APPROVED, onboarding.approve_vendor),
        (VendorStatus.REJECTED, onboarding.approve_vendor),
        (VendorStatus.SUSPENDED, onboarding.approve_vendor),
        (VendorStatus.APPROVED, onboarding.reject_vendor),
        (VendorStatus.SUSPENDED, onboarding.reject_vendor),
        (VendorStatus.PENDING, onboarding.suspend_vendor),
        (VendorStatus.REJECTED, onboarding.suspend_vendor),
        (VendorStatus.SUSPENDED, onboarding.suspend_vendor),
        (VendorStatus.PENDING, onboarding.reinstate_vendor),
        (VendorStatus.APPROVED, onboarding.reinstate_vendor),
        (VendorStatus.REJECTED, onboarding.reinstate_vendor),
    ],
)
def test_illegal_vendor_transitions_are_refused_and_change_nothing(
    staff, status, decide, django_capture_on_commit_callbacks
):
    vendor = factories.VendorFactory(status=status, name="Flax House")
    before = _vendor_state(vendor)

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(onboarding.IllegalVendorTransition) as excinfo,
    ):
        decide(vendor=vendor, acting_user=staff, note="A note")

    assert excinfo.value.message.startswith(f"Flax House is {vendor.get_status_display().lower()}")
    assert _vendor_state(vendor) == before
    assert mail.outbox == []


@pytest.mark.parametrize("decide", [onboarding.reject_vendor, onboarding.suspend_vendor])
def test_rejecting_and_suspending_need_a_note(staff, decide):
    vendor = factories.VendorFactory(status=VendorStatus.PENDING)
    before = _vendor_state(vendor)
    with pytest.raises(onboarding.NoteRequired):
        decide(vendor=vendor, acting_user=staff, note="  ")
    assert _vendor_state(vendor) == before


def test_suspended_vendors_products_disappear_from_the_shop(
    client, vendor_member, staff, django_capture_on_commit_callbacks
):
    vendor = vendor_member.vendor_memberships.get().vendor
    product = factories.ProductFactory(vendor=vendor, name="Walnut Board")
    assert client.get(product.get_absolute_url()).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        onboarding.suspend_vendor(vendor=vendor, acting_user=staff, note="Checks")

    assert client.get(product.get_absolute_url()).status_code == 404
    assert "Walnut Board" not in client.get(reverse("shop:product_list")).content.decode()


# --- The application page ------------------------------------------------------------------


def test_the_footer_links_to_the_application(client, db):
    assert reverse("backoffice:apply") in client.get(reverse("shop:home")).content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get(reverse("backoffice:apply"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_unverified_users_are_asked_to_verify_first(client, db):
    user = factories.UserFactory(email_verified_at=None)
    client.force_login(user)
    response = client.get(reverse("backoffice:apply"), follow=True)
    assert response.redirect_chain == [(reverse("accounts:verify_resend"), 302)]
    assert "Please verify your email address before applying to sell." in response.content.decode()


def test_applying_through_the_form(client, shopper, django_capture_on_commit_callbacks):
    client.force_login(shopper)
    page = client.get(reverse("backoffice:apply"))
    assert page.status_code == 200
    assert "Sell on Bazaar" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("backoffice:apply"), VALID_APPLICATION, follow=True)

    vendor = Vendor.objects.get()
    assert (vendor.name, vendor.status, vendor.applied_by) == (
        "Oak & Iron",
        VendorStatus.PENDING,
        shopper,
    )
    assert vendor.payout_details == "Oak & Iron GmbH, IBAN DE89370400440532013000"
    assert vendor.contact_phone == "+49 30 1234567"
    body = response.content.decode()
    assert "Your application" in body
    assert "Pending review" in body
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "", "This field is required."),
        ("name", "!!!", "Use at least one letter or digit"),
        ("contact_email", "not-an-email", "Enter a valid email address."),
        ("contact_phone", "call me", "Enter a phone number"),
        ("iban", "DE00 1234", "Enter a valid IBAN"),
        ("iban", "DE89 3704 0044 0532 0130 01", "Enter a valid IBAN"),
        ("account_holder", "", "This field is required."),
    ],
)
def test_bad_applications_show_errors_and_create_nothing(client, shopper, field, value, error):
    client.force_login(shopper)
    response = client.post(reverse("backoffice:apply"), {**VALID_APPLICATION, field: value})
    assert response.status_code == 422
    assert error in response.content.decode()
    assert not Vendor.objects.exists()


def test_a_pending_applicant_sees_the_status_instead_of_the_form(client, shopper):
    _apply(shopper)
    client.force_login(shopper)
    response = client.get(reverse("backoffice:apply"))
    assert "Pending review" in response.content.decode()
    assert "Send application" not in response.content.decode()
    client.post(reverse("backoffice:apply"), {**VALID_APPLICATION, "name": "Another"})
    assert Vendor.objects.count() == 1


def test_an_approved_vendor_member_is_sent_to_the_backoffice(client, vendor_member):
    sign_in_with_second_factor(client, vendor_member)
    response = client.get(reverse("backoffice:apply"))
    assert response.status_code == 302
    assert response.url == reverse("backoffice:dashboard")


def test_a_rejected_applicant_sees_why_and_may_apply_again(client, shopper, staff):
    vendor = _apply(shopper)
    onboarding.reject_vendor(vendor=vendor, acting_user=staff, note="Photos are missing")
    client.force_login(shopper)
    response = client.get(reverse("backoffice:apply"))
    assert "Photos are missing" in response.content.decode()
    assert "Send application" in response.content.decode()


# --- The admin -------------------------------------------------------------------------------


def test_admin_action_approves_each_selected_vendor_with_a_message(
    client, staff, django_capture_on_commit_callbacks
):
    pending = factories.VendorFactory(status=VendorStatus.PENDING, name="Flax House")
    rejected = factories.VendorFactory(status=VendorStatus.REJECTED, name="Gone Shop")
    sign_in_with_second_factor(client, staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:shop_vendor_changelist"),
            {"action": "approve_selected", "_selected_action": [pending.pk, rejected.pk]},
            follow=True,
        )

    body = response.content.decode()
    assert "Flax House is approved; the owner was emailed." in body
    assert "Gone Shop: Gone Shop is rejected and cannot be approved." in body
    assert _vendor_state(pending)[0] == VendorStatus.APPROVED
    assert _vendor_state(rejected)[0] == VendorStatus.REJECTED
    assert len(mail.outbox) == 1


def test_admin_reject_action_asks_for_a_reason_first(
    client, staff, django_capture_on_commit_callbacks
):
    vendor = factories.VendorFactory(status=VendorStatus.PENDING, name="Flax House")
    sign_in_with_second_factor(client, staff)
    changelist = reverse("admin:shop_vendor_changelist")

    ask = client.post(changelist, {"action": "reject_selected", "_selected_action": [vendor.pk]})
    assert ask.status_code == 200
    assert "Reason (emailed to the owner)" in ask.content.decode()
    assert _vendor_state(vendor)[0] == VendorStatus.PENDING

    empty = client.post(
        changelist,
        {"action": "reject_selected", "_selected_action": [vendor.pk], "confirm": "yes"},
    )
    assert "Give a reason" in empty.content.decode()
    assert _vendor_state(vendor)[0] == VendorStatus.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            changelist,
            {
                "action": "reject_selected",
                "_selected_action": [vendor.pk],
                "confirm": "yes",
                "note": "No product photos",
            },
            follow=True,
        )
    assert "Flax House is rejected" in done.content.decode()
    assert _vendor_state(vendor)[:2] == (VendorStatus.REJECTED, "No product photos")
    assert "No product photos" in mail.outbox[0].body


def test_admin_change_page_offers_the_legal_decisions_as_buttons(client, staff):
    vendor = factories.VendorFactory(status=VendorStatus.APPROVED)
    sign_in_with_second_factor(client, staff)

    page = client.get(reverse("admin:shop_vendor_change", args=[vendor.pk])).content.decode()

    assert reverse("admin:shop_vendor_decide", args=[vendor.pk, "suspend"]) in page
    assert reverse("admin:shop_vendor_decide", args=[vendor.pk, "approve"]) not in page
    assert "<script>" not in page
    assert "style=" not in page


def test_admin_buttons_call_the_services(client, staff, django_capture_on_commit_callbacks):
    vendor = factories.VendorFactory(status=VendorStatus.APPROVED, name="Flax House")
    sign_in_with_second_factor(client, staff)
    url = reverse("admin:shop_vendor_decide", args=[vendor.pk, "suspend"])

    refused = client.post(url, {"note": ""}, follow=True)
    assert "Say why Flax House is suspended." in refused.content.decode()
    assert _vendor_state(vendor)[0] == VendorStatus.APPROVED

    assert client.get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"note": "Late shipments"}, follow=True)
    assert "Flax House is suspended" in done.content.decode()
    assert _vendor_state(vendor)[:2] == (VendorStatus.SUSPENDED, "Late shipments")

    again = client.post(url, {"note": "Again"}, follow=True)
    assert "is suspended and cannot be suspended" in again.content.decode()


def test_admin_decisions_are_closed_to_non_staff(client, vendor_member):
    vendor = factories.VendorFactory(status=VendorStatus.PENDING)
    sign_in_with_second_factor(client, vendor_member)
    response = client.post(reverse("admin:shop_vendor_decide", args=[vendor.pk, "approve"]))
    assert response.status_code == 302
    assert _vendor_state(vendor)[0] == VendorStatus.PENDING


@pytest.mark.parametrize(
    "model_path", ["shop/vendor", "accounts/user", "shop/order", "shop/vendorinvitation"]
)
def test_admin_lists_issue_no_query_per_row(client, staff, model_path):
    def queries_for_list():
        with CaptureQueriesContext(connection) as context:
            assert client.get(f"/admin/{model_path}/").status_code == 200
        return len(context)

    sign_in_with_second_factor(client, staff)
    _admin_rows(2)
    few = queries_for_list()
    _admin_rows(25)
    assert queries_for_list() == few <= 12


def _admin_rows(count):
    for _ in range(count):
        membership = factories.VendorMembershipFactory(vendor__applied_by=factories.UserFactory())
        product = factories.ProductFactory(vendor=membership.vendor)
        line = factories.OrderLineFactory(product=product)
        factories.CapturedPaymentFactory(order=line.order)
        factories.VendorInvitationFactory(vendor=membership.vendor, invited_by=membership.user)
