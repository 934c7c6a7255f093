"""The second sign-in step, setting up an authenticator app, recovery codes, turning it off."""

import io

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_safe

from accounts.models import User
from accounts.twofactor import flow, forms, selectors, services
from project import ratelimit
from project.client_ip import client_ip
from project.http import AuthenticatedRequest

EXPIRED_MESSAGE = "Your sign-in took too long. Enter your email and password again."


def _next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or flow.pending_next(request)
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _with_next(url_name: str, next_url: str) -> str:
    url = reverse(url_name)
    return f"{url}?{'next=' + next_url if next_url else ''}".rstrip("?")


def _acting_user(request: HttpRequest) -> tuple[User | None, bool]:
    """(who is verifying, whether they are still only half signed in)."""
    pending = flow.pending_user(request)
    if pending is not None:
        return pending, True
    if request.user.is_authenticated:
        return request.user, False
    return None, False


def _finish(request: HttpRequest, user: User, *, pending: bool) -> None:
    if pending:
        flow.sign_in(request, user, second_factor=True)
    else:
        flow.mark_verified(request)


def _limited(request: HttpRequest, template: str, context: dict, exc) -> HttpResponse:
    response = render(request, template, context | {"error": exc.message}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


def _qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG (segno writes attributes only, no style=)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer,
        kind="svg",
        xmldecl=False,
        svgns=True,
        scale=4,
        border=2,
        dark="#000",
        light="#fff",
        omitsize=True,
        svgclass="qr-code",
        lineclass=None,
        title="QR code for your authenticator app",
    )
    return buffer.getvalue().decode()


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    user, pending = _acting_user(request)
    next_url = _next(request)
    if user is None:
        messages.error(request, EXPIRED_MESSAGE)
        return redirect(_with_next("accounts:login", next_url))
    if not pending and flow.is_verified(request):
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    if not selectors.is_enabled(user=user):
        return redirect(_with_next("accounts:twofactor_enroll", next_url))
    template = "accounts/twofactor/verify.html"
    form = forms.CodeForm(request.POST if "code" in request.POST else None)
    context = {"form": form, "next": next_url, "pending": pending, "email": user.email}
    if request.method == "POST" and request.POST.get("action") == "cancel":
        flow.cancel(request)
        return redirect("accounts:login")
    if request.method == "POST" and request.POST.get("action") == "email":
        try:
            services.request_email_code(user=user)
        except ratelimit.RateLimited as exc:
            return _limited(request, template, context | {"form": forms.CodeForm()}, exc)
        messages.success(request, f"We have emailed a 6-digit code to {user.email}.")
        return redirect(_with_next("accounts:twofactor_verify", next_url))
    if request.method == "POST" and form.is_valid():
        try:
            method = services.verify_second_factor(
                user=user, code=form.cleaned_data["code"], client_address=client_ip(request)
            )
        except ratelimit.RateLimited as exc:
            return _limited(request, template, context, exc)
        except services.InvalidCode as error:
            form.add_error("code", error.message)
        else:
            _finish(request, user, pending=pending)
            if method == "recovery_code":
                left = selectors.get_security_summary(user=user).recovery_codes_left
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. "
                    "Make new ones on your account page if you are running low.",
                )
            return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    return render(request, template, context, status=400 if form.errors else 200)


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def enroll(request: HttpRequest) -> HttpResponse:
    user, pending = _acting_user(request)
    next_url = _next(request)
    if user is None:
        messages.error(request, EXPIRED_MESSAGE)
        return redirect(_with_next("accounts:login", next_url))
    if selectors.is_enabled(user=user):
        if pending or flow.must_verify(request):
            return redirect(_with_next("accounts:twofactor_verify", next_url))
        messages.info(request, "Two-factor sign-in is already on for your account.")
        return redirect("accounts:profile")
    form = forms.EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.confirm_enrolment(user=user, code=form.cleaned_data["code"])
        except services.TwoFactorError as error:
            form.add_error("code", error.message)
        else:
            _finish(request, user, pending=pending)
            flow.keep_recovery_codes_for_display(request, codes)
            return redirect(_with_next("accounts:twofactor_recovery_codes", next_url))
    device = services.get_pending_device(user=user) or services.start_enrolment(user=user)
    context = {
        "form": form,
        "next": next_url,
        "required": selectors.is_required(user=user),
        "pending": pending,
        "secret": " ".join(device.secret[i : i + 4] for i in range(0, len(device.secret), 4)),
        # nosemgrep: bazaar-mark-safe-non-literal — segno's SVG of our own provisioning URI
        "qr_svg": mark_safe(_qr_svg(services.provisioning_uri(device=device))),  # noqa: S308 - our own SVG
    }
    return render(
        request, "accounts/twofactor/enroll.html", context, status=400 if form.errors else 200
    )


@never_cache
@login_required
@require_safe
def recovery_codes(request: AuthenticatedRequest) -> HttpResponse:
    context = {"codes": flow.take_recovery_codes_for_display(request), "next": _next(request)}
    return render(request, "accounts/twofactor/recovery_codes.html", context)


def _confirmed_change(request: AuthenticatedRequest, *, template: str, change) -> HttpResponse:
    """Ask for the password or a current code, then make `change` (a service call)."""
    form = forms.ConfirmIdentityForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.confirm_identity(
                user=request.user,
                password=form.cleaned_data["password"],
                code=form.cleaned_data["code"].strip(),
                client_address=client_ip(request),
            )
            return change()
        except ratelimit.RateLimited as exc:
            return _limited(request, template, {"form": form}, exc)
        except services.TwoFactorError as error:
            form.add_error(None, error.message)
            status = 400
    return render(request, template, {"form": form}, status=status)


@sensitive_post_parameters("password", "code")
@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def disable(request: AuthenticatedRequest) -> HttpResponse:
    if selectors.is_required(user=request.user):
        messages.error(
            request,
            "Two-factor sign-in is required for staff and shop owners; it cannot be turned off.",
        )
        return redirect("accounts:profile")

    def change() -> HttpResponse:
        services.disable(user=request.user)
        messages.success(request, "Two-factor sign-in is off. You sign in with your password only.")
        return redirect("accounts:profile")

    return _confirmed_change(request, template="accounts/twofactor/disable.html", change=change)


@sensitive_post_parameters("password", "code")
@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def regenerate(request: AuthenticatedRequest) -> HttpResponse:
    def change() -> HttpResponse:
        codes = services.regenerate_recovery_codes(user=request.user)
        flow.keep_recovery_codes_for_display(request, codes)
        return redirect("accounts:twofactor_recovery_codes")

    return _confirmed_change(request, template="accounts/twofactor/regenerate.html", change=change)
