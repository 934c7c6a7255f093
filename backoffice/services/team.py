"""A vendor's team: invitations by signed link, accepting them, removing members.

Only owners change the team. Every function locks the vendor row first, so concurrent
invitations, acceptances and removals are serialised per vendor.
"""

from functools import partial

from django.core import signing
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from backoffice import tasks, tokens
from project.audit import services as audit
from project.errors import DomainError
from shop.models import Vendor, VendorInvitation, VendorMembership, VendorStatus

OPEN_TEAM_STATUSES = (VendorStatus.APPROVED, VendorStatus.SUSPENDED)


class TeamChangeNotAllowed(DomainError):
    code = "team_change_not_allowed"


class AlreadyMember(DomainError):
    code = "already_member"


class DuplicateInvitation(DomainError):
    code = "duplicate_invitation"


class InvitationInvalid(DomainError):
    code = "invitation_invalid"


class InvitationExpired(InvitationInvalid):
    code = "invitation_expired"


class InvitationWrongAccount(InvitationInvalid):
    code = "invitation_wrong_account"


def read_invitation_token(token: str) -> int:
    """The invitation id in a signed link; raises InvitationExpired or InvitationInvalid."""
    try:
        return tokens.read_invitation_token(token)
    except signing.SignatureExpired:
        raise InvitationExpired(
            "This invitation has expired. Ask the shop owner to invite you again."
        ) from None
    except signing.BadSignature:
        raise InvitationInvalid(
            "This invitation link is not valid. Check that you copied the whole link."
        ) from None


def _lock_vendor_as_owner(*, vendor: Vendor, acting_user: User) -> Vendor:
    locked = Vendor.objects.select_for_update().get(pk=vendor.pk)
    is_owner = VendorMembership.objects.filter(
        vendor=locked, user=acting_user, role=VendorMembership.Role.OWNER
    ).exists()
    if not is_owner:
        raise TeamChangeNotAllowed("Only the shop's owners can change its team.")
    return locked


def invite_member(
    *, vendor: Vendor, email: str, role: str, acting_user: User, base_url: str | None = None
) -> VendorInvitation:
    """Record an open invitation and email its signed link (valid for 7 days).

    Refused when the address already belongs to a member or has an open invitation.
    """
    email = User.objects.normalize_email(email.strip()).lower()
    if role not in VendorMembership.Role.values:
        raise TeamChangeNotAllowed("Choose a role: owner or staff.")
    with transaction.atomic():
        locked = _lock_vendor_as_owner(vendor=vendor, acting_user=acting_user)
        if VendorMembership.objects.filter(vendor=locked, user__email__iexact=email).exists():
            raise AlreadyMember(f"{email} is already a member of {locked.name}.")
        if VendorInvitation.objects.filter(
            vendor=locked, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).exists():
            raise DuplicateInvitation(f"{email} already has an open invitation.")
        invitation = VendorInvitation.objects.create(
            vendor=locked, email=email, role=role, invited_by=acting_user
        )
        audit.record(
            "team.invited",
            actor=acting_user,
            vendor=locked,
            target=invitation,
            changes={"role": [None, role]},
        )
        transaction.on_commit(
            partial(
                tasks.send_vendor_invitation_email.enqueue,
                invitation_id=invitation.pk,
                base_url=base_url,
            )
        )
    return invitation


def check_invitation(*, token: str, user: User) -> VendorInvitation:
    """The open invitation in `token`, addressed to `user`; raises InvitationInvalid otherwise."""
    invitation_id = read_invitation_token(token)
    invitation = VendorInvitation.objects.select_related("vendor").filter(pk=invitation_id).first()
    return _check_usable(invitation=invitation, user=user)


