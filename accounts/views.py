"""Account pages: sign in/out, registration, verification, password reset, profile."""

import contextlib

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts import exports, forms, ratelimit, selectors
from accounts import services as account_services
from accounts import sessions as session_services
from accounts import tokens as account_tokens
from accounts.twofactor import flow as twofactor_flow
from accounts.twofactor import selectors as twofactor_selectors
from project import files
from project import ratelimit as project_ratelimit
from project.client_ip import client_ip
from project.http import AuthenticatedRequest
from shop.selectors import cart as cart_selectors
from shop.services import cart as cart_services

PROFILE_PAGE = "accounts/profile/page.html"


def _base_url(request: HttpRequest) -> str:
    """Absolute links in emails point at the host the visitor used (e.g. a test server's port)."""
    return request.build_absolute_uri("/")


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _sign_in(request: HttpRequest, user) -> None:
    # The guest cart id lives in the session, so read it before login() rotates the session.
    guest_cart_id = cart_selectors.get_session_cart_id(request=request)
    auth.login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    cart_services.merge_guest_cart(guest_cart_id=guest_cart_id, user=user)


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if request.user.is_authenticated and request.method in ("GET", "HEAD"):
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    form = forms.LoginForm(request.POST or None)
    retry_after = None
    if request.method == "POST" and form.is_valid():
        email = account_services.normalise_email(form.cleaned_data["email"])
        # The backend counts failures and applies the limits (accounts.ratelimit).
        user = auth.authenticate(request, email=email, password=form.cleaned_data["password"])
        if user is not None and twofactor_flow.needs_second_step(user=user):
            twofactor_flow.begin(request, user=user, next_url=next_url)
            return redirect(twofactor_flow.second_step_url(user=user, next_url=next_url))
        if user is not None:
            _sign_in(request, user)
            return redirect(next_url or settings.LOGIN_REDIRECT_URL)
        # The backend stashes why it refused (accounts.ratelimit), if it did.
        refusal: ratelimit.LoginRefused | None = getattr(request, "login_refusal", None)
        form.add_error(None, refusal.message if refusal else forms.LOGIN_FAILED_MESSAGE)
        if refusal is not None and refusal.retry_after:
            retry_after = refusal.retry_after
    context = {"form": form, "next": next_url}
    response = render(
        request, "accounts/auth/login.html", context, status=429 if retry_after else 200
    )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@never_cache
