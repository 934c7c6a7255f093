"""A vendor's team: members, open invitations and (owners only) inviting and removing."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from backoffice.decorators import vendor_member_required
from backoffice.forms import team as team_forms
from backoffice.selectors import team as team_selectors
from backoffice.services import team as team_services
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.models import Vendor

PAGE = "backoffice/team/list.html"


@require_http_methods(["GET", "HEAD", "POST"])
@vendor_member_required
def member_list(request: AuthenticatedRequest, *, vendor: Vendor) -> HttpResponse:
    is_owner = team_selectors.is_owner(vendor=vendor, user=request.user)
    form = team_forms.InvitationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not is_owner:
            raise PermissionDenied("Only the shop's owners can invite members.")
        if form.is_valid():
            try:
                invitation = team_services.invite_member(
                    vendor=vendor,
                    acting_user=request.user,
                    base_url=request.build_absolute_uri("/"),
                    **form.cleaned_data,
                )
            except DomainError as exc:
                form.add_error("email", exc.message)
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
                return redirect("backoffice:member_list")
    context = {
        "vendor": vendor,
        "backoffice_section": "team",
        "is_owner": is_owner,
        "members": team_selectors.list_members(vendor=vendor),
        "invitations": team_selectors.list_open_invitations(vendor=vendor),
        "form": form,
    }
    return render(request, PAGE, context, status=422 if form.errors else 200)


@require_POST
@vendor_member_required
def member_remove(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    membership = team_selectors.access_membership(vendor=vendor, pk=pk)
    _require_owner(request, vendor)
    try:
        team_services.remove_member(
            vendor=vendor, membership_id=membership.pk, acting_user=request.user
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.display_name} was removed from the team.")
    return redirect("backoffice:member_list")


@require_POST
@vendor_member_required
def invitation_revoke(request: AuthenticatedRequest, pk: int, *, vendor: Vendor) -> HttpResponse:
    invitation = team_selectors.access_invitation(vendor=vendor, pk=pk)
    _require_owner(request, vendor)
    try:
        team_services.revoke_invitation(
            vendor=vendor, invitation_id=invitation.pk, acting_user=request.user
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The invitation of {invitation.email} was withdrawn.")
    return redirect("backoffice:member_list")


def _require_owner(request: AuthenticatedRequest, vendor: Vendor) -> None:
    if not team_selectors.is_owner(vendor=vendor, user=request.user):
        raise PermissionDenied("Only the shop's owners can change its team.")
