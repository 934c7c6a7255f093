"""A vendor's team: inviting by signed link, accepting, removing members, withdrawing."""

import re
import time
from unittest import mock

import pytest
from django.core import mail, signing
from django.test import Client
from django.urls import reverse

from backoffice import tokens
from backoffice.services import team
from shop.models import VendorInvitation, VendorMembership, VendorStatus
from tests import factories
from tests.fixtures.twofactor import sign_in_with_second_factor


@pytest.fixture
def owner(vendor_member):
    return vendor_member


@pytest.fixture
def vendor(owner):
    return owner.vendor_memberships.get().vendor


@pytest.fixture
def staff_member(vendor):
    return factories.VendorMembershipFactory(
        vendor=vendor, user__email="helper@example.com", role=VendorMembership.Role.STAFF
    ).user


def _invite(vendor, owner, email="new@example.com", role="staff"):
    return team.invite_member(vendor=vendor, email=email, role=role, acting_user=owner)


def _team_state(vendor):
    return (
        sorted(VendorMembership.objects.filter(vendor=vendor).values_list("user_id", "role")),
        sorted(
            VendorInvitation.objects.filter(vendor=vendor).values_list(
                "id", "email", "accepted_at", "revoked_at"
            )
        ),
    )


def _emailed_link():
    return re.search(r"https?://\S+/backoffice/invitations/\S+/", mail.outbox[-1].body).group(0)


# --- Services --------------------------------------------------------------------------------


def test_inviting_records_an_open_invitation_and_emails_a_signed_link(
    vendor, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation = _invite(vendor, owner, email=" New@Example.com ")

    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new@example.com",
        "staff",
        owner,
    )
    assert invitation.is_open
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    assert mail.outbox[0].subject == f"You are invited to join {vendor.name} on Bazaar"
    token = _emailed_link().rstrip("/").rsplit("/", 1)[1]
    assert signing.loads(token, salt="vendor-invitation") == {"invitation": invitation.pk}


def test_inviting_an_address_with_an_open_invitation_is_refused(vendor, owner):
    _invite(vendor, owner)
    before = _team_state(vendor)
    with pytest.raises(team.DuplicateInvitation, match="already has an open invitation"):
        _invite(vendor, owner, email="NEW@example.com")
    assert _team_state(vendor) == before


def test_inviting_a_member_is_refused(vendor, owner, staff_member):
    before = _team_state(vendor)
    with pytest.raises(team.AlreadyMember, match="is already a member"):
        _invite(vendor, owner, email="Helper@Example.com")
    assert _team_state(vendor) == before


def test_only_owners_invite(vendor, staff_member):
    before = _team_state(vendor)
    with pytest.raises(team.TeamChangeNotAllowed, match="Only the shop's owners"):
        _invite(vendor, staff_member)
    assert _team_state(vendor) == before


def test_inviting_with_an_unknown_role_is_refused(vendor, owner):
    before = _team_state(vendor)
    with pytest.raises(team.TeamChangeNotAllowed):
        _invite(vendor, owner, role="admin")
    assert _team_state(vendor) == before


def test_accepting_creates_the_membership_once(vendor, owner):
    invitation = _invite(vendor, owner, role="owner")
    invitee = factories.UserFactory(email="new@example.com")
    token = tokens.make_invitation_token(invitation)

    membership = team.accept_invitation(token=token, user=invitee)

    assert (membership.vendor, membership.user, membership.role) == (vendor, invitee, "owner")
    invitation.refresh_from_db()
    assert invitation.accepted_by == invitee
    assert invitation.accepted_at is not None
    before = _team_state(vendor)
    with pytest.raises(team.InvitationInvalid, match="already been used"):
        team.accept_invitation(token=token, user=invitee)
    assert _team_state(vendor) == before


def test_the_invitation_email_must_match_the_signed_in_account(vendor, owner):
    invitation = _invite(vendor, owner)
    stranger = factories.UserFactory(email="stranger@example.com")
    before = _team_state(vendor)

    with pytest.raises(team.InvitationWrongAccount, match="sent to another email address"):
        team.accept_invitation(token=tokens.make_invitation_token(invitation), user=stranger)
    assert _team_state(vendor) == before


