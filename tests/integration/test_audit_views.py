"""Reading the audit log: staff in the admin (read-only, filters, search), a vendor's owners in
the backoffice's Activity page (their shop's entries only); other members are refused."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from project import request_context
from project.audit import services as audit
from project.audit.admin_hooks import AuditedAdmin
from project.audit.models import AuditEntry
from shop.models import VendorMembership
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(db):
    return factories.UserFactory(email="owner@example.com")


@pytest.fixture
def vendor(owner):
    return factories.VendorMembershipFactory(user=owner, vendor__name="Pottery Barn").vendor


@pytest.fixture
def rival(db):
    return factories.VendorMembershipFactory(
        user__email="rival@example.com", vendor__name="Rival Ceramics"
    ).vendor


def signed_in(user) -> Client:
    client = Client()
    sign_in_with_second_factor(client, user)
    return client


# --- Admin -----------------------------------------------------------------------------------


def test_staff_see_entries_with_readable_changes_but_cannot_add_change_or_delete(staff, vendor):
    found = audit.record(
        "product.price_changed", actor=staff, vendor=vendor, changes={"price": ["9.00", "11.00"]}
    )
    client = signed_in(staff)

    page = client.get(reverse("admin:audit_auditentry_change", args=[found.pk]))
    add = client.get(reverse("admin:audit_auditentry_add"))
    delete = client.post(reverse("admin:audit_auditentry_delete", args=[found.pk]), {"post": "yes"})
    change = client.post(
        reverse("admin:audit_auditentry_change", args=[found.pk]), {"action": "auth.login"}
    )

    assert page.status_code == 200
    text = page.content.decode()
    assert "<th>price</th><td>9.00</td><td>→</td><td>11.00</td>" in text
    assert 'name="_save"' not in text
    assert (add.status_code, delete.status_code) == (403, 403)
    assert change.status_code == 403
    assert AuditEntry.objects.get(pk=found.pk).action == "product.price_changed"


def test_staff_filter_by_action_and_vendor(staff, vendor, rival):
    audit.record("stock.changed", vendor=vendor, changes={"stock": [1, 2]})
    audit.record("stock.changed", vendor=rival, changes={"stock": [3, 4]})
    audit.record("auth.login", actor=staff)
    client = signed_in(staff)
    changelist = reverse("admin:audit_auditentry_changelist")

    by_vendor = client.get(
        changelist, {"vendor__id__exact": str(vendor.pk), "action__exact": "stock.changed"}
    )
    by_action = client.get(changelist, {"action__exact": "auth.login"})
    searched = client.get(changelist, {"q": "no-such-request-id"})

    assert [e.vendor_id for e in by_vendor.context["cl"].result_list] == [vendor.pk]
    # the recorded sign-in and the test client's own sign-in of staff
    assert [e.action for e in by_action.context["cl"].result_list] == ["auth.login", "auth.login"]
    assert list(searched.context["cl"].result_list) == []
    assert "Pottery Barn" in by_vendor.content.decode()


def test_the_admin_search_finds_an_entry_by_request_id_by_address_and_by_email(staff, owner):
    tokens = (
        request_context.current_request_id.set("req-search-me"),
        request_context.current_client_ip.set("198.51.100.23"),
    )
    try:
        wanted = audit.record("auth.logout", actor=owner)
    finally:
        request_context.current_client_ip.reset(tokens[1])
        request_context.current_request_id.reset(tokens[0])
    audit.record("auth.login", actor=staff)
    client = signed_in(staff)
    changelist = reverse("admin:audit_auditentry_changelist")

    for query in ("req-search-me", "198.51.100.23", "owner@example.com"):
        found = client.get(changelist, {"q": query}).context["cl"].result_list
        assert [e.pk for e in found] == [wanted.pk], query


# --- Backoffice Activity ---------------------------------------------------------------------


def test_an_owner_sees_only_its_own_shops_activity(owner, vendor, rival):
    audit.record(
        "product.price_changed",
        actor=owner,
        vendor=vendor,
        changes={"price": ["9.00", "11.00"]},
    )
    audit.record("stock.changed", vendor=rival, changes={"stock": [5, 0]})
    audit.record("auth.login", actor=owner)

    page = signed_in(owner).get(reverse("backoffice:activity_list"))

    assert page.status_code == 200
    text = page.content.decode()
    assert "Price changed" in text
    assert "9.00 → 11.00" in text
    assert "Stock changed" not in text
    assert "Signed in" not in text
    assert [e.vendor_id for e in page.context["page_obj"]] == [vendor.pk]


def test_the_activity_filter_shows_one_area(owner, vendor):
    audit.record("team.invited", actor=owner, vendor=vendor, changes={"role": [None, "staff"]})
    audit.record("stock.changed", actor=owner, vendor=vendor, changes={"stock": [1, 3]})

    page = signed_in(owner).get(reverse("backoffice:activity_list"), {"area": "team"})

    assert [e.action for e in page.context["page_obj"]] == ["team.invited"]
    assert '<option value="team" selected>Team</option>' in page.content.decode()


def test_the_activity_page_is_paginated_newest_first(owner, vendor):
    for stock in range(30):
        audit.record("stock.changed", vendor=vendor, changes={"stock": [stock, stock + 1]})

    client = signed_in(owner)
    first = client.get(reverse("backoffice:activity_list"))
    second = client.get(reverse("backoffice:activity_list"), {"page": 2})

    assert len(first.context["page_obj"]) == 25
    assert first.context["page_obj"][0].changes == {"stock": [29, 30]}
    assert len(second.context["page_obj"]) == 5
    assert 'aria-label="Pagination"' in first.content.decode()


def test_an_empty_activity_page_says_so(owner, vendor):
    page = signed_in(owner).get(reverse("backoffice:activity_list"))

    assert "No activity recorded yet." in page.content.decode()


def test_a_member_who_is_not_an_owner_is_refused_and_sees_no_menu_link(owner, vendor):
    helper = factories.VendorMembershipFactory(
        vendor=vendor, user__email="helper@example.com", role=VendorMembership.Role.STAFF
    ).user
    audit.record("stock.changed", actor=owner, vendor=vendor, changes={"stock": [1, 2]})
    client = signed_in(helper)

    refused = client.get(reverse("backoffice:activity_list"))
    dashboard = client.get(reverse("backoffice:dashboard"))

    assert refused.status_code == 403
    assert reverse("backoffice:activity_list") not in dashboard.content.decode()
    owner_dashboard = signed_in(owner).get(reverse("backoffice:dashboard"))
    assert reverse("backoffice:activity_list") in owner_dashboard.content.decode()


def test_a_shopper_cannot_open_the_activity_page(shopper):
    client = Client()
    client.force_login(shopper)

    response = client.get(reverse("backoffice:activity_list"))

    assert response.status_code == 403


def test_every_model_admin_is_audited():
    unaudited = [
        type(model_admin).__name__
        for model_admin in admin.site._registry.values()
        if not isinstance(model_admin, AuditedAdmin)
    ]

    assert unaudited == []
    assert len(admin.site._registry) > 10


def test_the_activity_page_costs_the_same_queries_for_5_or_25_entries(
    owner, vendor, django_assert_num_queries
):
    # given a page read with 5 entries, then 20 more
    client = signed_in(owner)
    for stock in range(5):
        audit.record("stock.changed", vendor=vendor, changes={"stock": [stock, stock + 1]})
    client.get(reverse("backoffice:activity_list"))  # warm the session and the caches

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("backoffice:activity_list"))
    for stock in range(20):
        audit.record("stock.changed", vendor=vendor, changes={"stock": [stock, stock + 1]})

    with django_assert_num_queries(len(few.captured_queries)):
        page = client.get(reverse("backoffice:activity_list"))

    assert len(page.context["page_obj"]) == 25


def test_the_activity_page_names_staff_as_bazaar_staff_without_their_email_or_address(
    owner, vendor, staff
):
    token = request_context.current_client_ip.set("192.0.2.44")
    try:
        audit.record("vendor.suspended", actor=staff, vendor=vendor, changes={"status": ["a", "b"]})
        audit.record("stock.changed", actor=owner, vendor=vendor, changes={"stock": [1, 2]})
    finally:
        request_context.current_client_ip.reset(token)

    text = signed_in(owner).get(reverse("backoffice:activity_list")).content.decode()

    assert "Bazaar staff" in text
    assert "staff@example.com" not in text
    assert text.count("192.0.2.44") == 1  # the owner's own change only
    assert "owner@example.com" in text
