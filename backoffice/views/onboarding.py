"""Becoming a vendor (applying to sell) and joining a vendor's team (accepting an invitation)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.decorators import verified_email_required
from backoffice.forms import onboarding as onboarding_forms
from backoffice.services import onboarding as onboarding_services
from backoffice.services import team as team_services
from project.errors import DomainError
from project.http import AuthenticatedRequest
from shop.models import VendorStatus


@verified_email_required(message="Please verify your email address before applying to sell.")
@require_http_methods(["GET", "HEAD", "POST"])
def apply(request: AuthenticatedRequest) -> HttpResponse:
    current = onboarding_services.live_vendor_of(user=request.user)
    if current is not None and current.status != VendorStatus.PENDING:
        return redirect("backoffice:dashboard")
    if current is not None:
        return render(request, "backoffice/onboarding/status.html", {"application": current})
    form = onboarding_forms.ApplicationForm(
        request.POST if request.method == "POST" else None,
        initial={"contact_email": request.user.email},
    )
    if form.is_valid():
        data = form.cleaned_data
        try:
            onboarding_services.apply_to_sell(
                user=request.user,
                name=data["name"],
                description=data["description"],
                contact_email=data["contact_email"],
                contact_phone=data["contact_phone"],
                payout_details=form.payout_details,
                base_url=request.build_absolute_uri("/"),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Thank you. We will email you once we have reviewed it.")
            return redirect("backoffice:apply")
    context = {
        "form": form,
        "previous": onboarding_services.latest_application(user=request.user),
    }
    return render(
        request, "backoffice/onboarding/apply.html", context, status=422 if form.errors else 200
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_accept(request: AuthenticatedRequest, token: str) -> HttpResponse:
    """GET shows what the invitation is for; POST accepts it. Bad links change nothing."""
    try:
        if request.method == "POST":
            membership = team_services.accept_invitation(token=token, user=request.user)
            messages.success(request, f"Welcome to the team of {membership.vendor.name}.")
            return redirect("backoffice:dashboard")
        invitation = team_services.check_invitation(token=token, user=request.user)
    except DomainError as exc:
        return render(
            request,
            "backoffice/onboarding/invitation_invalid.html",
            {"error": exc.message},
            status=400,
        )
    return render(request, "backoffice/onboarding/invitation.html", {"invitation": invitation})