def test_an_expired_invitation_is_refused(vendor, owner):
    invitation = _invite(vendor, owner)
    invitee = factories.UserFactory(email="new@example.com")
    token = tokens.make_invitation_token(invitation)
    before = _team_state(vendor)

    eight_days_later = time.time() + 8 * 24 * 3600
    with (
        mock.patch("django.core.signing.time.time", return_value=eight_days_later),
        pytest.raises(team.InvitationExpired, match="expired"),
    ):
        team.accept_invitation(token=token, user=invitee)
    assert _team_state(vendor) == before


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        signing.dumps({"invitation": 1}, salt="another-salt"),
        signing.dumps({"user": 1}, salt="vendor-invitation"),
    ],
    # Stable ids: a signed token carries its signing time, and pytest-xdist's workers must
    # collect the same test names.
    ids=["garbage", "another-salt", "not-an-invitation"],
)
def test_a_tampered_invitation_is_refused(vendor, owner, token):
    _invite(vendor, owner)
    invitee = factories.UserFactory(email="new@example.com")
    before = _team_state(vendor)
    with pytest.raises(team.InvitationInvalid, match="not valid"):
        team.accept_invitation(token=token, user=invitee)
    assert _team_state(vendor) == before


def test_a_revoked_invitation_is_refused(vendor, owner):
    invitation = _invite(vendor, owner)
    team.revoke_invitation(vendor=vendor, invitation_id=invitation.pk, acting_user=owner)
    invitee = factories.UserFactory(email="new@example.com")
    before = _team_state(vendor)

    with pytest.raises(team.InvitationInvalid, match="withdrawn"):
        team.accept_invitation(token=tokens.make_invitation_token(invitation), user=invitee)
    assert _team_state(vendor) == before


def test_a_member_of_another_shop_cannot_accept(vendor, owner):
    invitation = _invite(vendor, owner)
    elsewhere = factories.VendorMembershipFactory(user__email="new@example.com").user
    before = _team_state(vendor)
    with pytest.raises(team.InvitationInvalid, match="already belong to the team"):
        team.accept_invitation(token=tokens.make_invitation_token(invitation), user=elsewhere)
    assert _team_state(vendor) == before


def test_an_invitation_to_a_suspended_shop_cannot_be_accepted(vendor, owner):
    invitation = _invite(vendor, owner)
    vendor.status = VendorStatus.SUSPENDED
    vendor.save()
    invitee = factories.UserFactory(email="new@example.com")
    with pytest.raises(team.InvitationInvalid, match="not accepting new members"):
        team.accept_invitation(token=tokens.make_invitation_token(invitation), user=invitee)
    assert not VendorMembership.objects.filter(user=invitee).exists()


def test_owners_cannot_remove_themselves_or_the_last_owner(vendor, owner):
    own = VendorMembership.objects.get(user=owner)
    before = _team_state(vendor)
    with pytest.raises(team.TeamChangeNotAllowed, match="cannot remove yourself"):
        team.remove_member(vendor=vendor, membership_id=own.pk, acting_user=owner)
    assert _team_state(vendor) == before


def test_a_second_owner_can_be_removed_by_the_first(vendor, owner):
    second = factories.VendorMembershipFactory(vendor=vendor, role="owner")
    team.remove_member(vendor=vendor, membership_id=second.pk, acting_user=owner)
    assert not VendorMembership.objects.filter(pk=second.pk).exists()


def test_staff_members_cannot_remove_anyone(vendor, owner, staff_member):
    own = VendorMembership.objects.get(user=owner)
    before = _team_state(vendor)
    with pytest.raises(team.TeamChangeNotAllowed, match="Only the shop's owners"):
        team.remove_member(vendor=vendor, membership_id=own.pk, acting_user=staff_member)
    assert _team_state(vendor) == before


def test_revoking_twice_is_refused(vendor, owner):
    invitation = _invite(vendor, owner)
    team.revoke_invitation(vendor=vendor, invitation_id=invitation.pk, acting_user=owner)
    before = _team_state(vendor)
    with pytest.raises(team.TeamChangeNotAllowed, match="no longer open"):
        team.revoke_invitation(vendor=vendor, invitation_id=invitation.pk, acting_user=owner)
    assert _team_state(vendor) == before


# --- Views -----------------------------------------------------------------------------------


def test_the_team_page_lists_members_and_open_invitations(client, vendor, owner, staff_member):
    _invite(vendor, owner, email="pending@example.com")
    sign_in_with_second_factor(client, owner)

    page = client.get(reverse("backoffice:member_list")).content.decode()

    assert "helper@example.com" in page
    assert owner.email in page
    assert "pending@example.com" in page
    assert "Send invitation" in page