def _check_usable(*, invitation: VendorInvitation | None, user: User) -> VendorInvitation:
    """The invitation, if `user` may accept it now; raises InvitationInvalid otherwise."""
    if invitation is None or invitation.revoked_at is not None:
        raise InvitationInvalid("This invitation was withdrawn by the shop.")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("This invitation has already been used.")
    if invitation.email.lower() != user.email.lower():
        raise InvitationWrongAccount(
            "This invitation was sent to another email address. "
            "Sign in with that address to accept it."
        )
    if invitation.vendor.status != VendorStatus.APPROVED:
        raise InvitationInvalid(f"{invitation.vendor.name} is not accepting new members now.")
    other = (
        VendorMembership.objects.filter(
            user=user,
            vendor__status__in=(VendorStatus.PENDING, *OPEN_TEAM_STATUSES),
        )
        .select_related("vendor")
        .first()
    )
    if other is not None:
        raise InvitationInvalid(f"You already belong to the team of {other.vendor.name}.")
    return invitation


def accept_invitation(*, token: str, user: User) -> VendorMembership:
    """Turn an open invitation addressed to `user` into a membership, once.

    Locks the vendor, then the invitation. Expired, tampered, revoked, used or
    someone else's invitations raise InvitationInvalid and change nothing.
    """
    invitation_id = read_invitation_token(token)
    with transaction.atomic():
        vendor_id = (
            VendorInvitation.objects.filter(pk=invitation_id)
            .values_list("vendor_id", flat=True)
            .first()
        )
        if vendor_id is None:
            raise InvitationInvalid("This invitation was withdrawn by the shop.")
        Vendor.objects.select_for_update().filter(pk=vendor_id).first()
        invitation = (
            VendorInvitation.objects.select_for_update(of=("self",))
            .select_related("vendor")
            .get(pk=invitation_id)
        )
        _check_usable(invitation=invitation, user=user)
        membership = VendorMembership.objects.create(
            vendor=invitation.vendor, user=user, role=invitation.role
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit.record(
            "team.invitation_accepted",
            actor=user,
            vendor=invitation.vendor,
            target=membership,
            changes={"role": [None, membership.role]},
            metadata={"invitation_id": invitation.pk},
        )
    return membership


def remove_member(*, vendor: Vendor, membership_id: int, acting_user: User) -> None:
    """Delete a member of this vendor; effective on their next request.

    Owners cannot remove themselves, and the last owner always stays.
    """
    with transaction.atomic():
        locked = _lock_vendor_as_owner(vendor=vendor, acting_user=acting_user)
        membership = (
            VendorMembership.objects.select_related("user")
            .filter(vendor=locked, pk=membership_id)
            .first()
        )
        if membership is None:
            raise TeamChangeNotAllowed("That person is not a member of this shop.")
        if membership.user_id == acting_user.pk:
            raise TeamChangeNotAllowed("You cannot remove yourself from the team.")
        if membership.role == VendorMembership.Role.OWNER:
            owners = VendorMembership.objects.filter(
                vendor=locked, role=VendorMembership.Role.OWNER
            ).count()
            if owners <= 1:
                raise TeamChangeNotAllowed("A shop needs at least one owner.")
        audit.record(
            "team.member_removed",
            actor=acting_user,
            vendor=locked,
            target=membership,
            changes={"role": [membership.role, None]},
            metadata={"user_id": membership.user_id},
        )
        membership.delete()


def revoke_invitation(*, vendor: Vendor, invitation_id: int, acting_user: User) -> VendorInvitation:
    """Withdraw an open invitation of this vendor; its link stops working at once."""
    with transaction.atomic():
        locked = _lock_vendor_as_owner(vendor=vendor, acting_user=acting_user)
        invitation = (
            VendorInvitation.objects.select_for_update()
            .filter(vendor=locked, pk=invitation_id)
            .first()
        )
        if invitation is None:
            raise TeamChangeNotAllowed("That invitation does not belong to this shop.")
        if not invitation.is_open:
            raise TeamChangeNotAllowed(f"The invitation of {invitation.email} is no longer open.")
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit.record("team.invitation_revoked", actor=acting_user, vendor=locked, target=invitation)
    return invitation
