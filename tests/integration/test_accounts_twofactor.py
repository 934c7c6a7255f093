"""Two-factor sign-in: the second step, enrolment, recovery and email codes, and the admin and
backoffice refusing sessions without a verified second factor."""

import re
import time

import pyotp
import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from accounts.models import RecoveryCode, TotpDevice
from accounts.twofactor import flow
from project.audit.models import AuditEntry
from tests import factories
from tests.fixtures.twofactor import (
    code_for,
    enrol,
    fresh_code,
    sign_in_with_second_factor,
)

LOGIN_URL = reverse("accounts:login")
VERIFY_URL = reverse("accounts:twofactor_verify")
ENROL_URL = reverse("accounts:twofactor_enroll")
PROFILE_URL = reverse("accounts:profile")
CODES_URL = reverse("accounts:twofactor_recovery_codes")
CODE_RE = re.compile(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>")


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


def _password_step(client, user, next_url=""):
    data = {"email": user.email, "password": factories.PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post(LOGIN_URL, data)


def _email_me_a_code(client, capture, **kwargs):
    with capture(execute=True):
        return client.post(VERIFY_URL, {"action": "email"}, **kwargs)


def _actions(user) -> list[str]:
    entries = AuditEntry.objects.filter(actor_id=user.pk, action__startswith="twofactor.")
    entries = entries.order_by("pk")
    return list(entries.values_list("action", flat=True))


def _enrol_through_pages(client) -> tuple[TotpDevice, list[str]]:
    """On the set-up page: read the key shown, answer with the app's code, read the codes."""
    page = client.get(ENROL_URL).content.decode()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    response = client.post(ENROL_URL, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    codes = CODE_RE.findall(client.get(response["Location"]).content.decode())
    return TotpDevice.objects.get(secret=secret), codes


# --- The second step ---------------------------------------------------------------------


def test_password_alone_does_not_sign_in_a_user_with_two_factor(client, shopper):
    enrol(shopper)

    response = _password_step(client, shopper)

    assert response.status_code == 302
    assert response["Location"] == VERIFY_URL
    assert SESSION_KEY not in client.session
    profile = client.get(PROFILE_URL)
    assert profile.status_code == 302
    assert profile["Location"].startswith(LOGIN_URL)


def test_code_from_the_app_signs_in_with_a_new_session_id(client, shopper):
    device = enrol(shopper)
    _password_step(client, shopper, next_url="/cart/")
    pending_key = client.session.session_key

    page = client.get(VERIFY_URL)
    response = client.post(VERIFY_URL, {"code": code_for(device)})

    assert "Enter your sign-in code" in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == "/cart/"
    assert int(client.session[SESSION_KEY]) == shopper.pk
    assert client.session[flow.VERIFIED_KEY]
    assert client.session.session_key != pending_key
    assert client.get(PROFILE_URL).status_code == 200


def test_session_id_changes_at_the_password_step_and_at_login(client, shopper):
    client.get(LOGIN_URL)
    client.session.save()
    anonymous_key = client.session.session_key

    _password_step(client, shopper)

    assert client.session.session_key != anonymous_key
    assert int(client.session[SESSION_KEY]) == shopper.pk


def test_replayed_code_is_refused(client, shopper):
    device = enrol(shopper)
    code = code_for(device)
    _password_step(client, shopper)
    assert client.post(VERIFY_URL, {"code": code}).status_code == 302
    client.post(reverse("accounts:logout"))

    _password_step(client, shopper)
    response = client.post(VERIFY_URL, {"code": code})

    assert response.status_code == 400
    assert "That code is not right, or it has been used already." in response.content.decode()
    assert SESSION_KEY not in client.session
    assert _actions(shopper).count("twofactor.failed") == 1


def test_code_from_two_steps_ago_is_refused(client, shopper):
    device = enrol(shopper)
    old = code_for(device, step=int(time.time() // 30) - 2)
    _password_step(client, shopper)

    response = client.post(VERIFY_URL, {"code": old})

    assert response.status_code == 400
    assert SESSION_KEY not in client.session


def test_wrong_code_is_refused_and_audited(client, shopper):
    enrol(shopper)
    _password_step(client, shopper)

    response = client.post(VERIFY_URL, {"code": "000000"})

    assert response.status_code == 400
    assert SESSION_KEY not in client.session
    assert _actions(shopper) == ["twofactor.failed"]


def test_second_step_is_rate_limited_per_user(client, shopper):
    device = enrol(shopper)
    _password_step(client, shopper)
    for _ in range(5):
        client.post(VERIFY_URL, {"code": "000000"})

    response = client.post(VERIFY_URL, {"code": code_for(device)})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many attempts" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_second_step_expires(client, shopper, settings):
    enrol(shopper)
    _password_step(client, shopper)
    session = client.session
    session[flow.PENDING_KEY] = session[flow.PENDING_KEY] | {"at": time.time() - 601}
    session.save()

    response = client.get(VERIFY_URL, follow=True)

    assert response.redirect_chain[-1][0] == LOGIN_URL
    assert "Your sign-in took too long." in response.content.decode()


def test_pages_without_a_pending_sign_in_send_to_the_sign_in_page(client, db):
    response = client.get(VERIFY_URL)

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL


# --- Enrolment ---------------------------------------------------------------------------


def test_set_up_page_shows_a_qr_code_without_style_attributes_and_the_key(client, shopper):
    client.force_login(shopper)

    content = client.get(ENROL_URL).content.decode()

    svg = re.search(r"<svg.*?</svg>", content, re.S).group(0)
    assert 'class="qr-code"' in svg
    assert "style=" not in svg
    secret = TotpDevice.objects.get(user=shopper).secret
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in content


def test_enrolment_needs_a_right_first_code(client, shopper):
    client.force_login(shopper)
    client.get(ENROL_URL)

    response = client.post(ENROL_URL, {"code": "123456"})

    assert response.status_code == 400
    assert "That code is not right." in response.content.decode()
    assert TotpDevice.objects.get(user=shopper).confirmed_at is None
    assert not RecoveryCode.objects.filter(user=shopper).exists()
    assert _actions(shopper) == []


def test_enrolment_turns_two_factor_on_and_shows_ten_codes_once(client, shopper):
    client.force_login(shopper)

    device, codes = _enrol_through_pages(client)

    assert device.confirmed_at is not None
    assert len(set(codes)) == 10
    assert CODE_RE.findall(client.get(CODES_URL).content.decode()) == []
    assert _actions(shopper) == ["twofactor.enabled", "twofactor.recovery_codes_generated"]
    assert client.session[flow.VERIFIED_KEY]


def test_recovery_codes_are_stored_hashed(client, shopper):
    client.force_login(shopper)

    _, codes = _enrol_through_pages(client)

    hashes = list(RecoveryCode.objects.filter(user=shopper).values_list("code_hash", flat=True))
    assert len(hashes) == 10
    for code in codes:
        assert all(code not in stored and code.replace("-", "") not in stored for stored in hashes)


# --- Recovery and email codes ------------------------------------------------------------


def test_recovery_code_signs_in_once(client, shopper):
    client.force_login(shopper)
    _, codes = _enrol_through_pages(client)
    client.post(reverse("accounts:logout"))

    _password_step(client, shopper)
    first = client.post(VERIFY_URL, {"code": codes[0].upper()}, follow=True)
    client.post(reverse("accounts:logout"))
    _password_step(client, shopper)
    again = client.post(VERIFY_URL, {"code": codes[0]})

    assert "You signed in with a recovery code; 9 left." in first.content.decode()
    assert again.status_code == 400
    assert SESSION_KEY not in client.session
    assert _actions(shopper).count("twofactor.recovery_code_used") == 1
    assert RecoveryCode.objects.filter(user=shopper, used_at__isnull=True).count() == 9


def test_email_code_signs_in_once(client, shopper, django_capture_on_commit_callbacks):
    enrol(shopper)
    _password_step(client, shopper)

    sent = _email_me_a_code(client, django_capture_on_commit_callbacks, follow=True)
    code = re.search(r"\b(\d{6})\b", mail.outbox[0].body).group(1)
    response = client.post(VERIFY_URL, {"code": code})
    client.post(reverse("accounts:logout"))
    _password_step(client, shopper)
    again = client.post(VERIFY_URL, {"code": code})

    assert f"We have emailed a 6-digit code to {shopper.email}." in sent.content.decode()
    assert mail.outbox[0].to == [shopper.email]
    assert mail.outbox[0].subject == "Your Bazaar sign-in code"
    assert response.status_code == 302
    assert again.status_code == 400
    assert "twofactor.email_code_sent" in _actions(shopper)


def test_email_code_expires(client, shopper, settings, django_capture_on_commit_callbacks):
    settings.TWOFACTOR_EMAIL_CODE_TTL = 1
    enrol(shopper)
    _password_step(client, shopper)
    _email_me_a_code(client, django_capture_on_commit_callbacks)
    code = re.search(r"\b(\d{6})\b", mail.outbox[0].body).group(1)

    time.sleep(1.5)
    response = client.post(VERIFY_URL, {"code": code})

    assert response.status_code == 400
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize(("wrong_tries", "accepted"), [(4, True), (5, False)])
def test_email_code_allows_five_tries(
    client, shopper, settings, django_capture_on_commit_callbacks, wrong_tries, accepted
):
    settings.RATE_LIMITS = settings.RATE_LIMITS | {"twofactor_user": {"limit": 50, "window": 60}}
    device = enrol(shopper)
    _password_step(client, shopper)
    _email_me_a_code(client, django_capture_on_commit_callbacks)
    code = re.search(r"\b(\d{6})\b", mail.outbox[0].body).group(1)
    wrong = next(c for c in ("111111", "222222") if c not in (code, code_for(device)))
    for _ in range(wrong_tries):
        client.post(VERIFY_URL, {"code": wrong})

    response = client.post(VERIFY_URL, {"code": code})

    assert (response.status_code == 302) is accepted
    assert (SESSION_KEY in client.session) is accepted


def test_email_codes_are_throttled(client, shopper, django_capture_on_commit_callbacks):
    enrol(shopper)
    _password_step(client, shopper)
    for _ in range(3):
        _email_me_a_code(client, django_capture_on_commit_callbacks)

    response = client.post(VERIFY_URL, {"action": "email"})

    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert len(mail.outbox) == 3


# --- Staff and shop owners ---------------------------------------------------------------


def test_staff_without_an_app_must_set_it_up_before_anything_else(client, staff):
    response = _password_step(client, staff, next_url="/admin/")

    assert response["Location"] == f"{ENROL_URL}?next=%2Fadmin%2F"
    assert SESSION_KEY not in client.session
    assert client.get("/admin/").status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Staff and shop owners must sign in with a second factor." in page

    _, codes = _enrol_through_pages(client)

    assert len(codes) == 10
    assert int(client.session[SESSION_KEY]) == staff.pk
    assert client.get("/admin/").status_code == 200


def test_admin_refuses_a_signed_in_staff_session_without_a_second_factor(client, staff):
    enrol(staff)
    client.force_login(staff)

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain == [
        ("/admin/login/?next=/admin/", 302),
        (f"{VERIFY_URL}?next=%2Fadmin%2F", 302),
    ]
    assert "Enter your sign-in code" in response.content.decode()
    assert client.get("/admin/shop/product/").status_code == 302


def test_staff_who_verify_step_up_reach_the_admin(client, staff):
    device = enrol(staff)
    client.force_login(staff)
    key_before = client.session.session_key

    response = client.post(VERIFY_URL, {"code": code_for(device), "next": "/admin/"})

    assert response["Location"] == "/admin/"
    assert client.session.session_key != key_before
    assert client.get("/admin/").status_code == 200


def test_admin_login_page_sends_visitors_to_the_shop_sign_in(client, staff):
    page = client.get("/admin/login/?next=/admin/shop/")
    posted = client.post("/admin/login/", {"username": staff.email, "password": factories.PASSWORD})

    assert page.status_code == 302
    assert page["Location"] == f"{LOGIN_URL}?next=%2Fadmin%2Fshop%2F"
    assert posted.status_code == 302
    assert SESSION_KEY not in client.session


def test_admin_with_verified_second_factor_opens(client, staff):
    sign_in_with_second_factor(client, staff)

    assert client.get("/admin/").status_code == 200


def test_backoffice_refuses_a_shop_owner_without_a_second_factor(client, vendor_member):
    client.force_login(vendor_member)

    without_app = client.get("/backoffice/")
    enrol(vendor_member)
    with_app = client.get("/backoffice/")

    assert without_app["Location"] == f"{ENROL_URL}?next=%2Fbackoffice%2F"
    assert with_app["Location"] == f"{VERIFY_URL}?next=%2Fbackoffice%2F"


def test_backoffice_opens_for_an_owner_with_a_verified_second_factor(client, vendor_member):
    vendor = vendor_member.vendor_memberships.get().vendor
    vendor.status = "approved"
    vendor.save()
    sign_in_with_second_factor(client, vendor_member)

    assert client.get("/backoffice/").status_code == 200


def test_vendor_team_members_who_are_not_owners_need_no_second_factor(client, db):
    member = factories.VendorMembershipFactory(
        role="staff", vendor__status="approved", user__email="helper@example.com"
    ).user
    client.force_login(member)

    assert client.get("/backoffice/").status_code == 200


# --- Changing two-factor from the account page -------------------------------------------


def test_shopper_turns_two_factor_off_with_the_password(client, shopper):
    sign_in_with_second_factor(client, shopper)
    url = reverse("accounts:twofactor_disable")

    wrong = client.post(url, {"password": "not-my-password"})
    right = client.post(url, {"password": factories.PASSWORD}, follow=True)

    assert wrong.status_code == 400
    assert "Enter your current password or a code from your app." in wrong.content.decode()
    assert "Two-factor sign-in is off." in right.content.decode()
    assert not TotpDevice.objects.filter(user=shopper).exists()
    assert _actions(shopper) == ["twofactor.failed", "twofactor.disabled"]


def test_shopper_turns_two_factor_off_with_a_code(client, shopper):
    device = sign_in_with_second_factor(client, shopper)

    client.post(reverse("accounts:twofactor_disable"), {"code": fresh_code(device)})

    assert not TotpDevice.objects.filter(user=shopper).exists()


def test_staff_cannot_turn_two_factor_off(client, staff):
    sign_in_with_second_factor(client, staff)

    response = client.post(
        reverse("accounts:twofactor_disable"), {"password": factories.PASSWORD}, follow=True
    )

    assert "required for staff and shop owners" in response.content.decode()
    assert TotpDevice.objects.filter(user=staff).exists()


def test_new_recovery_codes_replace_the_old_ones(client, shopper):
    client.force_login(shopper)
    _, old_codes = _enrol_through_pages(client)

    response = client.post(
        reverse("accounts:twofactor_regenerate"), {"password": factories.PASSWORD}, follow=True
    )
    new_codes = CODE_RE.findall(response.content.decode())
    client.post(reverse("accounts:logout"))
    _password_step(client, shopper)
    old_refused = client.post(VERIFY_URL, {"code": old_codes[0]})
    new_accepted = client.post(VERIFY_URL, {"code": new_codes[0]})

    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)
    assert old_refused.status_code == 400
    assert new_accepted.status_code == 302


def test_account_page_shows_the_security_section(client, shopper):
    client.force_login(shopper)

    off = client.get(PROFILE_URL).content.decode()
    enrol(shopper)
    on = client.get(PROFILE_URL).content.decode()

    assert "Set up two-factor sign-in" in off
    assert "Recovery codes left: <strong>0</strong> of 10." in on
    assert "Sign out everywhere else" in on


def test_staff_reset_a_lost_second_factor_from_the_admin(client, staff, vendor_member):
    sign_in_with_second_factor(client, staff)
    enrol(vendor_member)
    changelist = reverse("admin:accounts_user_changelist")

    response = client.post(
        changelist,
        {"action": "reset_two_factor", "_selected_action": [vendor_member.pk]},
        follow=True,
    )

    assert "Two-factor sign-in reset for 1 account(s)" in response.content.decode()
    assert not TotpDevice.objects.filter(user=vendor_member).exists()
    entry = AuditEntry.objects.get(action="twofactor.disabled")
    assert (entry.actor_id, entry.target_id) == (staff.pk, str(vendor_member.pk))
    assert _password_step(client, vendor_member)["Location"] == ENROL_URL