def test_staff_members_see_the_team_read_only(client, vendor, owner, staff_member):
    client.force_login(staff_member)
    page = client.get(reverse("backoffice:member_list")).content.decode()
    assert "Send invitation" not in page
    assert "Remove" not in page

    response = client.post(
        reverse("backoffice:member_list"), {"email": "x@example.com", "role": "staff"}
    )
    assert response.status_code == 403
    assert not VendorInvitation.objects.exists()
    own = VendorMembership.objects.get(user=owner)
    assert client.post(reverse("backoffice:member_remove", args=[own.pk])).status_code == 403
    assert VendorMembership.objects.filter(pk=own.pk).exists()


def test_inviting_from_the_team_page(client, vendor, owner, django_capture_on_commit_callbacks):
    sign_in_with_second_factor(client, owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("backoffice:member_list"),
            {"email": "new@example.com", "role": "staff"},
            follow=True,
        )
    assert "Invitation sent to new@example.com." in response.content.decode()
    assert VendorInvitation.objects.get().email == "new@example.com"
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"email": "nope", "role": "staff"}, "Enter a valid email address."),
        ({"email": "a@example.com", "role": "boss"}, "Select a valid choice."),
        ({"email": "helper@example.com", "role": "staff"}, "is already a member"),
    ],
)
def test_bad_invitations_show_errors_and_change_nothing(
    client, vendor, owner, staff_member, data, error
):
    before = _team_state(vendor)
    sign_in_with_second_factor(client, owner)
    response = client.post(reverse("backoffice:member_list"), data)
    assert response.status_code == 422
    assert error in response.content.decode()
    assert _team_state(vendor) == before


def test_the_invitee_accepts_through_the_emailed_link(
    client, vendor, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(vendor, owner)
    invitee = factories.UserFactory(email="new@example.com")
    client.force_login(invitee)
    link = _emailed_link()

    confirm = client.get(link)
    assert confirm.status_code == 200
    assert f"Join {vendor.name}" in confirm.content.decode()
    assert not VendorMembership.objects.filter(user=invitee).exists()

    response = client.post(link)
    assert response.status_code == 302
    assert response.url == reverse("backoffice:dashboard")
    assert VendorMembership.objects.get(user=invitee).vendor == vendor


def test_an_anonymous_visitor_opening_the_link_is_asked_to_log_in(
    client, vendor, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(vendor, owner)
    response = client.get(_emailed_link())
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_a_bad_link_shows_a_clear_message(client, vendor, owner):
    invitation = _invite(vendor, owner)
    stranger = factories.UserFactory(email="stranger@example.com")
    client.force_login(stranger)
    url = reverse("backoffice:invitation_accept", args=[tokens.make_invitation_token(invitation)])

    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 400
        assert "sent to another email address" in response.content.decode()
    assert not VendorMembership.objects.filter(user=stranger).exists()


def test_removing_a_member_takes_effect_on_their_next_request(client, vendor, owner, staff_member):
    helper_client = Client()
    helper_client.force_login(staff_member)
    assert helper_client.get(reverse("backoffice:order_list")).status_code == 200
    sign_in_with_second_factor(client, owner)
    membership = VendorMembership.objects.get(user=staff_member)

    response = client.post(reverse("backoffice:member_remove", args=[membership.pk]), follow=True)

    assert "was removed from the team" in response.content.decode()
    assert helper_client.get(reverse("backoffice:order_list")).status_code == 403


def test_withdrawing_an_invitation_from_the_team_page(client, vendor, owner):
    invitation = _invite(vendor, owner)
    sign_in_with_second_factor(client, owner)
    response = client.post(
        reverse("backoffice:invitation_revoke", args=[invitation.pk]), follow=True
    )
    assert "was withdrawn" in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


def test_removing_yourself_from_the_page_shows_why_not(client, vendor, owner):
    sign_in_with_second_factor(client, owner)
    own = VendorMembership.objects.get(user=owner)
    response = client.post(reverse("backoffice:member_remove", args=[own.pk]), follow=True)
    assert "You cannot remove yourself from the team." in response.content.decode()
    assert VendorMembership.objects.filter(pk=own.pk).exists()