@require_safe
def login_unlock(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link: lets this browser sign in to an account under attack."""
    user = account_tokens.read_login_unlock_token(token)
    if user is None:
        messages.error(request, "This unlock link is not valid any more. Sign in to get a new one.")
        return redirect("accounts:login")
    messages.success(request, "This browser is unlocked for your account. Sign in again now.")
    response = redirect("accounts:login")
    ratelimit.unlock_browser(request=request, response=response, user=user)
    return response


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default); GET answers 405 and signs nobody out."""


@login_required
@require_POST
def sign_out_everywhere(request: AuthenticatedRequest) -> HttpResponse:
    """Every other session of this account ends; this one stays, under a new id."""
    user = session_services.revoke_other_sessions(user=request.user)
    auth.update_session_auth_hash(request, user)
    messages.success(request, "You are signed out everywhere else. This browser stays signed in.")
    return redirect("accounts:profile")


@sensitive_post_parameters("password1", "password2")
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:profile")
    form = forms.RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project_ratelimit.hit("register_address", client_ip(request))
        except project_ratelimit.RateLimited as exc:
            form.add_error(None, exc.message)
            page = render(request, "accounts/auth/register.html", {"form": form})
            return project_ratelimit.refuse(page, exc)
        # A duplicate address gets the same page as a success: the owner is emailed (at most
        # once an hour), the visitor learns nothing. For the same reason a new account is
        # not signed in here.
        with contextlib.suppress(account_services.EmailAlreadyRegistered):
            account_services.register_user(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data["full_name"],
                base_url=_base_url(request),
            )
        return redirect("accounts:verify_sent")
    return render(request, "accounts/auth/register.html", {"form": form})


@require_safe
def verify_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/verify/sent.html")


@require_safe
def verify(request: HttpRequest, token: str) -> HttpResponse:
    try:
        account_services.verify_email(token=token)
    except account_services.VerificationLinkExpired as error:
        context = {"error": error.message, "expired": True}
        return render(request, "accounts/verify/failed.html", context, status=400)
    except account_services.VerificationLinkInvalid as error:
        context = {"error": error.message, "expired": False}
        return render(request, "accounts/verify/failed.html", context, status=400)
    if not request.user.is_authenticated:
        messages.success(request, "Your email address is verified. Log in to continue.")
        return redirect("accounts:login")
    messages.success(request, "Your email address is verified.")
    return redirect("shop:home")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def verify_resend(request: AuthenticatedRequest) -> HttpResponse:
    if request.user.is_verified:
        messages.info(request, "Your email address is already verified.")
        return redirect("accounts:profile")
    if request.method == "POST":
        try:
            account_services.resend_verification(user=request.user, base_url=_base_url(request))
        except project_ratelimit.RateLimited as exc:
            page = render(request, "accounts/verify/resend.html", {"error": exc.message})
            return project_ratelimit.refuse(page, exc)
        messages.success(request, f"We've sent a new verification link to {request.user.email}.")
        return redirect("accounts:verify_sent")
    return render(request, "accounts/verify/resend.html")


class PasswordResetView(auth_views.PasswordResetView):
    """Always shows the same "check your inbox" page, registered address or not."""

    form_class = forms.PasswordResetForm
    template_name = "accounts/password/reset_form.html"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        # Counted for every address asked about, registered or not, so a refusal says nothing.
        email = account_services.normalise_email(form.cleaned_data["email"])
        try:
            project_ratelimit.hit("password_reset_address", client_ip(self.request))
            project_ratelimit.hit("password_reset_email", email)
        except project_ratelimit.RateLimited as exc:
            form.add_error(None, exc.message)
            return project_ratelimit.refuse(self.form_invalid(form), exc)
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password/reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = forms.SetPasswordForm
    template_name = "accounts/password/reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password/reset_complete.html"


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = forms.PasswordChangeForm
    template_name = "accounts/password/change_form.html"
    success_url = reverse_lazy("accounts:profile")

    def post(self, request, *args, **kwargs):
        # A stolen session must not become a way to guess the account's current password.
        try:
            project_ratelimit.peek("password_change_user", str(request.user.pk))
        except project_ratelimit.RateLimited as exc:
            messages.error(request, exc.message)
            blank = self.get_form_class()(user=request.user)
            page = self.render_to_response(self.get_context_data(form=blank))
            return project_ratelimit.refuse(page, exc)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        if "old_password" in form.errors:
            with contextlib.suppress(project_ratelimit.RateLimited):
                project_ratelimit.hit("password_change_user", str(self.request.user.pk))
        return super().form_invalid(form)

    def form_valid(self, form):
        messages.success(self.request, "Your password has been changed.")
        return super().form_valid(form)


def _render_profile(
    request: AuthenticatedRequest, form: forms.ProfileForm, **extra
) -> HttpResponse:
    context = {
        "form": form,
        "addresses": selectors.list_addresses(user=request.user),
        "security": twofactor_selectors.get_security_summary(user=request.user),
        **extra,
    }
    return render(request, PROFILE_PAGE, context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def profile(request: AuthenticatedRequest) -> HttpResponse:
    user = request.user
    form = forms.ProfileForm(
        request.POST or None, initial={"full_name": user.full_name, "phone": user.phone}
    )
    if request.method == "POST" and form.is_valid():
        account_services.update_profile(user=user, **form.cleaned_data)
        messages.success(request, "Your details are saved.")
        return redirect("accounts:profile")
    return _render_profile(request, form)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def address_add(request: AuthenticatedRequest) -> HttpResponse:
    form = forms.AddressForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        account_services.add_address(user=request.user, **form.service_kwargs())
        messages.success(request, "Address saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile/address_form.html", {"form": form})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def address_edit(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    address = selectors.access_address(user=request.user, pk=pk)
    is_default = request.user.default_address_id == address.pk
    form = forms.AddressForm(
        request.POST or None, instance=address, initial={"make_default": is_default}
    )
    if request.method == "POST" and form.is_valid():
        account_services.update_address(
            user=request.user, address_id=address.pk, **form.service_kwargs()
        )
        messages.success(request, "Address saved.")
        return redirect("accounts:profile")
    context = {"form": form, "address": address}
    return render(request, "accounts/profile/address_form.html", context)


def _address_list_changed(request: AuthenticatedRequest, message: str) -> HttpResponse:
    if request.htmx:
        context = {"addresses": selectors.list_addresses(user=request.user), "status": message}
        return render(request, f"{PROFILE_PAGE}#address-list", context)
    messages.success(request, message)
    return redirect("accounts:profile")


@login_required
@require_POST
def address_delete(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    address = selectors.access_address(user=request.user, pk=pk)
    account_services.delete_address(user=request.user, address_id=address.pk)
    return _address_list_changed(request, "Address deleted.")


@login_required
@require_POST
def address_default(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    address = selectors.access_address(user=request.user, pk=pk)
    account_services.set_default_address(user=request.user, address_id=address.pk)
    return _address_list_changed(request, "Default address updated.")


@login_required
@require_POST
def data_export_request(request: AuthenticatedRequest) -> HttpResponse:
    exports.request_data_export(user=request.user, base_url=_base_url(request))
    messages.success(
        request, "We are preparing your data. We will email you a download link when it is ready."
    )
    return redirect("accounts:profile")


@never_cache
@login_required
@require_safe
def data_export_download(request: AuthenticatedRequest, pk: int) -> FileResponse:
    """Only the export's owner, while it has not expired; anyone else gets a 404."""
    export = exports.get_downloadable_export(user=request.user, export_id=pk)
    if export is None:
        raise Http404("No such export.")
    exports.record_download(export=export, user=request.user)
    return files.attachment(
        export.file, filename="bazaar-data-export.zip", content_type="application/zip"
    )
